package containers

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// finalStage returns a Dockerfile's last stage: from its last FROM line to
// the end of the file, comments included.
func finalStage(dockerfile string) (string, error) {
	lines := strings.SplitAfter(dockerfile, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.ToUpper(lines[i]), "FROM ") {
			return strings.Join(lines[i:], ""), nil
		}
	}
	return "", fmt.Errorf("no FROM line")
}

// fromBuildStage matches the main Dockerfile's copies out of its build
// stage's /image/ directory; the prebuilt Dockerfile copies the same tree
// from its context's image/ directory.
var fromBuildStage = regexp.MustCompile(`(?m)^COPY --from=build( [^ \n]+)* /image/`)

// comparePrebuilt reports how the prebuilt Dockerfile's final stage differs
// from the main Dockerfile's, after mapping the main stage's
// `COPY --from=build [flags] /image/X` to `COPY [flags] image/X`.
func comparePrebuilt(mainFile, prebuiltFile string) error {
	mainStage, err := finalStage(mainFile)
	if err != nil {
		return fmt.Errorf("Dockerfile: %w", err)
	}
	preStage, err := finalStage(prebuiltFile)
	if err != nil {
		return fmt.Errorf("Dockerfile.prebuilt: %w", err)
	}
	if strings.Count(strings.ToUpper(prebuiltFile), "\nFROM ") != 1 {
		return fmt.Errorf("Dockerfile.prebuilt: want one stage (FROM scratch), got more")
	}
	if !fromBuildStage.MatchString(mainStage) {
		return fmt.Errorf("Dockerfile: the final stage copies nothing from the build stage's /image/")
	}
	want := fromBuildStage.ReplaceAllString(mainStage, "COPY${1} image/")
	if preStage == want {
		return nil
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(preStage, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Errorf("final stages differ at stage line %d:\n  Dockerfile (mapped): %q\n  Dockerfile.prebuilt: %q", i+1, w, g)
		}
	}
	return fmt.Errorf("final stages differ")
}

// TestPrebuiltStageMatchesDockerfile: deployments/docker/Dockerfile.prebuilt
// (the image from `make build`'s binary) has the main Dockerfile's final
// stage word for word (user, entrypoint, command, health check, labels,
// comments), apart from where the files come from; a drift in either fails.
func TestPrebuiltStageMatchesDockerfile(t *testing.T) {
	mainFile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	prebuilt, err := os.ReadFile("../../deployments/docker/Dockerfile.prebuilt")
	if err != nil {
		t.Fatal(err)
	}
	if err := comparePrebuilt(string(mainFile), string(prebuilt)); err != nil {
		t.Fatalf("deployments/docker/Dockerfile.prebuilt drifted from Dockerfile: %v", err)
	}

	// The comparison sees a change on either side.
	for _, tc := range []struct{ name, from, to string }{
		{"health check", "--retries=3", "--retries=5"},
		{"user", "USER 65534:65534", "USER 0:0"},
		{"ownership of /secrets", "--chown=65534:65534", "--chown=0:0"},
		{"label", `org.opencontainers.image.revision="${COMMIT}"`, `org.opencontainers.image.revision="x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(prebuilt), tc.from) {
				t.Fatalf("Dockerfile.prebuilt has no %q", tc.from)
			}
			if comparePrebuilt(string(mainFile), strings.Replace(string(prebuilt), tc.from, tc.to, 1)) == nil {
				t.Errorf("a changed prebuilt stage (%s) went unnoticed", tc.name)
			}
			if comparePrebuilt(strings.Replace(string(mainFile), tc.from, tc.to, 1), string(prebuilt)) == nil {
				t.Errorf("a changed main stage (%s) went unnoticed", tc.name)
			}
		})
	}
}

// instructions lists a Dockerfile's instructions of the given keyword, one
// string each, continuation lines joined and comments left out.
func instructions(dockerfile, keyword string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(dockerfile, "\n") {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		cur.WriteString(strings.TrimSuffix(line, "\\"))
		if cont {
			continue
		}
		ins := strings.Join(strings.Fields(cur.String()), " ")
		cur.Reset()
		if kw, _, _ := strings.Cut(ins, " "); strings.EqualFold(kw, keyword) {
			out = append(out, ins)
		}
	}
	return out
}

// TestExecDockerfileVariant: the Compose test's exec-mode image
// (examples/compose/test/Dockerfile.exec) is built as the example's
// (examples/compose/app/Dockerfile.exec): the sidecar binary copied from
// the sidecar's image, the same user, entrypoint and health check; only
// the base images and the command (CMD) differ.
func TestExecDockerfileVariant(t *testing.T) {
	example, err := os.ReadFile("../../examples/compose/app/Dockerfile.exec")
	if err != nil {
		t.Fatal(err)
	}
	variant, err := os.ReadFile("../../examples/compose/test/Dockerfile.exec")
	if err != nil {
		t.Fatal(err)
	}
	const copyBinary = "COPY --from=sidecar /secrets-sidecar /secrets-sidecar"
	for _, f := range []struct{ name, text string }{{"example", string(example)}, {"test variant", string(variant)}} {
		if copies := instructions(f.text, "COPY"); len(copies) == 0 || copies[0] != copyBinary {
			t.Errorf("%s: first COPY %q, want %q", f.name, copies, copyBinary)
		}
		if froms := instructions(f.text, "FROM"); len(froms) != 2 || froms[0] != "FROM ${SIDECAR_IMAGE} AS sidecar" {
			t.Errorf("%s: FROM %q, want the sidecar's image (ARG SIDECAR_IMAGE) as stage sidecar, then the app's base", f.name, froms)
		}
	}
	for _, kw := range []string{"USER", "ENTRYPOINT", "HEALTHCHECK"} {
		e, v := instructions(string(example), kw), instructions(string(variant), kw)
		if len(e) != 1 || strings.Join(e, "\n") != strings.Join(v, "\n") {
			t.Errorf("%s: the example has %q, the test variant %q", kw, e, v)
		}
	}
}
