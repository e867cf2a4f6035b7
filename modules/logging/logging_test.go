package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

const secretValue = "hunter2-7f3a9c"

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestJSONWithStandardFields(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.NewLogger(logging.Options{Level: "info", Version: "v1.2.3"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", zap.String("secret_name", "db"))
	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("want 1 line at info, got %d: %s", len(got), buf.String())
	}
	if got[0]["service"] != "secrets-sidecar" || got[0]["version"] != "v1.2.3" || got[0]["msg"] != "shown" ||
		got[0]["level"] != "info" || got[0]["secret_name"] != "db" || got[0]["ts"] == nil {
		t.Errorf("fields: %v", got[0])
	}
}

func TestLevelsAndFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.NewLogger(logging.Options{Level: "error", Format: "console"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("no")
	log.Error("yes")
	if out := buf.String(); strings.Contains(out, "no") || !strings.Contains(out, "ERROR\tlogging/logging_test.go") {
		t.Errorf("console at error level: %q", out)
	}
	if _, err := logging.NewLogger(logging.Options{Level: "chatty"}, &buf); err == nil {
		t.Error("bad level accepted")
	}
	if _, err := logging.NewLogger(logging.Options{Format: "xml"}, &buf); err == nil {
		t.Error("bad format accepted")
	}
}

// TestRedaction proves both guards: the Redacted type prints as
// [REDACTED] however it is logged or formatted, and fields named like
// secrets are redacted whatever their type.
func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.NewLogger(logging.Options{Level: "debug"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	r := logging.Redacted(secretValue)
	log.Info("typed",
		zap.Any("a", r), zap.Stringer("b", r), zap.Reflect("c", map[string]any{"k": r}),
		zap.String("d", fmt.Sprintf("%s %v %q %x %#v %+v", r, r, r, r, r, r)),
		zap.Error(fmt.Errorf("wrapped: %v", r)))
	log.Info("by key", zap.String("token", secretValue), zap.String("Secret_ID", secretValue),
		zap.Any("data", map[string]string{"password": secretValue}), zap.String("password", secretValue))
	log.With(zap.String("client_token", secretValue)).Info("with")
	if strings.Contains(buf.String(), secretValue) {
		t.Fatalf("secret leaked:\n%s", buf.String())
	}
	if n := strings.Count(buf.String(), logging.RedactedText); n < 12 {
		t.Errorf("expected the redaction marker for every field, found %d:\n%s", n, buf.String())
	}
	if r.Reveal() != secretValue {
		t.Error("Reveal must return the value")
	}
	if b, _ := json.Marshal(struct{ V logging.Redacted }{r}); strings.Contains(string(b), secretValue) {
		t.Errorf("json leaked: %s", b)
	}
}

func TestModuleWithFx(t *testing.T) {
	var buf bytes.Buffer
	env, err := config.ParseEnv([]string{"SIDECAR_LOG_LEVEL=info"})
	if err != nil {
		t.Fatal(err)
	}
	var log *zap.Logger
	app := fxtest.New(t,
		fx.WithLogger(logging.FxEventLogger),
		fx.Supply(env, logging.Output{W: &buf}, buildinfo.Info{Version: "v9"}),
		logging.Module,
		fx.Populate(&log),
	)
	app.RequireStart().RequireStop()
	log.Info("hello")
	got := lines(t, &buf)
	// fx's own provide/invoke/start events are debug: quiet at info.
	if len(got) != 1 || got[0]["msg"] != "hello" || got[0]["version"] != "v9" {
		t.Fatalf("want only our line at info, got:\n%s", buf.String())
	}
}

func TestFxErrorsAreConcise(t *testing.T) {
	var buf bytes.Buffer
	log, _ := logging.NewLogger(logging.Options{}, &buf)
	app := fx.New(
		fx.WithLogger(func() fxevent.Logger { return logging.FxEventLogger(log) }),
		fx.Provide(func() (int, error) { return 0, errors.New("root cause here") }),
		fx.Invoke(func(int) {}),
	)
	if app.Err() == nil {
		t.Fatal("want an error")
	}
	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("want the failure logged once (not again for the invoke that needed it), got:\n%s", buf.String())
	}
	for _, l := range got {
		if l["level"] != "error" || l["error"] != "root cause here" || l["stack"] != nil || l["errorVerbose"] != nil {
			t.Errorf("want a lean error line with the root cause, got %v", l)
		}
	}
}

// A config problem fails the app's construction, but the command prints it
// as plain lines: fx's events about it stay at debug, so it is shown once.
func TestFxUsageErrorsLeftToTheCommand(t *testing.T) {
	for _, err := range []error{
		config.Problems{{File: "c.yaml", Msg: "exec --env nosuch: no secret of that name in the config"}},
		config.EnvError{"VAULT_TOKEN: not set"},
	} {
		var buf bytes.Buffer
		log, _ := logging.NewLogger(logging.Options{}, &buf)
		app := fx.New(
			fx.WithLogger(func() fxevent.Logger { return logging.FxEventLogger(log) }),
			fx.Provide(func() (int, error) { return 0, fmt.Errorf("wrapped: %w", err) }),
			fx.Invoke(func(int) {}),
		)
		if app.Err() == nil {
			t.Fatal("want an error")
		}
		if got := lines(t, &buf); len(got) != 0 {
			t.Errorf("%T logged at info or above:\n%s", err, buf.String())
		}
	}
}
