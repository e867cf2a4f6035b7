package memlimit

import (
	"os"
	"runtime/debug"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// DaemonGCPercent is the garbage collector's target (GOGC) of the commands
// that keep running (run, exec) when GOGC is not set: the heap may grow
// 50% over the live data between collections instead of 100%. A daemon
// idles between refreshes, so the extra collections cost little CPU, and
// its resident memory follows the heap's high-water mark.
const DaemonGCPercent = 50

// DaemonModule sets DaemonGCPercent unless GOGC is set.
var DaemonModule = fx.Module("memlimit-gc", fx.Invoke(func(log *zap.Logger) { SetDaemonGC(os.Getenv, log) }))

// SetDaemonGC sets DaemonGCPercent unless getenv("GOGC") is set, and
// returns the percent now in effect.
func SetDaemonGC(getenv func(string) string, log *zap.Logger) int {
	if getenv("GOGC") != "" {
		cur := debug.SetGCPercent(100)
		debug.SetGCPercent(cur)
		log.Debug("garbage collector target", zap.String("source", "GOGC"), zap.Int("gc_percent", cur))
		return cur
	}
	debug.SetGCPercent(DaemonGCPercent)
	log.Debug("garbage collector target", zap.Int("gc_percent", DaemonGCPercent))
	return DaemonGCPercent
}
