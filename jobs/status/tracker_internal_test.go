package status

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestStopIsBounded: when the final write cannot proceed (here: another
// write holds the file lock, as a hung filesystem would), Stop gives up
// when its context ends and says why.
func TestStopIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	tr := NewTracker(path, nil, nil, nil)
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.fileMu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := tr.Stop(ctx)
	tr.fileMu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "status file "+path+": final write: context deadline exceeded" {
		t.Fatalf("Stop: %v", err)
	}
	// The final write still lands once the filesystem answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, err := ReadFile(path); err == nil && s.Stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("final write never landed")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestHeartbeatInterval(t *testing.T) {
	tr := NewTracker(filepath.Join(t.TempDir(), "s.json"), nil, nil, nil)
	if d := tr.heartbeat(); d != MaxHeartbeat {
		t.Errorf("no secrets: %v", d)
	}
	for _, c := range []struct {
		intervals []time.Duration
		want      time.Duration
	}{
		{[]time.Duration{time.Hour, 5 * time.Minute}, MaxHeartbeat},
		{[]time.Duration{time.Hour, 20 * time.Second, 40 * time.Second}, 20 * time.Second},
		{[]time.Duration{100 * time.Millisecond}, MinHeartbeat},
		{[]time.Duration{0, 30 * time.Second}, 30 * time.Second},
	} {
		var infos []SecretInfo
		for i, d := range c.intervals {
			infos = append(infos, SecretInfo{Name: string(rune('a' + i)), RefreshInterval: d})
		}
		tr.Configure(infos)
		if d := tr.heartbeat(); d != c.want {
			t.Errorf("%v: heartbeat %v, want %v", c.intervals, d, c.want)
		}
	}
}
