package config

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// takenVariables are the credentials the sidecar itself reads from its
// environment (the Vault library reads none of them once the client's
// token is cleared): they are taken out of the environment at start.
var takenVariables = []string{
	"VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
}

// taken holds the credentials TakeCredentials took, for LookupEnv.
var taken struct {
	sync.RWMutex
	done bool
	vars map[string]string
}

// TakeCredentials reads the sidecar's own credential variables (VAULT_TOKEN,
// VAULT_ROLE_ID, VAULT_SECRET_ID and the OTLP exporter's headers) from the
// environment once, into memory that LookupEnv serves to every later
// reader (a reload, a re-login), and removes them from the process: from
// Go's environment (os.Unsetenv) and from the environment block the kernel
// shows in /proc/PID/environ, whose bytes are overwritten with NULs
// (os.Unsetenv alone leaves them there). It returns the variables it took.
// A second call takes nothing more. Call it first thing in main.
func TakeCredentials() (names []string, err error) {
	taken.Lock()
	defer taken.Unlock()
	if taken.done {
		return nil, nil
	}
	taken.done = true
	taken.vars = map[string]string{}
	for _, k := range takenVariables {
		if v, ok := os.LookupEnv(k); ok {
			taken.vars[k] = strings.Clone(v)
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	for _, k := range names {
		_ = os.Unsetenv(k)
	}
	return names, scrubEnvironBlock(names)
}

// LookupEnv is os.LookupEnv that also serves the credentials
// TakeCredentials took.
func LookupEnv(key string) (string, bool) {
	taken.RLock()
	v, ok := taken.vars[key]
	taken.RUnlock()
	if ok {
		return v, true
	}
	return os.LookupEnv(key)
}

// Getenv is LookupEnv's value, "" when unset.
func Getenv(key string) string {
	v, _ := LookupEnv(key)
	return v
}

// Environ is os.Environ with the credentials TakeCredentials took.
func Environ() []string {
	env := os.Environ()
	taken.RLock()
	defer taken.RUnlock()
	for k, v := range taken.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// scrubEnvironBlock overwrites the values of names in the process's
// original environment block (env_start..env_end of /proc/self/stat)
// through /proc/self/mem, which a process may always write for itself.
func scrubEnvironBlock(names []string) error {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return fmt.Errorf("environment block: %w", err)
	}
	start, end, err := envBounds(stat)
	if err != nil {
		return err
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("environment block: %w", err)
	}
	defer mem.Close()
	block := make([]byte, end-start)
	if _, err := mem.ReadAt(block, start); err != nil {
		return fmt.Errorf("environment block: read: %w", err)
	}
	changed := false
	for off := 0; off < len(block); {
		n := bytes.IndexByte(block[off:], 0)
		if n < 0 {
			n = len(block) - off
		}
		entry := block[off : off+n]
		for _, k := range names {
			if bytes.HasPrefix(entry, []byte(k+"=")) {
				clear(entry[len(k)+1:])
				changed = true
			}
		}
		off += n + 1
	}
	if !changed {
		return nil
	}
	if _, err := mem.WriteAt(block, start); err != nil {
		return fmt.Errorf("environment block: write: %w", err)
	}
	return nil
}

// envBounds reads env_start and env_end (fields 50 and 51) from
// /proc/self/stat; the second field, the command name in parentheses, may
// itself hold spaces and parentheses.
func envBounds(stat []byte) (start, end int64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("environment block: /proc/self/stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:])) // fields 3...
	const envStart = 50 - 3
	if len(fields) <= envStart+1 {
		return 0, 0, fmt.Errorf("environment block: /proc/self/stat: %d fields", len(fields)+2)
	}
	start, err1 := strconv.ParseInt(fields[envStart], 10, 64)
	end, err2 := strconv.ParseInt(fields[envStart+1], 10, 64)
	if err1 != nil || err2 != nil || start <= 0 || end <= start {
		return 0, 0, fmt.Errorf("environment block: /proc/self/stat: env_start %q, env_end %q", fields[envStart], fields[envStart+1])
	}
	return start, end, nil
}
