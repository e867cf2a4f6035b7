package config_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// twoStyles renders a config written as Go values in block style and in
// flow style; in the flow one every mapping and list inside a secret or the
// notify/defaults blocks is on one line, so only the field path tells the
// fields apart.
func twoStyles(t *testing.T, doc map[string]any) (block, flow string) {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := n.Encode(doc); err != nil {
		t.Fatal(err)
	}
	var setFlow func(n *yaml.Node, depth int)
	setFlow = func(n *yaml.Node, depth int) {
		if depth >= 2 && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
			n.Style = yaml.FlowStyle
		}
		for _, c := range n.Content {
			setFlow(c, depth+1)
		}
	}
	setFlow(&n, 0)
	f, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), string(f)
}

// oneSecret is a valid config whose only secret has the given on_change.
func oneSecret(onChange ...any) map[string]any {
	return map[string]any{"secrets": []any{map[string]any{
		"name": "a", "path": "p", "destination": "/s/a", "key": "k", "on_change": onChange,
	}}}
}

func problemsOf(t *testing.T, src string) config.Problems {
	t.Helper()
	_, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(src))
	if err == nil {
		return nil
	}
	var probs config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %T %v, want Problems", err, err)
	}
	return probs
}

type ruleCase struct {
	name  string
	doc   map[string]any
	field string // "" when the config is valid
	msg   string
}

// checkRule loads the case in both styles and wants exactly one problem,
// on the named field and on the line that sets it: no follow-on noise.
func checkRule(t *testing.T, tc ruleCase) {
	t.Helper()
	block, flow := twoStyles(t, tc.doc)
	for style, src := range map[string]string{"block": block, "flow": flow} {
		probs := problemsOf(t, src)
		if tc.field == "" {
			if probs != nil {
				t.Errorf("%s, %s style: valid config rejected:\n%s\n%s", tc.name, style, probs, src)
			}
			continue
		}
		if len(probs) != 1 || probs[0].Field != tc.field || !strings.Contains(probs[0].Msg, tc.msg) {
			t.Errorf("%s, %s style: got\n%s\nwant one problem %s: ...%s...\nconfig:\n%s", tc.name, style, probs, tc.field, tc.msg, src)
			continue
		}
		// The line names the field, or (a block list or mapping) starts
		// its value; a missing field is reported at its parent's line.
		lines := strings.Split(src, "\n")
		key := tc.field[strings.LastIndexAny(tc.field, ".]")+1:]
		missing := strings.Contains(tc.msg, "required") || strings.HasPrefix(tc.msg, "set ")
		if p := probs[0]; key != "" && !missing {
			if p.Line < 1 || p.Line > len(lines) ||
				!strings.Contains(lines[p.Line-1], key) && (p.Line < 2 || !strings.Contains(lines[p.Line-2], key+":")) {
				t.Errorf("%s, %s style: problem on line %d, which does not set %q:\n%s", tc.name, style, p.Line, key, src)
			}
		}
	}
}

type m = map[string]any

