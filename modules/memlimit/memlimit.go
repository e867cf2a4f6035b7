// Package memlimit gives the Go runtime a soft memory limit that fits the
// container: 90% of the cgroup's memory limit, unless GOMEMLIMIT is set.
// With it the garbage collector works harder near the limit instead of the
// kernel's OOM killer ending the process.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Fraction of the cgroup limit that becomes the soft limit: the rest is
// room for what the runtime does not count (code pages, thread stacks).
const Fraction = 0.9

// Sources of a limit, as logged.
const (
	SourceEnv      = "GOMEMLIMIT"
	SourceCgroupV2 = "cgroup v2"
	SourceCgroupV1 = "cgroup v1"
	SourceNone     = "none"
)

// unlimitedV1 is the smallest value cgroup v1 uses for "no limit" (the
// largest page-aligned int64, which differs by page size).
const unlimitedV1 = int64(1) << 62

// Limit is the soft memory limit and where it came from.
type Limit struct {
	Bytes  int64  // 0: none
	Cgroup int64  // the cgroup's own limit (0: none or not read)
	Source string // SourceEnv, SourceCgroupV2, SourceCgroupV1 or SourceNone
}

// Module sets the limit at start-up and logs it once.
var Module = fx.Module("memlimit", fx.Invoke(func(log *zap.Logger) { Apply(os.DirFS("/"), os.Getenv, log) }))

// Apply sets the runtime's soft memory limit from root (the file system
// holding /proc and /sys, "/" outside tests) unless GOMEMLIMIT is set, and
// logs the outcome once.
func Apply(root fs.FS, getenv func(string) string, log *zap.Logger) Limit {
	l, err := Detect(root, getenv)
	switch {
	case err != nil:
		log.Warn("no soft memory limit: the cgroup memory limit is unreadable", zap.Error(err))
	case l.Source == SourceEnv:
		log.Info("soft memory limit", zap.String("source", l.Source), zap.Int64("limit_bytes", debug.SetMemoryLimit(-1)))
	case l.Bytes > 0:
		debug.SetMemoryLimit(l.Bytes)
		log.Info("soft memory limit", zap.String("source", l.Source), zap.Int64("limit_bytes", l.Bytes),
			zap.Int64("cgroup_limit_bytes", l.Cgroup))
	default:
		log.Info("soft memory limit", zap.String("source", SourceNone))
	}
	return l
}

// Detect finds the limit without setting it: GOMEMLIMIT when set (the
// runtime has applied it already), else Fraction of the memory limit of
// this process's cgroup or of the nearest limited cgroup above it.
func Detect(root fs.FS, getenv func(string) string) (Limit, error) {
	if getenv("GOMEMLIMIT") != "" {
		return Limit{Source: SourceEnv}, nil
	}
	raw, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return Limit{Source: SourceNone}, fmt.Errorf("/proc/self/cgroup: %w", err)
	}
	v2, v1 := cgroupPaths(raw)
	var limit int64
	source := SourceNone
	switch {
	case v1 != "":
		limit, err = smallest(root, "sys/fs/cgroup/memory", v1, "memory.limit_in_bytes")
		source = SourceCgroupV1
	case v2 != "":
		limit, err = smallest(root, "sys/fs/cgroup", v2, "memory.max")
		source = SourceCgroupV2
	}
	if err != nil {
		return Limit{Source: SourceNone}, err
	}
	if limit <= 0 {
		return Limit{Source: SourceNone}, nil
	}
	return Limit{Bytes: int64(float64(limit) * Fraction), Cgroup: limit, Source: source}, nil
}

// cgroupPaths reads /proc/self/cgroup: the unified (v2) path, and the v1
// memory controller's path when there is one (a hybrid host limits memory
// through v1).
func cgroupPaths(raw []byte) (v2, v1 string) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && controllers == "" {
			v2 = p
			continue
		}
		for _, c := range strings.Split(controllers, ",") {
			if c == "memory" {
				v1 = p
			}
		}
	}
	return v2, v1
}

// smallest is the smallest limit in file along cgroup path p and its
// parents under mount (a parent's limit binds its children too; inside a
// container the process's own path is often not visible, and the mount's
// root is its cgroup). 0: no limit anywhere, or no such files (no cgroup
// file system mounted).
func smallest(root fs.FS, mount, p, file string) (int64, error) {
	var limit int64
	for p = path.Clean("/" + p); ; p = path.Dir(p) {
		name := path.Join(mount, p, file)
		raw, err := fs.ReadFile(root, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return 0, fmt.Errorf("/%s: %w", name, err)
		default:
			v, err := parseLimit(raw)
			if err != nil {
				return 0, fmt.Errorf("/%s: %w", name, err)
			}
			if v > 0 && (limit == 0 || v < limit) {
				limit = v
			}
		}
		if p == "/" {
			break
		}
	}
	return limit, nil
}

// parseLimit reads a limit file: "max" or a huge v1 value is no limit (0).
func parseLimit(raw []byte) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a memory limit", s)
	}
	if v >= unlimitedV1 {
		return 0, nil
	}
	return v, nil
}
