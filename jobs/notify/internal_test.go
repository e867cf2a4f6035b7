package notify

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestFindProcessesMatchesExactNamesOnly(t *testing.T) {
	root := t.TempDir()
	self := 4242
	proc := func(pid int, comm, cmdline string) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proc(1, "app", "/usr/bin/app\x00--config\x00x")      // PID 1 is a valid target
	proc(2, "app-worker", "app-worker\x00")              // longer name
	proc(3, "java", "/opt/app/bin/app\x00-jar\x00x.jar") // argv[0]'s base name
	proc(4, "other", "/opt/app/bin/other\x00app\x00")    // name only in a directory and an argument
	proc(5, "xapp", "xapp\x00")                          // suffix
	proc(6, "sh", "sh\x00-c\x00app")                     // name only in an argument
	proc(7, "kworker/0:1", "")                           // kernel thread: no cmdline
	proc(self, "app", "app\x00")                         // the sidecar itself
	if err := os.Mkdir(filepath.Join(root, "self"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := findProcesses(root, "app", self)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("processes named app: %v, want [1 3]", got)
	}
}

func TestReadPIDFileAcceptsPIDOne(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(p, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid, err := readPIDFile(p, 4242)
	if err != nil || pid != 1 {
		t.Fatalf("pid file holding 1: %d, %v", pid, err)
	}
}

func TestSignalNumberSpellings(t *testing.T) {
	for _, name := range []string{"SIGHUP", "HUP", "hup", " SigHup "} {
		if s, err := signalNumber(name); err != nil || s != 1 {
			t.Errorf("%q: %v, %v", name, s, err)
		}
	}
	if _, err := signalNumber("SIGFOO"); err == nil || !strings.Contains(err.Error(), "unknown signal") {
		t.Errorf("SIGFOO: %v", err)
	}
}
