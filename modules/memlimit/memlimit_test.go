package memlimit

import (
	"errors"
	"io/fs"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const mib = 1 << 20

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func noEnv(string) string { return "" }

// denied is a cgroup file system whose named files cannot be read, as
// with a restrictive mount (root ignores file modes, so a chmod would not do).
type denied struct {
	fs.FS
	names map[string]bool
}

func (d denied) Open(name string) (fs.File, error) {
	if d.names[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fsys   fs.FS
		env    string
		want   Limit
		errHas string
	}{
		{
			name: "v2 container (cgroup namespace: the mount root is our cgroup)",
			fsys: fstest.MapFS{
				"proc/self/cgroup":           file("0::/\n"),
				"sys/fs/cgroup/memory.max":   file("268435456\n"),
				"sys/fs/cgroup/cgroup.procs": file("1\n"),
			},
			want: Limit{Bytes: 241591910, Cgroup: 256 * mib, Source: SourceCgroupV2},
		},
		{
			name: "v2 unlimited",
			fsys: fstest.MapFS{
				"proc/self/cgroup":         file("0::/\n"),
				"sys/fs/cgroup/memory.max": file("max\n"),
			},
			want: Limit{Source: SourceNone},
		},
		{
			name: "v2 nested path: the smallest limit along it wins",
			fsys: fstest.MapFS{
				"proc/self/cgroup":                                     file("0::/kubepods/burstable/pod1/ctr\n"),
				"sys/fs/cgroup/memory.max":                             file("max\n"),
				"sys/fs/cgroup/kubepods/memory.max":                    file("8589934592\n"),
				"sys/fs/cgroup/kubepods/burstable/pod1/memory.max":     file("134217728\n"),
				"sys/fs/cgroup/kubepods/burstable/pod1/ctr/memory.max": file("max\n"),
			},
			want: Limit{Bytes: 120795955, Cgroup: 128 * mib, Source: SourceCgroupV2},
		},
		{
			name: "v2 path not visible in the container: the mount root's limit",
			fsys: fstest.MapFS{
				"proc/self/cgroup":         file("0::/system.slice/docker-abc.scope\n"),
				"sys/fs/cgroup/memory.max": file("67108864\n"),
			},
			want: Limit{Bytes: 60397977, Cgroup: 64 * mib, Source: SourceCgroupV2},
		},
		{
			name: "v1 memory controller",
			fsys: fstest.MapFS{
				"proc/self/cgroup":                                      file("12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n0::/\n"),
				"sys/fs/cgroup/memory/memory.limit_in_bytes":            file("9223372036854771712\n"),
				"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("536870912\n"),
			},
			want: Limit{Bytes: 483183820, Cgroup: 512 * mib, Source: SourceCgroupV1},
		},
		{
			name: "v1 unlimited",
			fsys: fstest.MapFS{
				"proc/self/cgroup":                           file("3:memory:/\n"),
				"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
			},
			want: Limit{Source: SourceNone},
		},
		{
			name: "GOMEMLIMIT wins over the cgroup",
			env:  "200MiB",
			fsys: fstest.MapFS{
				"proc/self/cgroup":         file("0::/\n"),
				"sys/fs/cgroup/memory.max": file("67108864\n"),
			},
			want: Limit{Source: SourceEnv},
		},
		{
			name: "no cgroup file system mounted",
			fsys: fstest.MapFS{"proc/self/cgroup": file("0::/\n")},
			want: Limit{Source: SourceNone},
		},
		{
			name:   "no /proc",
			fsys:   fstest.MapFS{},
			want:   Limit{Source: SourceNone},
			errHas: "/proc/self/cgroup",
		},
		{
			name: "unreadable limit file",
			fsys: denied{FS: fstest.MapFS{
				"proc/self/cgroup":         file("0::/\n"),
				"sys/fs/cgroup/memory.max": file("67108864\n"),
			}, names: map[string]bool{"sys/fs/cgroup/memory.max": true}},
			want:   Limit{Source: SourceNone},
			errHas: "/sys/fs/cgroup/memory.max",
		},
		{
			name: "garbage in the limit file",
			fsys: fstest.MapFS{
				"proc/self/cgroup":         file("0::/\n"),
				"sys/fs/cgroup/memory.max": file("lots\n"),
			},
			want:   Limit{Source: SourceNone},
			errHas: `"lots" is not a memory limit`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.env
				}
				return ""
			}
			got, err := Detect(tc.fsys, getenv)
			if tc.errHas == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("error %v, want one naming %q", err, tc.errHas)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestApply sets the runtime's limit from the cgroup and logs it once;
// an unreadable cgroup leaves the runtime's limit alone with a warning.
func TestApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	core, logs := observer.New(zap.InfoLevel)
	l := Apply(fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"sys/fs/cgroup/memory.max": file("104857600\n"),
	}, noEnv, zap.New(core))
	if got := debug.SetMemoryLimit(-1); got != l.Bytes || got != 94371840 {
		t.Fatalf("runtime limit %d, want 90%% of 100 MiB (94371840), Apply said %d", got, l.Bytes)
	}
	entries := logs.TakeAll()
	if len(entries) != 1 || entries[0].ContextMap()["source"] != SourceCgroupV2 || entries[0].ContextMap()["limit_bytes"] != int64(94371840) {
		t.Fatalf("logs %+v, want one entry with the source and the limit", entries)
	}

	debug.SetMemoryLimit(before)
	core, logs = observer.New(zap.InfoLevel)
	Apply(denied{FS: fstest.MapFS{"proc/self/cgroup": file("0::/\n")}, names: map[string]bool{"proc/self/cgroup": true}}, noEnv, zap.New(core))
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("runtime limit changed to %d on an unreadable cgroup", got)
	}
	entries = logs.TakeAll()
	if len(entries) != 1 || entries[0].Level != zap.WarnLevel || !errors.Is(entries[0].Context[0].Interface.(error), fs.ErrPermission) {
		t.Fatalf("logs %+v, want one warning with the permission error", entries)
	}
}

// TestSetDaemonGC lowers the GC target only when GOGC is unset.
func TestSetDaemonGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	if got := SetDaemonGC(noEnv, zap.NewNop()); got != DaemonGCPercent {
		t.Fatalf("SetDaemonGC = %d, want %d", got, DaemonGCPercent)
	}
	if cur := debug.SetGCPercent(200); cur != DaemonGCPercent {
		t.Fatalf("runtime GC percent %d, want %d", cur, DaemonGCPercent)
	}
	// GOGC set: the runtime's value (here 200, as if from GOGC=200) stays.
	if got := SetDaemonGC(func(k string) string { return map[string]string{"GOGC": "200"}[k] }, zap.NewNop()); got != 200 {
		t.Fatalf("SetDaemonGC with GOGC set = %d, want the runtime's 200", got)
	}
	if cur := debug.SetGCPercent(100); cur != 200 {
		t.Fatalf("runtime GC percent %d after SetDaemonGC with GOGC set, want 200 untouched", cur)
	}
}
