// Package buildinfo carries the version and commit the Makefile stamps into
// the binary, for `secrets-sidecar version`, logs and the build_info metric.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"go.uber.org/fx"
)

// Stamped at link time: -ldflags "-X .../modules/buildinfo.version=v1.2.3".
var (
	version = ""
	commit  = ""
)

// Info describes the running binary.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
}

// Module provides Info.
var Module = fx.Module("buildinfo", fx.Provide(Get))

// Get returns the stamped version and commit, falling back to what the Go
// toolchain recorded (a `go install ...@v1.2.3` has a module version).
func Get() Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && info.Commit == "" {
				info.Commit = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}
