package supervisor

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The registry, in the test process (the reaper forced on): a zombie that
// is registered stays for its owner however long it waits; one that is not
// is reaped once it has been a zombie for reapGrace.
func TestReaperLeavesOwnedZombies(t *testing.T) {
	r := startReaper(testLog(t), "/proc")
	defer r.Stop()
	attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}

	var mine int
	release, err := Own(func() (pid int, err error) {
		mine, err = syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 9"}, attr)
		return mine, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	stray, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 8"}, attr)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	waitFor(t, 10*time.Second, "the unowned zombie reaped", func() bool { return r.Reaped() == 1 })
	t.Logf("unowned zombie reaped after %s", time.Since(begin))
	if time.Since(begin) < reapGrace/2 {
		t.Errorf("reaped after %s, before the grace period", time.Since(begin))
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(stray, &ws, unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
		t.Errorf("the unowned zombie is still there: %v", err)
	}

	time.Sleep(2 * reapGrace) // long past the grace: still the owner's
	if pid, err := unix.Wait4(mine, &ws, 0, nil); pid != mine || err != nil || ws.ExitStatus() != 9 {
		t.Errorf("owner's wait4 = %d, %v, status %d; want %d, exit status 9", pid, err, ws.ExitStatus(), mine)
	}
	if r.Reaped() != 1 {
		t.Errorf("reaped %d, want only the unowned one", r.Reaped())
	}
}

// Only PID 1 reaps by default.
func TestStartReaperOnlyAsPID1(t *testing.T) {
	if os.Getpid() == 1 {
		t.Fatal("the test process is PID 1")
	}
	r := StartReaper(nil)
	if r.Active() {
		t.Fatal("reaper active outside PID 1")
	}
	r.Stop()
}

func TestParseStat(t *testing.T) {
	line := "4242 (a) b) (c) Z 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0\n"
	st, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'Z' || st.PPID != 1 || st.Start != 123456 {
		t.Fatalf("ParseStat = %+v", st)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1", "1 (x) S p 1 1 0 -1 0 0 0 0 0 0 0 0 20 0 1 0 5"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted", bad)
		}
	}
}
