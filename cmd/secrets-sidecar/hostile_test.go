package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// attackEnv carries an attackPlan (JSON) to TestHostileAttacker in a
// re-executed test binary.
const attackEnv = "SECRETS_SIDECAR_TEST_ATTACK"

// hostileRace is how long the attacker races the sidecar.
const hostileRace = 20 * time.Second

// The attacker storms for attackStorm of every attackPeriod.
const attackPeriod, attackStorm = 10 * time.Millisecond, 7 * time.Millisecond

// attackPlan is what the attacker process does.
type attackPlan struct {
	Volume   string        // the shared volume; the attack is on Volume/sub
	Targets  []string      // where the planted symlinks point, in turn
	Duration time.Duration // how long to race
}

// attackReport is the attacker's last line on stdout, after attackMarker.
type attackReport struct {
	Iterations int // loop rounds
	Links      int // symlinks planted at sub
	MovedAside int // real sub directories (the sidecar's) moved away
}

const attackMarker = "ATTACK-REPORT "

// TestHostileAttacker is the hostile application, not a test of its own:
// TestHostileSymlinkRace runs the test binary again, as another user, with
// attackEnv set, and this function then races the sidecar. Without the
// variable there is nothing to attack and it returns at once.
func TestHostileAttacker(t *testing.T) {
	raw := os.Getenv(attackEnv)
	if raw == "" {
		return
	}
	var plan attackPlan
	if err := json.Unmarshal([]byte(raw), &plan); err != nil {
		t.Fatalf("%s: %v", attackEnv, err)
	}
	sub := filepath.Join(plan.Volume, "sub")
	var rep attackReport
	start := time.Now()
	deadline := start.Add(plan.Duration)
	for ; time.Now().Before(deadline); rep.Iterations++ {
		// Move aside a real sub the sidecar made, so that it has to make
		// it again: that mkdir is the moment to race.
		if fi, err := os.Lstat(sub); err == nil && fi.IsDir() {
			if os.Rename(sub, filepath.Join(plan.Volume, "aside-"+strconv.Itoa(rep.MovedAside))) == nil {
				rep.MovedAside++
			}
		}
		if os.Symlink(plan.Targets[rep.Iterations%len(plan.Targets)], sub) == nil {
			rep.Links++
		}
		_ = os.Remove(sub) // the link, or an empty directory the sidecar just made
		// In every period a breath with sub absent, whatever the
		// machine's speed: the sidecar's chance to write, which it must
		// take (and a new race on its mkdir).
		if phase := time.Since(start) % attackPeriod; phase >= attackStorm {
			time.Sleep(attackPeriod - phase)
		}
	}
	out, _ := json.Marshal(rep)
	fmt.Println(attackMarker + string(out))
}

