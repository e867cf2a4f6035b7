package status_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
)

// otherUser is who plays the other user of a shared /tmp: 65534 when the
// test runs as root (it can chown), else the test's own user, with the
// attack made by modes a user can set on its own files.
func otherUser() (uid int, asRoot bool) {
	if os.Geteuid() == 0 {
		return 65534, true
	}
	return os.Geteuid(), false
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestStatusDirSymlinkRefused: another user's `ln -s /victim
// /tmp/secrets-sidecar` must not make the daemon write /victim/status.json.
func TestStatusDirSymlinkRefused(t *testing.T) {
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "secrets-sidecar")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if uid, _ := otherUser(); uid != os.Geteuid() {
		chown(t, link, uid)
	}
	tr := status.NewTracker(filepath.Join(link, "status.json"), nil, nil, nil)
	if err := tr.Flush(); !errors.Is(err, files.ErrSymlink) {
		t.Fatalf("write through a symlinked status directory: %v, want ErrSymlink", err)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Fatalf("written into the link's target: %v", entries)
	}
}

// TestStatusDirOfAnotherUserRefused: `mkdir -m777 /tmp/secrets-sidecar`
// and a forged ready file by another user: the daemon does not write
// there (one warning naming the path and the reason), and the forged file
// stays as it is, for isready to refuse (cmd/secrets-sidecar tests that).
func TestStatusDirOfAnotherUserRefused(t *testing.T) {
	uid, asRoot := otherUser()
	dir := filepath.Join(t.TempDir(), "secrets-sidecar")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "status.json")
	forged := `{"ready":true,"updated_at":"` + time.Now().Format(time.RFC3339Nano) + `","secrets":[]}`
	if err := os.WriteFile(path, []byte(forged), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "status directory " + dir + " is writable by group or others (mode 0777) and not sticky: refusing to use it"
	if asRoot {
		chown(t, dir, uid)
		chown(t, path, uid)
		want = "status directory " + dir + " is owned by uid 65534, not by this process (uid 0), and not sticky: refusing to use it"
	}
	core, logs := observer.New(zapcore.DebugLevel)
	tr := status.NewTracker(path, zap.New(core), nil, nil)
	tr.Configure(twoSecrets())
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Succeeded("db", time.Now(), 1) // news: another write, refused again
	tr.Failed("tls", time.Now(), "x")
	time.Sleep(100 * time.Millisecond)
	err := tr.Flush()
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, status.ErrUntrusted) || err.Error() != want {
		t.Fatalf("write: %v\nwant %s", err, want)
	}
	if got, _ := os.ReadFile(path); string(got) != forged {
		t.Fatalf("the forged file changed: %s", got)
	}
	warns := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessage("status file not written; isready will report not ready").All()
	if len(warns) != 1 || warns[0].ContextMap()["path"] != path || !strings.Contains(warns[0].ContextMap()["error"].(string), want) {
		t.Fatalf("want one warning naming the path and the reason, got %v", logs.All())
	}
	if tr.Ready() {
		t.Fatal("ready") // /ready says 503
	}
}

// TestStatusDirModes: which existing directories the daemon uses.
func TestStatusDirModes(t *testing.T) {
	uid, asRoot := otherUser()
	for _, c := range []struct {
		name     string
		mode     fs.FileMode // chmod of the directory, sticky included
		dirOwner int         // -1: ours
		file     int         // owner of an existing status file; -1: ours, -2: none
		ok       bool
	}{
		{"ours 0755", 0o755, -1, -2, true},
		{"ours 0700 with our file", 0o700, -1, -1, true},
		{"ours but group-writable", 0o775, -1, -2, false},
		{"sticky and ours, like a private /tmp", fs.ModeSticky | 0o777, -1, -2, true},
		{"sticky with our file", fs.ModeSticky | 0o777, -1, -1, true},
		{"sticky with another user's file", fs.ModeSticky | 0o777, -1, uid, !asRoot},
		{"sticky but owned by another user", fs.ModeSticky | 0o777, uid, -2, !asRoot},
		{"another user's 0755", 0o755, uid, -2, !asRoot},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "status.json")
			if c.file != -2 {
				if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
				if c.file >= 0 {
					chown(t, path, c.file)
				}
			}
			if err := os.Chmod(dir, c.mode); err != nil {
				t.Fatal(err)
			}
			if c.dirOwner >= 0 {
				chown(t, dir, c.dirOwner)
			}
			err := status.NewTracker(path, nil, nil, nil).Flush()
			if c.ok != (err == nil) {
				t.Fatalf("write: %v, want ok %v", err, c.ok)
			}
			if err != nil && !errors.Is(err, status.ErrUntrusted) {
				t.Fatalf("refused for another reason: %v", err)
			}
			if err == nil {
				if _, err := status.ReadFile(path); err != nil {
					t.Fatalf("written but not readable: %v", err)
				}
			}
		})
	}
}

// TestStatusFileSymlinkReplaced: a status file that is a symlink (in a
// directory of ours) is replaced, never written through.
func TestStatusFileSymlinkReplaced(t *testing.T) {
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(base, "status.json")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := status.NewTracker(path, nil, nil, nil).Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Fatalf("written through the link: %q", got)
	}
	if _, err := status.ReadFile(path); err != nil {
		t.Fatal(err)
	}
}

// TestStatusDirMadePrivate: a missing status directory is made 0700 and
// ours, whatever the umask.
func TestStatusDirMadePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "run", "secrets-sidecar")
	if err := status.NewTracker(filepath.Join(dir, "status.json"), nil, nil, nil).Flush(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Lstat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != fs.ModeDir|0o700 || int(fi.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
			t.Errorf("%s: %v owned by %d", d, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
		}
	}
}

// TestReadFileRefusesUntrusted: what isready must not believe.
func TestReadFileRefusesUntrusted(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	body := `{"ready":true,"updated_at":"` + time.Now().Format(time.RFC3339Nano) + `","secrets":[]}`
	if err := os.WriteFile(good, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := status.ReadFile(good); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(dir, "writable.json")
	if err := os.WriteFile(writable, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(body+strings.Repeat(" ", status.MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		link:        "is a symbolic link",
		zero:        "is a symbolic link",
		"/dev/zero": "not a regular file",
		fifo:        "not a regular file",
		writable:    "is writable by group or others (mode 0666); refusing to trust it",
		big:         "file too large",
	}
	if uid, asRoot := otherUser(); asRoot {
		forged := filepath.Join(dir, "forged.json")
		if err := os.WriteFile(forged, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		chown(t, forged, uid)
		cases[forged] = "is owned by uid 65534, not by this process (uid 0); refusing to trust it"
	} else {
		cases["/etc/passwd"] = "is owned by uid 0, not by this process"
	}
	for path, want := range cases {
		done := make(chan error, 1)
		go func() { _, err := status.ReadFile(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v, want one line naming it and %q", path, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: ReadFile blocked", path)
		}
	}
}
