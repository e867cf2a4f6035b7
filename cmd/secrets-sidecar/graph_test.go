package main

import (
	"bufio"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// testHooks are optional dependencies only tests supply.
var testHooks = []string{
	"tracing.Exporter", // spans to memory instead of OTLP
}

// notInGraph are the optional dependencies a command's graph leaves out on
// purpose, by command; every other optional dependency must be provided.
// None: a graph that needs no metrics, status or change actions (once)
// provides their explicit Discard implementations instead.
var notInGraph = map[string][]string{}

// TestGraphs builds each command's fx graph as main does (nothing is
// started, no Vault is needed) and fails when an optional dependency
// (`optional:"true"`) is missing from it: fx would silently hand the
// component its no-op instead (no metrics, no status, no breaker probe).
func TestGraphs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "graph-test-token")
	t.Setenv("SIDECAR_STATUS_FILE", filepath.Join(dir, "status.json"))
	t.Setenv("SIDECAR_HTTP_ADDR", "127.0.0.1:0")
	cfg := writeConfig(t, dir, "secrets:\n  - {name: db, path: app/db, destination: "+dir+"/db, key: v}\n")
	env, err := config.LoadRunEnv()
	if err != nil {
		t.Fatal(err)
	}
	g := globals{configPath: cfg, stdout: io.Discard, stderr: io.Discard}
	graphs := map[string][]fx.Option{
		"run":  runOptions(g, env),
		"once": onceOptions(g, env, modes.OnceSettings{Timeout: time.Minute, Workers: 1}),
		"exec": execOptions(g, env, modes.ExecSettings{
			Timeout: time.Minute, Workers: 1, Argv: []string{"true"}, OnChange: modes.OnChangeSignal,
			Signal: syscall.SIGHUP, StopSignal: syscall.SIGTERM, StopTimeout: time.Second,
		}),
	}
	for name, opts := range graphs {
		t.Run(name, func(t *testing.T) {
			var dot fx.DotGraph
			app := fx.New(append(opts, fx.NopLogger, fx.Populate(&dot))...)
			if err := app.Err(); err != nil {
				t.Fatalf("%s: the graph does not build: %v", name, err)
			}
			provided, optional := graphTypes(string(dot))
			if len(optional) == 0 {
				t.Fatal("no optional dependency found in the graph: the DOT format changed?")
			}
			for _, typ := range optional {
				if !provided[typ] && !slices.Contains(notInGraph[name], typ) && !slices.Contains(testHooks, typ) {
					t.Errorf("%s: optional dependency %s is not provided: it falls back to its no-op", name, typ)
				}
			}
			for _, typ := range notInGraph[name] {
				if provided[typ] {
					t.Errorf("%s: %s is provided now; take it off notInGraph", name, typ)
				}
			}
			t.Logf("%s: %d types provided, %d optional dependencies, %d left out on purpose", name, len(provided), len(optional), len(notInGraph[name]))
		})
	}
}

var (
	dotResult   = regexp.MustCompile(`^\t\t"([^"]+)" \[`)
	dotOptional = regexp.MustCompile(`^\tconstructor_\d+ -> "([^"]+)" \[.*style=dashed`)
)

// graphTypes reads dig's DOT graph: every type a constructor provides, and
// every type some constructor takes as an optional parameter.
func graphTypes(dot string) (provided map[string]bool, optional []string) {
	provided = map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(dot))
	for sc.Scan() {
		if m := dotResult.FindStringSubmatch(sc.Text()); m != nil {
			provided[m[1]] = true
		}
		if m := dotOptional.FindStringSubmatch(sc.Text()); m != nil && !slices.Contains(optional, m[1]) {
			optional = append(optional, m[1])
		}
	}
	slices.Sort(optional)
	return provided, optional
}
