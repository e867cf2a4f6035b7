package render

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"go.yaml.in/yaml/v3"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// tricky are values every format must carry unchanged.
var tricky = map[string]string{
	"PLAIN":     "s3cr3t",
	"SAFE":      "user@host:5432/db,x=1+2%3-_.",
	"EMPTY":     "",
	"SPACES":    "  leading and trailing  ",
	"UNICODE":   "héllo wörld ✓ 日本語 😀",
	"NEWLINES":  "line one\nline two\r\nline three\n",
	"EQUALS":    "a=b==c",
	"SQUOTE":    "it's 'quoted'",
	"DQUOTE":    `say "hi"`,
	"DOLLAR":    "$HOME ${PATH} $(id) `id` $$",
	"BACKSLASH": `C:\path\to\n\t\\`,
	"HASH":      "#not a comment ! also : colon",
	"TILDE":     "~/x:~root",
	"GLOB":      "*.txt ? [a-z]",
	"SEMI":      "a; touch INJECTED && echo pwned | cat > INJECTED2",
	"TAB":       "a\tb\fc",
	"YAMLISH":   "yes",
	"NUMBERISH": "0123",
	"NULLISH":   "null",
	"DASH":      "- item",
	"BRACES":    "{json: [1, 2]}",
}

func trickyData() map[string]any {
	d := make(map[string]any, len(tricky))
	for k, v := range tricky {
		d[k] = v
	}
	return d
}

func renderFormat(t *testing.T, format string, data map[string]any) []byte {
	t.Helper()
	r, err := Compile(&config.Secret{Name: "fmt", Format: format})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(data)
	if err != nil {
		t.Fatalf("format %s: %v", format, err)
	}
	return out
}

// TestEnvIsShellSafe sources the env output with sh and reads every value
// back byte for byte.
func TestEnvIsShellSafe(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh is needed to prove the env format: %v", err)
	}
	data := trickyData()
	data["NUMBER"] = json.Number("1e21")
	data["NESTED"] = map[string]any{"k": "it's $x"}
	data["NULL"] = nil
	out := renderFormat(t, FormatEnv, data)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secrets.env"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	keys := sortedKeys(data)
	script := ". ./secrets.env && printf '%s\\0'"
	for _, k := range keys {
		script += ` "$` + k + `"`
	}
	cmd := exec.Command(sh, "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing the env file failed: %v\n%s", err, out)
	}
	vals := strings.Split(string(got), "\x00")
	if len(vals) != len(keys)+1 {
		t.Fatalf("read %d values, want %d:\n%s", len(vals)-1, len(keys), out)
	}
	for i, k := range keys {
		if want := FieldText(data[k]); vals[i] != want {
			t.Errorf("%s: sh read %q, want %q", k, vals[i], want)
		}
	}
	for _, f := range []string{"INJECTED", "INJECTED2"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("sourcing the env file ran a command from a value (%s exists)", f)
		}
	}

	// The quoting decisions, as a reader sees them.
	for _, line := range []string{
		"PLAIN=s3cr3t\n",
		"SAFE=user@host:5432/db,x=1+2%3-_.\n",
		"EMPTY=''\n",
		"SQUOTE='it'\\''s '\\''quoted'\\'''\n",
		"DOLLAR='$HOME ${PATH} $(id) `id` $$'\n",
		"NEWLINES='line one\nline two\r\nline three\n'\n",
		"NUMBER=1e21\n",
		"NULL=null\n",
		"NESTED='{\"k\":\"it'\\''s $x\"}'\n",
	} {
		if !bytes.Contains(out, []byte(line)) {
			t.Errorf("env output lacks %q:\n%s", line, out)
		}
	}
	if !bytes.HasPrefix(out, []byte("BACKSLASH=")) {
		t.Errorf("env output is not sorted by key:\n%s", out)
	}
}

func TestEnvRejectsBadNames(t *testing.T) {
	r, err := Compile(&config.Secret{Name: "e", Format: FormatEnv})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data map[string]any
		want string
	}{
		{map[string]any{"ok": "1", "db-pass": "x"}, `secret "e": format env: key "db-pass" is not a valid environment variable name`},
		{map[string]any{"1ST": "x", "a b": "y", "GOOD": "z"}, `keys "1ST", "a b" are not valid environment variable names`},
		{map[string]any{"": "x"}, `key "" is not a valid`},
		{map[string]any{"ÜBER": "x"}, `key "ÜBER" is not a valid`},
		{map[string]any{"NUL": "a\x00b"}, `the value of "NUL" holds a NUL byte`},
	} {
		_, err := r.Render(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error = %v, want %q", tc.data, err, tc.want)
		}
	}
	out, err := r.Render(map[string]any{"_x9": "1", "A_B": "2"})
	if err != nil || string(out) != "A_B=2\n_x9=1\n" {
		t.Errorf("valid names: %q, %v", out, err)
	}
}

// javaLoad reads .properties text as java.util.Properties.load does (for
// the subset of the grammar a writer may produce, plus continuations).
func javaLoad(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := 0; i < len(lines); i++ {
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continues(line) && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		// key ends at the first unescaped '=', ':' or white space
		end, esc := len(line), false
		for j := 0; j < len(line); j++ {
			c := line[j]
			if esc {
				esc = false
				continue
			}
			if c == '\\' {
				esc = true
				continue
			}
			if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
				end = j
				break
			}
		}
		key, rest := line[:end], line[end:]
		rest = strings.TrimLeft(rest, " \t\f")
		if rest != "" && (rest[0] == '=' || rest[0] == ':') {
			rest = rest[1:]
		}
		rest = strings.TrimLeft(rest, " \t\f")
		out[javaUnescape(t, key)] = javaUnescape(t, rest)
	}
	return out
}

