package supervisor

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pid1 runs the pid1 helper as PID 1 of a new PID namespace (with its own
// /proc) and returns its RESULT fields.
func pid1(t *testing.T, extra ...string) map[string]string {
	t.Helper()
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	if os.Geteuid() != 0 {
		// Not root (CI): a user namespace of its own, where it is root and
		// may mount its /proc.
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	cmd, out := helper(t, "pid1", attr, append([]string{"CHILD_ORPHANS=5", "CHILD_GRANDCHILD=1", "CHILD_EXIT=7"}, extra...)...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	res := fields(out.Name(), "RESULT")
	if len(res) != 1 {
		t.Fatalf("no RESULT from the helper: %v", res)
	}
	m := map[string]string{}
	for _, kv := range strings.Fields(strings.Join(res[0], " ")) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	t.Logf("PID 1 %v: %v", extra, m)
	if n := len(fields(out.Name(), "ORPHAN")); n != 5 {
		t.Fatalf("the child made %d orphans, want 5", n)
	}
	return m
}

// As PID 1 the reaper reaps the orphans (6: one killed with the child's
// process group, five that exit later in sessions of their own), while the
// supervised child's exit code (7) and the statuses of the commands the
// helper waits for itself (exit 5, 100 through RunCommand and 100 through a
// plain cmd.Run) are still theirs.
func TestPID1ReapsOrphans(t *testing.T) {
	m := pid1(t)
	if m["exit_code"] != "7" {
		t.Errorf("supervised child's exit code = %s, want 7", m["exit_code"])
	}
	if m["others"] != "0" || m["zombies"] != "0" {
		t.Errorf("processes left in the namespace: %s, zombies: %s; want none", m["others"], m["zombies"])
	}
	if n, _ := strconv.Atoi(m["reaped"]); n < 6 {
		t.Errorf("reaped %d, want at least the 6 orphans", n)
	}
	if m["commands"] != "200/100+100" {
		t.Errorf("commands with their own status / owned + plain = %s, want 200/100+100", m["commands"])
	}
	if d, err := time.ParseDuration(m["cleared_in"]); err != nil || d > 10*time.Second {
		t.Errorf("zombies cleared in %s", m["cleared_in"])
	}
}

// The control: without the reaper the same orphans stay zombies, so the
// test above can tell.
func TestPID1WithoutReaperKeepsZombies(t *testing.T) {
	m := pid1(t, "HELPER_REAPER=none")
	if n, _ := strconv.Atoi(m["zombies"]); n < 6 {
		t.Errorf("zombies without a reaper: %s, want the 6 orphans", m["zombies"])
	}
	if m["exit_code"] != "7" || m["commands"] != "200/100+100" {
		t.Errorf("exit code %s, commands %s", m["exit_code"], m["commands"])
	}
}

// The other control: a blind wait4(-1) reaper clears the zombies but steals
// the exit statuses that belong to the supervisor and to os/exec.
func TestPID1BlindReaperStealsStatuses(t *testing.T) {
	m := pid1(t, "HELPER_REAPER=blind")
	if m["exit_code"] == "7" && m["commands"] == "200/100+100" {
		t.Errorf("a blind reaper stole nothing (exit code %s, commands %s): the PID 1 test cannot tell", m["exit_code"], m["commands"])
	}
}
