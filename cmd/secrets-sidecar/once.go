package main

import (
	"fmt"

	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
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
	settings := modes.OnceSettings{Timeout: f.timeout, Workers: f.workers, DryRun: f.dryRun}
	var once *modes.Once
	app := fx.New(append(onceOptions(g, env, settings), fx.Populate(&once))...)
	code = runApp(app, once, false, g.stderr)
	if once == nil {
		return code
	}
	changes := false
	for _, p := range once.Plans() {
		fmt.Fprintln(g.stdout, p)
		changes = changes || p.Changed()
	}
	if code == exitOK && changes {
		return exitChanges
	}
	return code
}