func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

func javaUnescape(t *testing.T, s string) string {
	var units []uint16
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x7e {
			t.Fatalf("properties output is not ASCII: %q", s)
		}
		if c != '\\' || i+1 == len(s) {
			units = append(units, uint16(c))
			continue
		}
		i++
		switch s[i] {
		case 't':
			units = append(units, '\t')
		case 'n':
			units = append(units, '\n')
		case 'r':
			units = append(units, '\r')
		case 'f':
			units = append(units, '\f')
		case 'u':
			v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				t.Fatalf("bad \\u escape in %q", s)
			}
			units = append(units, uint16(v))
			i += 4
		default:
			units = append(units, uint16(s[i]))
		}
	}
	return string(utf16.Decode(units))
}

func TestPropertiesRoundTrip(t *testing.T) {
	data := trickyData()
	data["key with spaces=and:colons#!"] = "v"
	data["ünïcode.key"] = "😀 outside the BMP"
	data["nested.obj"] = map[string]any{"a": json.Number("1.0")}
	out := renderFormat(t, FormatProperties, data)
	for _, b := range out {
		if b > 0x7e || (b < 0x20 && b != '\n') {
			t.Fatalf("properties output has byte %#x; want printable ASCII lines:\n%s", b, out)
		}
	}
	got := javaLoad(t, string(out))
	want := map[string]string{}
	for k, v := range data {
		want[k] = FieldText(v)
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("%q: read back %q, want %q", k, got[k], want[k])
			}
		}
		t.Fatalf("round trip differs:\n%s", out)
	}
	for _, line := range []string{
		`SPACES=\  leading and trailing  ` + "\n",
		`HASH=\#not a comment \! also \: colon` + "\n",
		`UNICODE=h\u00E9llo w\u00F6rld \u2713 \u65E5\u672C\u8A9E \uD83D\uDE00` + "\n",
		`key\ with\ spaces\=and\:colons\#\!=v` + "\n",
		`NEWLINES=line one\nline two\r\nline three\n` + "\n",
		`BACKSLASH=C\:\\path\\to\\n\\t\\\\` + "\n",
		`EMPTY=` + "\n",
	} {
		if !bytes.Contains(out, []byte(line)) {
			t.Errorf("properties output lacks %q:\n%s", line, out)
		}
	}
}

func jsonFixture() map[string]any {
	d := trickyData()
	d["number"] = json.Number("12345678901234567890")
	d["float"] = json.Number("3.0")
	d["exp"] = json.Number("1e21")
	d["bool"] = true
	d["null"] = nil
	d["nested"] = map[string]any{"z": []any{"<b>&", json.Number("-0.5"), false, nil}, "a": map[string]any{}}
	return d
}

func TestJSONFormat(t *testing.T) {
	data := jsonFixture()
	out := renderFormat(t, FormatJSON, data)
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var back map[string]any
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, data) {
		t.Fatalf("round trip differs:\n%s", out)
	}
	for _, frag := range []string{
		"{\n  \"BACKSLASH\": ",
		`"number": 12345678901234567890` + "\n}\n",
		`"float": 3.0,`,
		`"exp": 1e21,`,
		`"<b>&"`,
		"\"UNICODE\": \"héllo wörld ✓ 日本語 😀\"",
	} {
		if !bytes.Contains(out, []byte(frag)) {
			t.Errorf("json output lacks %q:\n%s", frag, out)
		}
	}
	if again := renderFormat(t, FormatJSON, data); !bytes.Equal(again, out) {
		t.Error("json output is not stable")
	}
	if got := string(renderFormat(t, FormatJSON, map[string]any{})); got != "{}\n" {
		t.Errorf("empty secret = %q", got)
	}
}

func TestYAMLFormat(t *testing.T) {
	data := jsonFixture()
	out := renderFormat(t, FormatYAML, data)
	var back map[string]any
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	for k, v := range tricky {
		if back[k] != v {
			t.Errorf("%s: read back %#v, want %q", k, back[k], v)
		}
	}
	if back["bool"] != true || back["null"] != nil || back["exp"] != 1e21 || back["float"] != 3.0 {
		t.Errorf("scalars read back as %#v %#v %#v %#v", back["bool"], back["null"], back["exp"], back["float"])
	}
	nested, _ := back["nested"].(map[string]any)
	if z, _ := nested["z"].([]any); len(z) != 4 || z[0] != "<b>&" || z[1] != -0.5 || z[2] != false || z[3] != nil {
		t.Errorf("nested read back as %#v", back["nested"])
	}
	for _, frag := range []string{
		`"BACKSLASH": `,
		`"number": 12345678901234567890` + "\n",
		`"float": 3.0` + "\n",
		`"exp": 1.0e+21` + "\n",
		`"YAMLISH": "yes"` + "\n",
		`"NUMBERISH": "0123"` + "\n",
		`"NULLISH": "null"` + "\n",
		`"nested":` + "\n" + `  "a": {}` + "\n" + `  "z":` + "\n" + `    - "<b>&"` + "\n    - -0.5\n    - false\n    - null\n",
	} {
		if !bytes.Contains(out, []byte(frag)) {
			t.Errorf("yaml output lacks %q:\n%s", frag, out)
		}
	}
	if !bytes.HasPrefix(out, []byte(`"BACKSLASH":`)) {
		t.Errorf("yaml keys not sorted:\n%s", out)
	}
	if got := string(renderFormat(t, FormatYAML, map[string]any{})); got != "{}\n" {
		t.Errorf("empty secret = %q", got)
	}
}
