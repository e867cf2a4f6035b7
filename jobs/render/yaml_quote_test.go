package render

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// yamlTrapStrings are strings that some YAML 1.1 or 1.2 resolver reads as
// something else when written plain, or that YAML's indicator, comment and
// whitespace rules would change.
var yamlTrapStrings = []string{
	"", " ", "  lead", "trail  ", "\ttab", "=", "<<", "~", "-", "?", ":", ",", "[", "]", "{", "}", "#", "&", "*", "!", "|", ">", "'", `"`, "%", "@", "`",
	"- x", "? x", ": x", "#x", "&a", "*a", "!tag", "|-", ">-", "'x'", `"x"`, "%YAML", "@x", "`x`", "[a, b]", "{a: b}",
	"a: b", "a #b", "a:b", "a# b", "key:", "--- x", "---", "...",
	"y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
	"true", "True", "TRUE", "tRuE", "false", "False", "FALSE", "fAlSe", "yEs", "oN",
	"null", "Null", "NULL", "nULL",
	"0755", "0o17", "0O17", "0x1F", "0X1f", "0b101", "-0b1", "+12", "-12", "1_000", "1,000", "0", "-0", "00",
	"1:20", "190:20:30", "-1:20", "1:20.5",
	"1.5", "-1.5", "1e3", "1E3", "1e-3", "1.0e+3", ".5", "5.", "+.5", "1_000.5",
	".inf", ".Inf", ".INF", "-.inf", "-.Inf", "+.inf", ".nan", ".NaN", ".NAN",
	"2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.10Z", "2001-12-14 21:59:43.10 -5", "2002-12-14 1:02:03",
	"line one\nline two", "trailing newline\n", "\n", "\r\n", "cr\rmid", "a\n\nb", "  \n  ", "\u2028ls", "ps\u2029", "nel\u0085", "\ufeffbom",
	"ctl\x01\x02\x1b\x7f", "nul\x00byte", `back\slash`, `\n not a newline`, `"\"`,
	"héllo wörld ✓ 日本語 😀", "\u00a0nbsp", "a\u200bb",
	strings.Repeat("long words with spaces ", 12) + " two  spaces   and  more",
	strings.Repeat("x", 200) + " " + strings.Repeat("y ", 60),
}

// yamlTrapData puts every trap string in as a key and as a value, and the
// whole list again nested in a list and a map.
func yamlTrapData() map[string]any {
	data := map[string]any{}
	list := make([]any, len(yamlTrapStrings))
	nested := map[string]any{}
	for i, s := range yamlTrapStrings {
		data[s] = s
		list[i] = s
		nested[s] = []any{s}
	}
	data["_list"] = list
	data["_nested"] = nested
	return data
}

// checkYAMLRoundTrip compares what a reader got back (decoded from JSON, so
// that both readers are compared the same way) with the data.
func checkYAMLRoundTrip(t *testing.T, reader string, back map[string]any) {
	t.Helper()
	for _, s := range yamlTrapStrings {
		if got, ok := back[s]; !ok {
			t.Errorf("%s: key %q did not come back as that string", reader, s)
		} else if got != s {
			t.Errorf("%s: value %q read back as %#v", reader, s, got)
		}
	}
	list, _ := back["_list"].([]any)
	nested, _ := back["_nested"].(map[string]any)
	if len(list) != len(yamlTrapStrings) || len(nested) != len(yamlTrapStrings) {
		t.Fatalf("%s: nested list/map came back with %d/%d elements, want %d", reader, len(list), len(nested), len(yamlTrapStrings))
	}
	for i, s := range yamlTrapStrings {
		if list[i] != s {
			t.Errorf("%s: list element %q read back as %#v", reader, s, list[i])
		}
		if l, _ := nested[s].([]any); len(l) != 1 || l[0] != s {
			t.Errorf("%s: nested %q read back as %#v", reader, s, nested[s])
		}
	}
}

func renderTraps(t *testing.T) []byte {
	t.Helper()
	r, err := Compile(&config.Secret{Name: "traps", Format: FormatYAML})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(yamlTrapData())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestYAMLQuotingYAML12: the YAML 1.2 reader the repository uses gets every
// string back unchanged, as a key and as a value.
func TestYAMLQuotingYAML12(t *testing.T) {
	out := renderTraps(t)
	var back map[string]any
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	checkYAMLRoundTrip(t, "yaml.v3", back)
}

// pyYAMLReader reads a YAML file with PyYAML's safe_load (a YAML 1.1
// resolver) and prints it as JSON, strings escaped so that every byte
// survives the trip.
const pyYAMLReader = `import json, sys, yaml
with open(sys.argv[1], "rb") as f:
    doc = yaml.safe_load(f)
json.dump(doc, sys.stdout, ensure_ascii=True)
`

// TestYAMLQuotingYAML11: PyYAML, a YAML 1.1 reader (yes/no/on/off bools,
// sexagesimal numbers, "=" and "<<" keys, timestamps), gets every string
// back unchanged too. CI installs Debian's python3-yaml
// (scripts/check-deployments.sh) before the tests run.
func TestYAMLQuotingYAML11(t *testing.T) {
	py := pyYAML(t)
	file := filepath.Join(t.TempDir(), "traps.yaml")
	if err := os.WriteFile(file, renderTraps(t), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py, "-c", pyYAMLReader, file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("PyYAML cannot read the output: %v\n%s", err, stderr.String())
	}
	var back map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &back); err != nil {
		t.Fatalf("PyYAML gave a document that is not a mapping of JSON values: %v\n%s", err, stdout.String())
	}
	checkYAMLRoundTrip(t, "PyYAML", back)
}

// TestYAMLNumbersBothReaders: JSON numbers stay numbers for both readers
// (YAML 1.1 reads 1e3 as a string, so exponents are written 1.0e+3).
func TestYAMLNumbersBothReaders(t *testing.T) {
	for text, want := range map[string]string{"1e21": "1.0e+21", "1E5": "1.0E+5", "2.5e-3": "2.5e-3", "1.5": "1.5", "-7": "-7"} {
		if got := number(text).Value; got != want {
			t.Errorf("number(%q) = %q, want %q", text, got, want)
		}
	}
}

// pyYAML is a python3 that has PyYAML: Debian's (where python3-yaml
// installs), else the first on PATH. None is a failure, not a skip.
func pyYAML(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import yaml").Run() == nil {
			return py
		}
	}
	t.Fatalf("the YAML 1.1 check needs python3 with PyYAML (tried %v): apt-get install python3 python3-yaml; make check-deployments installs them", candidates)
	return ""
}