func TestActionRules(t *testing.T) {
	const at = "secrets[0].on_change[0]"
	sig := func(fields m) m { return m{"signal": fields} }
	exe := func(fields m) m { return m{"exec": fields} }
	web := func(fields m) m { return m{"http": fields} }
	for _, tc := range []ruleCase{
		{"signal by pid file", oneSecret(sig(m{"name": "SIGHUP", "pid_file": "/run/a.pid"})), "", ""},
		{"signal without SIG", oneSecret(sig(m{"name": "HUP", "process": "nginx"})), "", ""},
		{"signal USR2", oneSecret(sig(m{"name": "SIGUSR2", "process": "my-app"})), "", ""},
		{"exec", oneSecret(exe(m{"command": []any{"/bin/reload"}})), "", ""},
		{"exec with args", oneSecret(exe(m{"command": []any{"reload", "--fast", 8080}, "timeout": "1m"})), "", ""},
		{"exec log_output", oneSecret(exe(m{"command": []any{"x"}, "log_output": true})), "", ""},
		{"exec log_output not a bool", oneSecret(exe(m{"command": []any{"x"}, "log_output": "maybe"})),
			at + ".exec.log_output", `expected true or false, got string "maybe"`},
		{"log_output on http", oneSecret(web(m{"url": "http://h", "log_output": true})),
			at + ".http.log_output", `unknown field "log_output"`},
		{"http", oneSecret(web(m{"url": "http://127.0.0.1:9000/-/reload"})), "", ""},
		{"http everything", oneSecret(web(m{
			"url": "https://u:pw@h/x?t=1", "method": "PATCH", "timeout": "1s",
			"headers": m{"X-Token": "abc", "Authorization": "Bearer x"}, "headers_file": "/run/h",
		})), "", ""},
		{"http custom method", oneSecret(web(m{"url": "http://h", "method": "PURGE"})), "", ""},
		{"http empty method", oneSecret(web(m{"url": "http://h", "method": ""})), "", ""},
		{"several actions", oneSecret(sig(m{"name": "HUP", "process": "a"}), exe(m{"command": []any{"x"}})), "", ""},
		{"no actions", oneSecret(), "", ""},

		{"no kind", oneSecret(m{}), at, "set exactly one of signal, exec, http"},
		{"null kind", oneSecret(m{"signal": nil}), at, "set exactly one of signal, exec, http"},
		{"two kinds", oneSecret(m{"signal": m{"name": "HUP", "process": "a"}, "exec": m{"command": []any{"x"}}}),
			at, "set exactly one of signal, exec, http, not signal and exec"},
		{"action a string", oneSecret("SIGHUP"), at, `expected a mapping, got string "SIGHUP"`},
		{"unknown kind", oneSecret(m{"kill": m{"process": "a"}}), at + ".kill", `unknown field "kill"`},
		{"unknown signal key", oneSecret(sig(m{"name": "HUP", "process": "a", "pid": 1})), at + ".signal.pid", `unknown field "pid"`},

		{"signal no name", oneSecret(sig(m{"process": "a"})), at + ".signal.name", "required (such as SIGHUP"},
		{"signal unknown", oneSecret(sig(m{"name": "SIGFOO", "process": "a"})), at + ".signal.name",
			`"SIGFOO" is not a signal (use an upper-case name such as SIGHUP`},
		{"signal lower case", oneSecret(sig(m{"name": "sigterm", "process": "a"})), at + ".signal.name", `did you mean "SIGTERM"?`},
		{"signal number", oneSecret(sig(m{"name": 1, "process": "a"})), at + ".signal.name", `"1" is not a signal`},
		{"signal name a list", oneSecret(sig(m{"name": []any{"HUP"}, "process": "a"})), at + ".signal.name", "expected a string, got list"},
		{"signal no target", oneSecret(sig(m{"name": "HUP"})), at + ".signal", "set one of pid_file"},
		{"signal two targets", oneSecret(sig(m{"name": "HUP", "process": "a", "pid_file": "/run/a.pid"})),
			at + ".signal.process", "pid_file and process are mutually exclusive"},
		{"relative pid_file", oneSecret(sig(m{"name": "HUP", "pid_file": "run/a.pid"})), at + ".signal.pid_file", "must be an absolute path"},
		{"empty pid_file", oneSecret(sig(m{"name": "HUP", "pid_file": ""})), at + ".signal.pid_file", "must not be empty"},
		{"process a path", oneSecret(sig(m{"name": "HUP", "process": "/usr/sbin/nginx"})), at + ".signal.process", "not a path"},
		{"empty process", oneSecret(sig(m{"name": "HUP", "process": ""})), at + ".signal.process", "must not be empty"},
		{"process a list", oneSecret(sig(m{"name": "HUP", "process": []any{"a"}})), at + ".signal.process", "expected a string, got list"},

		{"exec no command", oneSecret(exe(m{"timeout": "1s"})), at + ".exec.command", "required"},
		{"exec empty command", oneSecret(exe(m{"command": []any{}})), at + ".exec.command", "required"},
		{"exec command a string", oneSecret(exe(m{"command": "/bin/reload --fast"})), at + ".exec.command", "expected a list, got string"},
		{"exec empty program", oneSecret(exe(m{"command": []any{"", "x"}})), at + ".exec.command[0]", "must not be empty"},
		{"exec argument a mapping", oneSecret(exe(m{"command": []any{"x", m{"a": "b"}}})), at + ".exec.command[1]", "expected a string, got mapping"},
		{"exec program a list", oneSecret(exe(m{"command": []any{[]any{"x"}}})), at + ".exec.command[0]", "expected a string, got list"},
		{"exec zero timeout", oneSecret(exe(m{"command": []any{"x"}, "timeout": "0s"})), at + ".exec.timeout", "must be positive"},
		{"exec negative timeout", oneSecret(exe(m{"command": []any{"x"}, "timeout": "-1s"})), at + ".exec.timeout", "must be positive"},
		{"exec bad timeout", oneSecret(exe(m{"command": []any{"x"}, "timeout": "soon"})), at + ".exec.timeout", "is not a duration"},

		{"http no url", oneSecret(web(m{"method": "POST"})), at + ".http.url", "required"},
		{"http ftp", oneSecret(web(m{"url": "ftp://h/x"})), at + ".http.url", "must start with http:// or https://"},
		{"http no scheme", oneSecret(web(m{"url": "127.0.0.1:9000/reload"})), at + ".http.url", "must start with http:// or https://"},
		{"http no host", oneSecret(web(m{"url": "http:///reload"})), at + ".http.url", "has no host"},
		{"http not a URL", oneSecret(web(m{"url": "http://[::1"})), at + ".http.url", "is not a valid URL"},
		{"http lower-case method", oneSecret(web(m{"url": "http://h", "method": "post"})), at + ".http.method", `did you mean "POST"?`},
		{"http bad method", oneSecret(web(m{"url": "http://h", "method": "GET /"})), at + ".http.method", "is not an HTTP method"},
		{"http zero timeout", oneSecret(web(m{"url": "http://h", "timeout": "0s"})), at + ".http.timeout", "must be positive"},
		{"http headers a list", oneSecret(web(m{"url": "http://h", "headers": []any{"X-A: b"}})), at + ".http.headers", "expected a mapping, got list"},
		{"http bad header name", oneSecret(web(m{"url": "http://h", "headers": m{"a b": "x"}})), at + ".http.headers.a b", "is not a valid header name"},
		{"http header value with CRLF", oneSecret(web(m{"url": "http://h", "headers": m{"X-A": "x\r\nY: z"}})),
			at + ".http.headers.X-A", "must not contain line breaks"},
		{"http header twice", oneSecret(web(m{"url": "http://h", "headers": m{"X-A": "1", "x-a": "2"}})),
			at + ".http.headers.x-a", "names are case-insensitive"},
		{"http header value a list", oneSecret(web(m{"url": "http://h", "headers": m{"X-A": []any{"1"}}})),
			at + ".http.headers.X-A", "expected a string, got list"},
		{"http relative headers_file", oneSecret(web(m{"url": "http://h", "headers_file": "h.txt"})), at + ".http.headers_file", "must be an absolute path"},
		{"http empty headers_file", oneSecret(web(m{"url": "http://h", "headers_file": ""})), at + ".http.headers_file", "must not be empty"},
	} {
		checkRule(t, tc)
	}
}

