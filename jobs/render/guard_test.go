package render

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestLimitsStopRunawayTemplates runs templates that would hang, exhaust
// memory or overflow the stack without the guards, and checks that each
// fails with a limit error, quickly and without allocating the huge thing.
func TestLimitsStopRunawayTemplates(t *testing.T) {
	for _, tc := range []struct{ name, tpl, want string }{
		{"range over a huge int", `{{ range 1000000000000 }}{{ end }}`, "in a range loop: render limit exceeded: the template used its work budget"},
		{"until huge", `{{ range until 1000000000 }}x{{ end }}`, "error calling until: render limit exceeded: a list of 1000000000 elements is more than 100000"},
		{"until huge negative", `{{ until -1000000000 }}`, "a list of 1000000000 elements"},
		{"untilStep huge", `{{ untilStep 0 9000000000000000000 1 }}`, "error calling untilStep: render limit exceeded"},
		{"seq huge", `{{ seq 1 2 9000000000 }}`, "error calling seq: render limit exceeded"},
		{"seq one argument", `{{ seq -9000000000 }}`, "error calling seq: render limit exceeded"},
		{"repeat huge", `{{ repeat 1000000000 "abc" }}`, "error calling repeat: render limit exceeded: a string of 3000000000 bytes"},
		{"indent huge", `{{ indent 100000000 "a\nb" }}`, "error calling indent: render limit exceeded"},
		{"nindent huge", `{{ nindent 100000000 "a" }}`, "error calling nindent: render limit exceeded"},
		{"randAlphaNum huge", `{{ randAlphaNum 1000000000 }}`, "error calling randAlphaNum: render limit exceeded"},
		{"randBytes huge", `{{ randBytes 1000000000 }}`, "error calling randBytes: render limit exceeded"},
		{"string doubling", `{{ $s := "ab" }}{{ range until 64 }}{{ $s = print $s $s }}{{ end }}`, "error calling print: render limit exceeded"},
		{"string doubling with printf", `{{ $s := "ab" }}{{ range until 64 }}{{ $s = printf "%s%s" $s $s }}{{ end }}`, "error calling printf: render limit exceeded"},
		{"string doubling with cat", `{{ $s := "ab" }}{{ range until 64 }}{{ $s = cat $s $s }}{{ end }}`, "error calling cat: render limit exceeded"},
		{"list doubling", `{{ $l := list 1 }}{{ range until 64 }}{{ $l = concat $l $l }}{{ end }}`, "error calling concat: render limit exceeded"},
		{"infinite recursion", `{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}`, "in a template call: render limit exceeded: templates nest deeper than 1000 calls"},
		{"exponential recursion", `{{ define "r" }}{{ if lt (len .) 900 }}{{ template "r" (print . "x") }}{{ template "r" (print . "x") }}{{ end }}{{ end }}{{ template "r" "" }}`, "work budget"},
		{"huge output", `{{ $s := repeat 8000000 "x" }}{{ range until 10 }}{{ $s }}{{ end }}`, "the output is larger than 16777216 bytes"},
		{"map containing itself", `{{ $d := dict }}{{ $_ := set $d "self" $d }}{{ $d }}`, "error calling set: a map cannot contain itself"},
		{"map containing itself through a list", `{{ $d := dict }}{{ $_ := set $d "l" (list 1 $d) }}{{ $d }}`, "a map cannot contain itself"},
		{"merge a map into itself below the top", `{{ $d := dict "a" 1 }}{{ $s := dict "x" $d }}{{ $_ := merge $d $s }}{{ $d }}`, "error calling merge: a map cannot contain itself"},
		{"deep nesting built in a loop", `{{ $d := dict }}{{ range 5000 }}{{ $d = dict "a" $d }}{{ end }}{{ $d }}`, "error calling dict: render limit exceeded: a value nests more than 1000 lists or maps deep"},
		{"deep nesting through a mutated alias, printed", `{{ $root := dict }}{{ $cur := $root }}{{ range 5000 }}{{ $n := dict }}{{ $_ := set $cur "a" $n }}{{ $cur = $n }}{{ end }}{{ $root }}`, "printing a value: render limit exceeded: a value nests more than 1000"},
		{"deep nesting through a mutated alias, copied", `{{ $root := dict }}{{ $cur := $root }}{{ range 5000 }}{{ $n := dict }}{{ $_ := set $cur "a" $n }}{{ $cur = $n }}{{ end }}{{ deepCopy $root }}`, "error calling deepCopy: render limit exceeded: a value nests more than 1000"},
		{"shared list doubling", `{{ $d := list "x" }}{{ range 60 }}{{ $d = list $d $d }}{{ end }}{{ $d }}`, "a value holds more than 100000 list or map elements"},
		{"one big string listed many times", `{{ $s := repeat 1000000 "x" }}{{ $l := list }}{{ range 20 }}{{ $l = append $l $s }}{{ end }}{{ $l }}`, "a value holds more than 8388608 bytes"},
		{"quadratic uniq", `{{ $l := list }}{{ range until 99999 }}{{ $l = append $l . }}{{ end }}{{ uniq $l | len }}`, "work budget"},
		{"slow functions cost more", `{{ range until 2000 }}{{ rsaDecrypt "None" "" "x" "" }}{{ end }}`, "error calling rsaDecrypt: render limit exceeded: the template used its work budget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			out, err := renderTemplate(t, tc.tpl, map[string]any{"v": "x"})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("no error (output %d bytes)", len(out))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(tc.want, "render limit") || strings.Contains(tc.want, "budget") || strings.Contains(tc.want, "larger than") {
				if !errors.Is(err, ErrLimit) {
					t.Errorf("errors.Is(err, ErrLimit) = false for %v", err)
				}
			}
			// Failure guards, not performance assertions: without the
			// limits these run for hours or allocate gigabytes.
			if elapsed > 30*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<30 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

func TestLimitsLeaveNormalTemplatesAlone(t *testing.T) {
	list := make([]any, 5000)
	for i := range list {
		list[i] = map[string]any{"name": "user", "id": i}
	}
	data := map[string]any{"users": list, "pem": fixture(t, "leaf.crt")}
	tpl := `{{ range $u := (.users | fromJson) }}{{ $u.name | upper }}-{{ $u.id }} {{ end }}` +
		`{{ range until 200 }}{{ $.pem | certSANs | first }}{{ end }}` +
		`{{ define "r" }}{{ if gt . 0 }}{{ template "r" (sub . 1) }}{{ end }}{{ end }}{{ template "r" 500 }}` +
		`{{ $d := dict "leaf" "L" }}{{ range 50 }}{{ $d = dict "n" $d }}{{ end }}{{ $d | toJson | len }}{{ $d | len }}`
	r, err := Compile(templateSecret("big", tpl))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // the meter resets between renders
		out, err := r.Render(data)
		if err != nil {
			t.Fatalf("render %d: %v", i, err)
		}
		if !strings.HasPrefix(string(out), "USER-0 USER-1 ") || !strings.Contains(string(out), "USER-4999 example.com") || !strings.HasSuffix(string(out), "3121") {
			t.Fatalf("unexpected output prefix %.60q", out)
		}
	}
}

func TestInstanceIsReusableAfterALimit(t *testing.T) {
	r, err := Compile(templateSecret("reuse", `{{ if eq .mode "loop" }}{{ range until 10 }}{{ repeat 8000000 "x" }}{{ end }}{{ end }}ok`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Render(map[string]any{"mode": "loop"}); !errors.Is(err, ErrLimit) {
		t.Fatalf("loop: %v", err)
	}
	for range 3 {
		out, err := r.Render(map[string]any{"mode": "quick"})
		if err != nil || string(out) != "ok" {
			t.Fatalf("after a limit error: %q, %v", out, err)
		}
	}
}
