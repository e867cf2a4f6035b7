// Command racer measures the start-up exposure of secrets-sidecar's
// credentials to a co-tenant of the same uid: an attacker process opens
// the newest PIDs' /proc/PID/environ and /proc/PID/mem in a loop while
// `secrets-sidecar version` is started again and again with a distinct
// VAULT_TOKEN, and counts the starts whose token it read. It runs the
// binary in two layouts, readable (root-owned, 0755) and execute-only
// (root-owned, 0511: the kernel then marks the process non-dumpable at
// execve), both as a non-root uid. Run it as root: `make racer`. It is a
// measurement, not a test.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const marker = "RACER-TOKEN-"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "attack" {
		attack()
		return
	}
	bin := flag.String("bin", "bin/secrets-sidecar", "the binary to start")
	n := flag.Int("n", 1000, "starts per layout")
	uid := flag.Int("uid", 65534, "uid (and gid) of the sidecar and of the attacker")
	flag.Parse()
	if err := run(*bin, *n, *uid); err != nil {
		fmt.Fprintln(os.Stderr, "racer:", err)
		os.Exit(1)
	}
}

func run(bin string, n, uid int) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: it installs root-owned copies of the binary and runs both sides as another uid")
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "racer-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	fmt.Printf("racer: %d starts of `secrets-sidecar version` per layout, sidecar and attacker as uid %d\n", n, uid)
	for _, mode := range []os.FileMode{0o755, 0o511} {
		path := filepath.Join(dir, fmt.Sprintf("secrets-sidecar-%04o", mode))
		if err := os.WriteFile(path, raw, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil { // root-owned: we are root
			return err
		}
		environ, mem, err := race(dir, path, n, uid)
		if err != nil {
			return err
		}
		fmt.Printf("layout root:root %04o: token read from /proc/PID/environ in %d of %d starts; /proc/PID/mem opened in %d\n",
			mode, environ, n, mem)
	}
	return nil
}

// race starts the attacker, then the binary n times, and returns in how
// many starts the attacker read the token and opened the memory.
func race(dir, bin string, n, uid int) (environ, mem int, err error) {
	self := filepath.Join(dir, "racer") // where uid can run it
	if err := copyFile(self, 0o755); err != nil {
		return 0, 0, err
	}
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	att := exec.CommandContext(context.Background(), self, "attack")
	att.SysProcAttr = cred
	out, err := att.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := att.Start(); err != nil {
		return 0, 0, err
	}
	type hit struct{ kind, token string }
	hits := make(chan hit, 1024)
	done := make(chan struct{})
	seenEnv, seenMem := map[string]bool{}, map[string]bool{}
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			kind, token, ok := strings.Cut(sc.Text(), " ")
			if ok {
				hits <- hit{kind, token}
			}
		}
	}()
	collect := func() {
		for {
			select {
			case h := <-hits:
				if h.kind == "environ" {
					seenEnv[h.token] = true
				} else {
					seenMem[h.token] = true
				}
			default:
				return
			}
		}
	}
	for i := range n {
		c := exec.CommandContext(context.Background(), bin, "version")
		c.Env = []string{"VAULT_TOKEN=" + marker + strconv.Itoa(i), "VAULT_ADDR=http://127.0.0.1:1"}
		c.SysProcAttr = cred
		c.Stdout, c.Stderr = io.Discard, io.Discard
		if err := c.Run(); err != nil {
			_ = att.Process.Kill()
			return 0, 0, fmt.Errorf("start %d: %w", i, err)
		}
		collect()
	}
	_ = att.Process.Kill()
	_ = att.Wait()
	<-done
	collect()
	return len(seenEnv), len(seenMem), nil
}

// attack opens the newest PIDs' environ and mem for ever, printing
// "environ TOKEN" for a token read and "mem TOKEN" for the memory of that
// process opened too.
func attack() {
	w := bufio.NewWriter(os.Stdout)
	next := newestPID()
	buf := make([]byte, 64<<10)
	for {
		found := false
		for pid := next; pid < next+64; pid++ {
			f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil {
				continue
			}
			found = true
			nr, _ := f.Read(buf)
			f.Close()
			token := ""
			if i := bytes.Index(buf[:nr], []byte(marker)); i >= 0 {
				end := bytes.IndexByte(buf[i:nr], 0)
				if end < 0 {
					end = nr - i
				}
				token = string(buf[i : i+end])
				fmt.Fprintln(w, "environ", token)
			}
			if token != "" {
				if m, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem"); err == nil {
					m.Close()
					fmt.Fprintln(w, "mem", token)
				}
			}
			_ = w.Flush()
			if pid > next+8 {
				next = pid - 8
			}
		}
		if !found {
			if p := newestPID(); p > next+64 {
				next = p - 8
			}
		}
	}
}

// newestPID reads the last PID the kernel handed out.
func newestPID() int {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	fields := strings.Fields(string(raw))
	p, _ := strconv.Atoi(fields[len(fields)-1])
	return p
}

// copyFile copies this program to path with mode.
func copyFile(path string, mode os.FileMode) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o700); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
