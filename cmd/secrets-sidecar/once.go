package main

import (
	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
)

// cmdOnce syncs every secret once (init container mode): exit 0 only when
// every file was written.
func cmdOnce(g globals, f onceFlags) int {
	env, code := loadEnv(g)
	if code != exitOK {
		return code
	}
	res := &jobs.OnceResult{}
	code = runApp(fx.New(onceOptions(g, env, jobs.OnceSettings{Timeout: f.timeout, Workers: f.workers, Result: res})...), g.stderr)
	if code == exitOK && (!res.Finished || len(res.Failed) > 0) {
		return exitFailure // a signal cut the run short
	}
	return code
}
