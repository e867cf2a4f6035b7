package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// zombie identifies a zombie process; its start time tells a reused pid
// apart.
type zombie struct {
	pid   int
	start uint64
}

// zombieChildren lists the zombies in proc (a procfs mount) whose parent is
// ppid. Processes that vanish while it reads are skipped.
func zombieChildren(proc string, ppid int) ([]zombie, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var out []zombie
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(proc + "/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		st, err := ParseStat(b)
		if err != nil {
			return nil, fmt.Errorf("%s/%d/stat: %w", proc, pid, err)
		}
		if st.State == 'Z' && st.PPID == ppid {
			out = append(out, zombie{pid: pid, start: st.Start})
		}
	}
	return out, nil
}

// ProcStat is what the sidecar needs of a /proc/<pid>/stat line.
type ProcStat struct {
	State byte   // R, S, Z...
	PPID  int    // the parent's pid
	Start uint64 // start time in clock ticks since boot (tells a reused pid apart)
}

// ParseStat reads state (field 3), ppid (4) and starttime (22) of a
// /proc/<pid>/stat line, whose field 2, "(comm)", may hold spaces and
// parentheses: the fields after it start after the last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, errors.New("no (comm) field")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, errors.New("too few fields")
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return ProcStat{}, fmt.Errorf("ppid: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("starttime: %w", err)
	}
	return ProcStat{State: f[0][0], PPID: ppid, Start: start}, nil
}