// TestHostileSymlinkRace: the real binary as root syncs a real secret to
// vol/sub/x every second while a process of the (hostile) application,
// uid 65534 owning vol, swaps vol/sub between nothing, a symlink to a
// root-only file and a symlink to a root-only directory, and moves every
// real sub aside. The sidecar must never chmod, chown, create or write
// anything through those links, and must keep writing vol/sub/x whenever
// it can. Not root (CI), the same race runs with everything owned by the
// test's own user: it still proves that no operation is redirected.
func TestHostileSymlinkRace(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	asRoot := os.Geteuid() == 0
	appUID, appGID := os.Geteuid(), os.Getegid()
	if asRoot {
		appUID, appGID = 65534, 65534
	}

	base := t.TempDir()
	// The app must reach vol/ (t.TempDir's directories are 0700).
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	vol := filepath.Join(base, "vol")
	victimDir := filepath.Join(base, "victim-dir")
	victimFile := filepath.Join(base, "victim.key")
	state := filepath.Join(base, "state")
	for _, d := range []string{vol, victimDir, state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(vol, appUID, appGID); err != nil {
		t.Fatal(err)
	}
	const precious = "precious: not the app's\n"
	if err := os.WriteFile(victimFile, []byte(precious), 0o600); err != nil {
		t.Fatal(err)
	}

	p := prefix(t)
	const value = "the app's own secret"
	srv.PutKV2(t, "secret", p+"/x", map[string]any{"v": value})
	cfg := writeConfig(t, state, fmt.Sprintf(`defaults: {refresh_interval: 1s}
secrets:
  - {name: x, path: %s/x, destination: %s/sub/x, key: v}
`, p, vol))
	addr := freeAddr(t)
	d := startDaemon(t, cfg, state, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+addr)
	d.waitReady(t, 30*time.Second)
	writesBefore := metricSum(d.metrics(t), "secrets_sidecar_file_writes_total", `secret_name="x"`)

	rep, took := runAttacker(t, base, appUID, appGID, attackPlan{
		Volume: vol, Targets: []string{victimFile, victimDir}, Duration: hostileRace,
	})
	body := d.metrics(t)
	writes := metricSum(body, "secrets_sidecar_file_writes_total", `secret_name="x"`) - writesBefore
	refused := metricSum(body, "secrets_sidecar_errors_total", `secret_name="x"`, `stage="write"`)
	if !d.running() {
		t.Fatalf("the sidecar exited during the race: %v", d.err)
	}

	var problems []string
	fi, err := os.Lstat(victimFile)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != 0o600 || int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
		problems = append(problems, fmt.Sprintf("the file outside the volume is now %v %d:%d (was -rw------- %d:%d)",
			fi.Mode(), st.Uid, st.Gid, os.Geteuid(), os.Getegid()))
	}
	if got, err := os.ReadFile(victimFile); err != nil || string(got) != precious {
		problems = append(problems, fmt.Sprintf("the file outside the volume was rewritten (%d bytes, %v)", len(got), err))
	}
	if fi, err := os.Lstat(victimDir); err != nil {
		problems = append(problems, fmt.Sprintf("the directory outside the volume: %v", err))
	} else if fi.Mode() != fs.ModeDir|0o700 {
		problems = append(problems, fmt.Sprintf("the directory outside the volume is now %v, was drwx------", fi.Mode()))
	}
	if entries, _ := os.ReadDir(victimDir); len(entries) > 0 {
		problems = append(problems, fmt.Sprintf("the sidecar created %d entries in the directory outside the volume, first %q", len(entries), entries[0].Name()))
	}
	result := "no redirect"
	if len(problems) > 0 {
		result = strings.Join(problems, "; ")
	}
	t.Logf("race %s (root: %v, app uid %d): attacker %d iterations, %d symlinks planted, %d real sub directories moved aside; sidecar %d writes of vol/sub/x, %d refused; result: %s",
		took.Round(time.Millisecond), asRoot, appUID, rep.Iterations, rep.Links, rep.MovedAside, int(writes), int(refused), result)
	if len(problems) > 0 {
		t.Fatal(result)
	}
	if rep.Links < 1000 {
		t.Fatalf("the attacker hardly raced (%+v): the test proves nothing", rep)
	}
	if writes < 3 {
		t.Fatalf("the sidecar wrote vol/sub/x only %v times in %s of racing: it must keep writing when it can", writes, took)
	}
	// The race over, the sidecar puts the file back in place.
	dest := filepath.Join(vol, "sub", "x")
	waitFor(t, 20*time.Second, "vol/sub/x to be written again after the race", func() bool {
		fi, err := os.Lstat(dest)
		got, rerr := os.ReadFile(dest)
		return err == nil && rerr == nil && fi.Mode().IsRegular() && string(got) == value
	})
}

// runAttacker runs the test binary again as uid:gid, acting as
// TestHostileAttacker, and returns its report and how long it raced.
func runAttacker(t *testing.T, base string, uid, gid int, plan attackPlan) (attackReport, time.Duration) {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if uid != os.Geteuid() { // go test's build directory is private: give the app its own copy
		bin = copyExecutable(t, bin, filepath.Join(base, "attacker.test"))
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHostileAttacker$", "-test.timeout=5m")
	cmd.Dir = base
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), attackEnv + "=" + string(raw)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if uid != os.Geteuid() || gid != os.Getegid() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("attacker: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if js, ok := strings.CutPrefix(line, attackMarker); ok {
			var rep attackReport
			if err := json.Unmarshal([]byte(js), &rep); err != nil {
				t.Fatal(err)
			}
			return rep, took
		}
	}
	t.Fatalf("the attacker gave no report:\n%s", out)
	return attackReport{}, took
}

func copyExecutable(t *testing.T, from, to string) string {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
		t.Fatal(err)
	}
	return to
}
