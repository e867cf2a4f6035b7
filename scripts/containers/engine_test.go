//go:build containers

package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// label marks everything the tests create; scripts/test-containers.sh
// removes whatever carries it before and after a run. The Compose test
// files spell it out too.
const label = "org.secrets-sidecar.test=containers"

// result is what one command did.
type result struct {
	stdout, stderr string
	code           int
}

// execute runs name with args (and extra environment) for at most timeout.
// A command that cannot start, or that runs out of time, fails the test.
func execute(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: no answer in %s\n%s%s", name, strings.Join(args, " "), timeout, r.stdout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}

// dockerTry runs the docker CLI and returns what it did.
func dockerTry(t *testing.T, args ...string) result {
	t.Helper()
	return execute(t, 3*time.Minute, []string{"DOCKER_BUILDKIT=0"}, "docker", args...)
}

// docker runs the docker CLI, fails the test unless it exits 0, and returns
// its output without the final newline.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	r := dockerTry(t, args...)
	if r.code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return strings.TrimSuffix(r.stdout, "\n")
}

// state is the part of `docker inspect` (a container) the tests read.
type state struct {
	Name         string
	RestartCount int
	State        struct {
		Status     string
		Running    bool
		Restarting bool
		ExitCode   int
		OOMKilled  bool
		StartedAt  time.Time
		FinishedAt time.Time
		Health     *struct {
			Status string
			Log    []struct {
				Start, End time.Time
				ExitCode   int
				Output     string
			}
		}
	}
}

func inspect(t *testing.T, container string) state {
	t.Helper()
	var s []state
	if err := json.Unmarshal([]byte(docker(t, "inspect", container)), &s); err != nil || len(s) != 1 {
		t.Fatalf("docker inspect %s: %v", container, err)
	}
	return s[0]
}

// waitHealthy waits until the container's health check passes and returns
// how long that took from the call; it fails the test if the container
// stops or turns unhealthy first, or after timeout. A container its restart
// policy is about to start again counts as not started yet: Docker reports
// it Running and Restarting, with the health of the run that ended
// (unhealthy: a stopped container's health is set so), and resets the
// health to "starting" when the new run begins.
func waitHealthy(t *testing.T, container string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		s := inspect(t, container)
		if s.State.Health == nil {
			t.Fatalf("%s has no health check", container)
		}
		switch {
		case s.State.Restarting:
			if time.Since(start) > timeout {
				t.Fatalf("%s still restarting after %s (%d restarts):\n%s", container, timeout, s.RestartCount, docker(t, "logs", container))
			}
		case s.State.Health.Status == "healthy":
			return time.Since(start)
		case !s.State.Running || s.State.Health.Status == "unhealthy" && checkedSinceStart(s):
			t.Fatalf("%s: %s, health %s, exit %d:\n%s", container, s.State.Status, s.State.Health.Status,
				s.State.ExitCode, docker(t, "logs", container))
		case time.Since(start) > timeout:
			t.Fatalf("%s not healthy after %s: %+v", container, timeout, s.State.Health.Log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkedSinceStart says whether the container's latest health check ran
// in its current run, so that its health is this run's and not the one
// Docker left from the run before (between a restart's start and the
// health monitor's reset).
func checkedSinceStart(s state) bool {
	l := s.State.Health.Log
	return len(l) > 0 && !l[len(l)-1].Start.Before(s.State.StartedAt)
}

// waitLogs waits until the container's output (stdout and stderr) holds
// every one of want and returns it.
func waitLogs(t *testing.T, container string, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := dockerTry(t, "logs", container)
		logs := r.stdout + r.stderr
		missing := ""
		for _, w := range want {
			if !strings.Contains(logs, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in its output after %s:\n%s", container, missing, timeout, logs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// removeContainer removes a container (and its anonymous volumes) when the
// test ends.
func removeContainer(t *testing.T, name string) {
	t.Helper()
	_ = dockerTry(t, "rm", "-f", "-v", name) // a leftover from a failed run
	t.Cleanup(func() { _ = dockerTry(t, "rm", "-f", "-v", name) })
}

// volume creates a labelled named volume, removed when the test ends, and
// returns its name and its directory on this host (the local driver's).
func volume(t *testing.T, name string) (string, string) {
	t.Helper()
	_ = dockerTry(t, "volume", "rm", "-f", name)
	docker(t, "volume", "create", "--label", label, name)
	t.Cleanup(func() { _ = dockerTry(t, "volume", "rm", "-f", name) })
	return name, docker(t, "volume", "inspect", "--format", "{{.Mountpoint}}", name)
}

// networks lists the engine's networks; no test may add one.
func networks(t *testing.T) string {
	t.Helper()
	names := strings.Fields(docker(t, "network", "ls", "--format", "{{.Name}}"))
	sort.Strings(names)
	return strings.Join(names, " ")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago: the
// containers share the host's network.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