func TestNotifyRules(t *testing.T) {
	with := func(notify m) map[string]any {
		doc := oneSecret()
		doc["notify"] = notify
		return doc
	}
	for _, tc := range []ruleCase{
		{"empty", with(m{}), "", ""},
		{"all set", with(m{"debounce": "100ms", "splay": "10s", "attempts": 10}), "", ""},
		{"one attempt", with(m{"attempts": 1, "splay": "0s"}), "", ""},
		{"debounce below minimum", with(m{"debounce": "50ms"}), "notify.debounce", `"50ms" is below the minimum of 100ms`},
		{"debounce zero", with(m{"debounce": "0s"}), "notify.debounce", "must be positive"},
		{"debounce not a duration", with(m{"debounce": "2"}), "notify.debounce", "is not a duration"},
		{"splay negative", with(m{"splay": "-1s"}), "notify.splay", "must not be negative"},
		{"splay not a duration", with(m{"splay": "a bit"}), "notify.splay", "is not a duration"},
		{"attempts zero", with(m{"attempts": 0}), "notify.attempts", "0 must be 1 to 10"},
		{"attempts negative", with(m{"attempts": -1}), "notify.attempts", "-1 must be 1 to 10"},
		{"attempts eleven", with(m{"attempts": 11}), "notify.attempts", "11 must be 1 to 10"},
		{"attempts a word", with(m{"attempts": "three"}), "notify.attempts", `expected an integer, got string "three"`},
		{"unknown key", with(m{"delay": "1s"}), "notify.delay", `unknown field "delay"`},
		{"notify a list", map[string]any{"notify": []any{1}, "secrets": oneSecret()["secrets"]}, "notify", "expected a mapping, got list"},
	} {
		checkRule(t, tc)
	}
}

