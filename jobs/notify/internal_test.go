package notify

import (
	"encoding/json"
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

// TestFindProcessesTopOfTree: of processes with the name, only those
// whose parent does not have it too get the signal (an nginx master, not
// its workers; a script, not the subshells it forks).
func TestFindProcessesTopOfTree(t *testing.T) {
	root := t.TempDir()
	proc := func(pid, ppid int, comm string) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{
			"comm": comm + "\n", "cmdline": comm + "\x00",
			"stat": strconv.Itoa(pid) + " (" + comm + ") S " + strconv.Itoa(ppid) + " 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 123",
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	proc(10, 1, "nginx")   // master
	proc(11, 10, "nginx")  // worker
	proc(12, 10, "nginx")  // worker
	proc(13, 11, "nginx")  // a worker's child
	proc(20, 1, "app.sh")  // script
	proc(21, 20, "app.sh") // its subshell
	proc(30, 5, "nginx")   // a second master (another tree)
	for name, want := range map[string][]int{"nginx": {10, 30}, "app.sh": {20}} {
		got, err := findProcesses(root, name, 4242)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v (%v), want %v", name, got, err, want)
		}
	}
}

func TestReadPIDFileAcceptsPIDOne(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(p, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid, _, err := readPIDFile(p, 4242)
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

func TestPIDFileOwnerMustOwnTheProcess(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "77"), 0o700); err != nil {
		t.Fatal(err)
	}
	status := "Name:\tapp\nUmask:\t0022\nUid:\t1000\t1001\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n"
	if err := os.WriteFile(filepath.Join(root, "77", "status"), []byte(status), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []uint32{0, 1000, 1001} {
		if err := ownedBy(root, "/run/app.pid", 77, owner); err != nil {
			t.Errorf("owner %d: %v", owner, err)
		}
	}
	err := ownedBy(root, "/run/app.pid", 77, 2000)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 2000 but names process 77 of uid 1000") {
		t.Fatalf("owner 2000: %v", err)
	}
	if err := ownedBy(root, "/run/app.pid", 78, 2000); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Fatalf("gone process: %v", err)
	}
}

func TestValuesFlattensSecretData(t *testing.T) {
	data := map[string]any{
		"password": "hunter2-long",
		"port":     json.Number("5432"),
		"ratio":    1.5,
		"enabled":  true,
		"none":     nil,
		"nested":   map[string]any{"list": []any{"tok-a", map[string]any{"k": "tok-b"}}},
	}
	var got []string
	for _, v := range Values(data) {
		got = append(got, v.Reveal())
	}
	slices.Sort(got)
	if want := []string{"1.5", "5432", "hunter2-long", "tok-a", "tok-b"}; !slices.Equal(got, want) {
		t.Fatalf("values %q, want %q", got, want)
	}
}

func TestScrubberForms(t *testing.T) {
	s := newScrubber([]string{"p@ss\"w0rd<x>", "-----BEGIN-----\nAAAABBBBCCCCDDDD\n-----END-----", "abc"})
	in := `raw p@ss"w0rd<x> json p@ss\"w0rd\u003cx\u003e go "p@ss\"w0rd<x>" b64 cEBzcyJ3MHJkPHg+ line AAAABBBBCCCCDDDD short abc`
	out := s.apply(in)
	for _, leak := range []string{"w0rd", "cEBzcyJ3MHJkPHg", "AAAABBBB"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q left in %q", leak, out)
		}
	}
	if !strings.Contains(out, "short abc") {
		t.Errorf("a 3-byte value was scrubbed: %q", out)
	}
}
