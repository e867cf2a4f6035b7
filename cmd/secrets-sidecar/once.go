package main

import (
	"fmt"

	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
)

// cmdOnce syncs every secret once (init container mode): exit 0 only when
// every file was written. --dry-run writes nothing and prints what a sync
// would do, one line per secret: exit 0 nothing would change, 3 something
// would, 1 a secret could not be read, rendered or compared.
func cmdOnce(g globals, f onceFlags) int {
	env, code := loadEnv(g)
	if code != exitOK {
		return code
	}
	res := &jobs.OnceResult{}
	settings := jobs.OnceSettings{Timeout: f.timeout, Workers: f.workers, Result: res, DryRun: f.dryRun}
	code = runApp(fx.New(onceOptions(g, env, settings)...), g.stderr)
	changes := false
	for _, p := range res.Plans {
		fmt.Fprintln(g.stdout, p)
		changes = changes || p.Changed()
	}
	switch {
	case code == exitOK && (!res.Finished || len(res.Failed) > 0):
		return exitFailure // a signal cut the run short
	case code == exitOK && changes:
		return exitChanges
	}
	return code
}