func TestDestinationMustBeClean(t *testing.T) {
	dest := func(d string) map[string]any {
		return map[string]any{"secrets": []any{m{"name": "a", "path": "p", "destination": d, "key": "k"}}}
	}
	for _, tc := range []ruleCase{
		{"clean", dest("/vol/sub/x"), "", ""},
		{"dots in a name", dest("/vol/..x/x..y"), "", ""},
		{"dot-dot", dest("/vol/sub/../../elsewhere/x"), "secrets[0].destination", `not a clean path; did you mean "/elsewhere/x"?`},
		{"double slash", dest("/vol//x"), "secrets[0].destination", `did you mean "/vol/x"?`},
		{"leading double slash", dest("//vol/x"), "secrets[0].destination", `did you mean "/vol/x"?`},
		{"dot", dest("/vol/./x"), "secrets[0].destination", `did you mean "/vol/x"?`},
	} {
		checkRule(t, tc)
	}
}

// TestActionsResolved: what Load makes of testdata/good/actions.yaml.
func TestActionsResolved(t *testing.T) {
	cfg, err := config.Loader{LookupEnv: noEnv}.Load("testdata/good/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notify
	if n.Debounce.Duration != 500*time.Millisecond || n.Splay.Duration != 3*time.Second || n.Attempts != 5 {
		t.Errorf("notify %+v", n)
	}
	db, _ := cfg.Secret("db")
	if len(db.OnChange) != 6 || db.OnStart == nil || *db.OnStart {
		t.Fatalf("db: %d actions, on_start %v", len(db.OnChange), db.OnStart)
	}
	if s := db.OnChange[1].Signal; s.Name != "SIGUSR1" || s.Process != "nginx" || s.Signal() != syscall.SIGUSR1 {
		t.Errorf("flow signal %+v", s)
	}
	if e := db.OnChange[2].Exec; !slices.Equal(e.Command, []string{"/usr/local/bin/reload", "--fast", "8080"}) || e.Timeout.Duration != 10*time.Second {
		t.Errorf("flow exec %+v", e)
	}
	if h := db.OnChange[3].HTTP; h.Method != http.MethodPut || h.Timeout.Duration != 2*time.Second || h.Headers["X-Token"] != "abc" {
		t.Errorf("flow http %+v", h)
	}
	if h := db.OnChange[4].HTTP; h.Method != http.MethodPost || h.Timeout.Duration != config.DefaultHTTPTimeout || h.HeadersFile != "/run/secrets/hook-headers" {
		t.Errorf("http defaults %+v", h)
	}
	if e := db.OnChange[5].Exec; e.Timeout.Duration != config.DefaultExecTimeout {
		t.Errorf("exec default timeout %v", e.Timeout)
	}
	inherits, _ := cfg.Secret("inherits")
	if len(inherits.OnChange) != 1 || inherits.OnChange[0].Kind() != "signal" || inherits.OnStart == nil || !*inherits.OnStart {
		t.Fatalf("inherits: %+v on_start %v", inherits.OnChange, inherits.OnStart)
	}
	// HUP in defaults is spelled the one way after Load.
	if s := inherits.OnChange[0].Signal; s.Name != "SIGHUP" || s.PIDFile != "/run/app/app.pid" || s.Signal() != syscall.SIGHUP {
		t.Errorf("inherited signal %+v", s)
	}
	none, _ := cfg.Secret("none")
	if none.OnChange == nil || len(none.OnChange) != 0 || !*none.OnStart {
		t.Errorf("none: on_change %#v on_start %v", none.OnChange, *none.OnStart)
	}
}

// TestActionsDefaultsResolution: a secret's own on_change replaces the
// defaults' list, [] means none, unset and null inherit; on_start likewise.
func TestActionsDefaultsResolution(t *testing.T) {
	const defaults = "defaults:\n  on_start: true\n  on_change: [{exec: {command: [d]}}]\n"
	const base = "    name: a\n    path: p\n    destination: /s/a\n    key: k\n"
	for _, tc := range []struct {
		name, defaults, own string
		want                []string // each action's command[0]
		onStart             bool
	}{
		{"unset inherits", defaults, "", []string{"d"}, true},
		{"null inherits", defaults, "    on_change:\n    on_start:\n", []string{"d"}, true},
		{"own list replaces", defaults, "    on_change: [{exec: {command: [own1]}}, {exec: {command: [own2]}}]\n", []string{"own1", "own2"}, true},
		{"block list replaces", defaults, "    on_change:\n      - exec:\n          command: [own]\n", []string{"own"}, true},
		{"empty list is none", defaults, "    on_change: []\n", nil, true},
		{"own on_start", defaults, "    on_start: false\n", []string{"d"}, false},
		{"no defaults", "", "", nil, false},
		{"no defaults, own list", "", "    on_change: [{exec: {command: [own]}}]\n    on_start: true\n", []string{"own"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.defaults + "secrets:\n  -\n" + base + tc.own
			cfg, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(src))
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			s := cfg.Secrets[0]
			var got []string
			for _, a := range s.OnChange {
				got = append(got, a.Exec.Command[0])
				if a.Exec.Timeout.Duration != config.DefaultExecTimeout {
					t.Errorf("action %v: timeout %v, want the default", a.Exec.Command, a.Exec.Timeout)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("on_change %v, want %v", got, tc.want)
			}
			if s.OnStart == nil || *s.OnStart != tc.onStart {
				t.Errorf("on_start %v, want %v", s.OnStart, tc.onStart)
			}
			if cfg.Defaults.OnStart == nil {
				t.Error("defaults.on_start left nil")
			}
		})
	}
}

// TestNotifyDefaults: an empty config gets the documented notify values.
func TestNotifyDefaults(t *testing.T) {
	cfg, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte("secrets: [{name: a, path: p, destination: /s/a, key: k}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notify
	if n.Debounce.Duration != config.DefaultDebounce || n.Splay.Duration != 0 || n.Attempts != config.DefaultAttempts {
		t.Errorf("notify %+v", n)
	}
	if config.DefaultDebounce != 2*time.Second || config.DefaultAttempts != 3 {
		t.Errorf("defaults moved from the documented 2s and 3")
	}
}

// TestActionErrorsHideSecrets: header values and the passwords and tokens
// of URLs never appear in problems, even when they are what is wrong.
func TestActionErrorsHideSecrets(t *testing.T) {
	const secret = "s3cr3t"
	for _, action := range []string{
		`{http: {url: "ftp://u:` + secret + `@h/x?token=` + secret + `"}}`,
		`{http: {url: "http://u:` + secret + `@[::1"}}`,
		`{http: {url: "127.0.0.1:9000/?token=` + secret + `"}}`,
		`{http: {url: "http:///?token=` + secret + `"}}`,
		`{http: {url: "http://h", headers: {X-Token: "` + secret + `\r\nX-Other: 1"}}}`,
		`{http: {url: "http://h", headers: {X-Token: "` + secret + `\u0000"}}}`,
		`{http: {url: "http://h", headers: {X-Token: [` + secret + `]}}}`,
	} {
		src := "secrets: [{name: a, path: p, destination: /s/a, key: k, on_change: [" + action + "]}]\n"
		probs := problemsOf(t, src)
		if len(probs) == 0 {
			t.Errorf("accepted: %s", action)
		}
		if strings.Contains(probs.Error(), secret) {
			t.Errorf("problem shows the secret:\n%s", probs)
		}
	}
	for _, f := range []string{"testdata/bad/actions-block.yaml", "testdata/bad/actions-flow.yaml"} {
		_, err := config.Loader{LookupEnv: noEnv}.Load(f)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestFlowAndBlockNameSameFields: the same mistakes written in block and
// in flow style give the same problems (field and message), and nothing
// more: a line number cannot tell apart the fields of a flow mapping, and a
// duplicate key used to drop the secret (shifting the indexes after it).
func TestFlowAndBlockNameSameFields(t *testing.T) {
	for _, tc := range []struct {
		name, block, flow string
		want              []string
	}{
		{
			"wrong types",
			"secrets:\n  - name: a\n    path: [1]\n    destination: /x\n    owner: root\n    key: k\n",
			"secrets:\n  - {name: a, path: [1], destination: /x, owner: root, key: k}\n",
			[]string{`secrets[0].owner: expected an integer, got string "root"`, "secrets[0].path: expected a string, got list"},
		},
		{
			"duplicate key keeps later secrets in place",
			"secrets:\n  - name: a\n    name: b\n    path: x\n    destination: /a\n    key: k\n  - name: c\n    path: x\n    destination: relative\n    key: k\n",
			"secrets:\n  - {name: a, name: b, path: x, destination: /a, key: k}\n  - {name: c, path: x, destination: relative, key: k}\n",
			[]string{`secrets[0].name: duplicate key "name"`, `secrets[1].destination: "relative" must be an absolute path`},
		},
		{
			"only secret has a duplicate key",
			"secrets:\n  - name: a\n    path: x\n    path: y\n    destination: /a\n    key: k\n",
			"secrets:\n  - {name: a, path: x, path: y, destination: /a, key: k}\n",
			[]string{`secrets[0].path: duplicate key "path"`},
		},
		{
			"broken output field is still given",
			"secrets:\n  - name: a\n    path: x\n    destination: /a\n    template: [x]\n    left_delimiter: '[['\n",
			"secrets:\n  - {name: a, path: x, destination: /a, template: [x], left_delimiter: '[['}\n",
			[]string{"secrets[0].template: expected a string, got list"},
		},
		{
			"list item not a mapping",
			"secrets:\n  - a\n  - name: b\n    path: x\n    destination: /b\n",
			"secrets: [a, {name: b, path: x, destination: /b}]\n",
			[]string{`secrets[0]: expected a mapping, got string "a"`, "secrets[1]: one of template, template_file, key or format is required"},
		},
		{
			"action fields",
			"secrets:\n  - name: a\n    path: x\n    destination: /a\n    key: k\n    on_change:\n      - signal:\n          name: SIGHUP\n          pid_file: [x]\n      - exec:\n          command: [x]\n          timeout: [1]\n",
			"secrets:\n  - {name: a, path: x, destination: /a, key: k, on_change: [{signal: {name: SIGHUP, pid_file: [x]}}, {exec: {command: [x], timeout: [1]}}]}\n",
			[]string{"secrets[0].on_change[0].signal.pid_file: expected a string, got list", "secrets[0].on_change[1].exec.timeout: expected a duration (such as 30s), got list"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for style, src := range map[string]string{"block": tc.block, "flow": tc.flow} {
				var got []string
				for _, p := range problemsOf(t, src) {
					got = append(got, p.Field+": "+p.Msg)
				}
				slices.Sort(got) // the order follows the lines, which differ
				ok := len(got) == len(tc.want)
				for i := 0; ok && i < len(got); i++ {
					ok = strings.HasPrefix(got[i], tc.want[i])
				}
				if !ok {
					t.Errorf("%s style:\n got %s\nwant %s", style, fmt.Sprintf("%q", got), fmt.Sprintf("%q", tc.want))
				}
			}
		})
	}
}

// TestMergeKeys: << merges as in yaml.v3: the mapping's own keys win, and
// earlier merge sources win over later ones.
func TestMergeKeys(t *testing.T) {
	src := `secrets:
  - &base {name: a, path: p, destination: /s/a, key: k, mode: "0440", on_change: [{exec: {command: [base]}}]}
  - <<: *base
    name: b
    destination: /s/b
  - <<: [{mode: "0600"}, *base]
    name: c
    destination: /s/c
    on_change: []
`
	cfg, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, c := cfg.Secrets[1], cfg.Secrets[2]
	if b.Path != "p" || b.Mode.FileMode != 0o440 || len(b.OnChange) != 1 || b.OnChange[0].Exec.Command[0] != "base" {
		t.Errorf("b: %+v", b)
	}
	if c.Key != "k" || c.Mode.FileMode != 0o600 || len(c.OnChange) != 0 {
		t.Errorf("c: %+v", c)
	}
	if _, err := (config.Loader{LookupEnv: noEnv}).Parse("c.yaml", []byte("secrets:\n  - <<: 5\n    name: a\n")); err == nil ||
		!strings.Contains(err.Error(), "secrets[0]: a merge (<<) needs a mapping or a list of mappings") {
		t.Errorf("bad merge: %v", err)
	}
}

// TestAliasExpansionBounded: aliases that multiply a small file into a
// huge tree are refused quickly, not expanded.
func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("secrets:\n  - {name: a, path: p, destination: /s/a, key: k, on_change: [{exec: {command: &c0 [x, x, x, x, x, x, x, x, x, x]}}")
	b.WriteString("]}\n  - {name: b, path: p, destination: /s/b, key: k, on_change: &l1 [")
	for i := range 10 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("{exec: {command: *c0}}")
	}
	b.WriteString("]}\n")
	for s := range 200 {
		fmt.Fprintf(&b, "  - {name: s%d, path: p, destination: /s/s%d, key: k, on_change: *l1}\n", s, s)
	}
	start := time.Now()
	if _, err := (config.Loader{LookupEnv: noEnv}).Parse("c.yaml", []byte(b.String())); err != nil {
		t.Fatalf("a config sharing lists by alias is refused: %v", err)
	}
	t.Logf("200 secrets sharing one aliased list: %v", time.Since(start))

	var bomb strings.Builder
	bomb.WriteString("secrets:\n  - {name: a, path: p, destination: /s/a, key: k, on_change: [{exec: {command: &c [x, x, x, x, x, x, x, x, x, x]}}]}\n")
	bomb.WriteString("  - {name: b, path: p, destination: /s/b, key: k, on_change: &l [")
	for i := range 100 {
		if i > 0 {
			bomb.WriteString(", ")
		}
		bomb.WriteString("{exec: {command: *c}}")
	}
	bomb.WriteString("]}\n")
	for s := range 1000 {
		fmt.Fprintf(&bomb, "  - {name: s%d, path: p, destination: /s/s%d, key: k, on_change: *l}\n", s, s)
	}
	start = time.Now()
	_, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(bomb.String()))
	took := time.Since(start)
	t.Logf("alias bomb (%d bytes, 10^6 values when expanded): refused in %v", bomb.Len(), took)
	if err == nil || !strings.Contains(err.Error(), "expands to too many values through aliases") {
		t.Fatalf("alias bomb: %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("refusing the alias bomb took %v", took)
	}
}
