package config

import (
	"strconv"
	"strings"
	"testing"
)

// TestEnvBounds reads env_start and env_end past a command name that holds
// spaces and parentheses.
func TestEnvBounds(t *testing.T) {
	// Fields 3 to 52; env_start is field 50, env_end 51.
	f := make([]string, 50)
	for i := range f {
		f[i] = strconv.Itoa(i + 3)
	}
	f[50-3], f[51-3] = "6000", "7000"
	start, end, err := envBounds([]byte("42 (a) (b c) " + strings.Join(f, " ") + "\n"))
	if err != nil || start != 6000 || end != 7000 {
		t.Fatalf("start %d end %d err %v, want 6000 7000", start, end, err)
	}
	if _, _, err := envBounds([]byte("42 (x) S 1 2\n")); err == nil {
		t.Fatal("a short stat line was accepted")
	}
}
