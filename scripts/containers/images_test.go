//go:build containers

package containers

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// The images the tests build, FROM scratch out of local files (nothing can
// be pulled), with the legacy builder (DOCKER_BUILDKIT=0). The Compose test
// files name them.
const (
	imageSidecar  = "secrets-sidecar-test/sidecar:containers"
	imageBusybox  = "secrets-sidecar-test/busybox:containers"
	imageDevvault = "secrets-sidecar-test/devvault:containers"
	imageAppExec  = "secrets-sidecar-test/app-exec:containers" // busybox + the sidecar binary, in exec mode
)

// Environment that `make test-containers` sets.
const (
	envBinary  = "SIDECAR_BIN"     // the static binary `make build` made
	envVersion = "SIDECAR_VERSION" // its version and commit stamps
	envCommit  = "SIDECAR_COMMIT"
	envBusybox = "SIDECAR_BUSYBOX" // a static busybox (Debian's busybox-static)
)

// applets are the busybox applets the test images link: what app.sh (and
// its reload webhook), app/report.sh, seed/seed.sh and the dev server's
// health check run.
var applets = []string{"sh", "cat", "chown", "cut", "env", "httpd", "id", "ls", "md5sum", "mkdir", "sed", "sha256sum", "sleep", "wget"}

// stamp is the version and commit the sidecar binary carries.
type stamp struct{ version, commit string }

var (
	buildOnce sync.Once
	built     stamp
	buildErr  error
)

// images builds the test images once per run (the first test to ask pays
// for it and logs it) and returns the sidecar binary's stamp.
func images(t *testing.T) stamp {
	t.Helper()
	buildOnce.Do(func() {
		buildErr = errors.New("the test that built them failed") // if buildImages ends the test
		built, buildErr = buildImages(t)
	})
	if buildErr != nil {
		t.Fatalf("building the test images: %v", buildErr)
	}
	return built
}

func buildImages(t *testing.T) (stamp, error) {
	st := stamp{version: os.Getenv(envVersion), commit: os.Getenv(envCommit)}
	bin, busybox := os.Getenv(envBinary), os.Getenv(envBusybox)
	if bin == "" || busybox == "" || st.version == "" || st.commit == "" {
		return st, fmt.Errorf("%s, %s, %s and %s must be set: run `make test-containers`", envBinary, envBusybox, envVersion, envCommit)
	}
	devvault := vaulttest.Binary(t)
	for _, b := range []string{bin, busybox, devvault} {
		if err := static(b); err != nil {
			return st, err
		}
	}
	engine := docker(t, "version", "--format", "{{.Server.Version}}")
	t.Logf("engine %s, docker-compose %s", engine, strings.TrimSpace(execute(t, time.Minute, nil, "docker-compose", "version", "--short").stdout))

	// The sidecar: Dockerfile.prebuilt on the context prebuilt-context.sh
	// assembles around the prebuilt binary.
	ctx := t.TempDir()
	if r := execute(t, time.Minute, nil, "sh", "../../deployments/docker/prebuilt-context.sh", bin, ctx); r.code != 0 {
		return st, fmt.Errorf("prebuilt-context.sh: exit %d: %s", r.code, r.stderr)
	}
	dockerfile, err := os.ReadFile("../../deployments/docker/Dockerfile.prebuilt")
	if err != nil {
		return st, err
	}
	if legacyEngine(engine) {
		// Docker before 25 has no start interval, and its legacy builder
		// rejects the flag; BuildKit's newer frontends accept it and such
		// engines ignore it. The image is otherwise the release's.
		dockerfile = regexp.MustCompile(` --start-interval=\S+`).ReplaceAll(dockerfile, nil)
		t.Logf("engine %s (before 25): building without HEALTHCHECK --start-interval, which its builder rejects", engine)
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), dockerfile, 0o644); err != nil {
		return st, err
	}
	start := time.Now()
	build(t, imageSidecar, ctx, filepath.Join(ctx, "Dockerfile"), "VERSION="+st.version, "COMMIT="+st.commit)

	// busybox with its applet links; the dev server on the same files.
	tools := t.TempDir()
	if err := os.Mkdir(filepath.Join(tools, "bin"), 0o755); err != nil {
		return st, err
	}
	if err := copyFile(busybox, filepath.Join(tools, "bin", "busybox")); err != nil {
		return st, err
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(tools, "bin", a)); err != nil {
			return st, err
		}
	}
	build(t, imageBusybox, tools, "../../examples/compose/test/Dockerfile.busybox")
	if err := copyFile(devvault, filepath.Join(tools, "devvault")); err != nil {
		return st, err
	}
	build(t, imageDevvault, tools, "../../examples/compose/test/Dockerfile.devvault")
	// The app with the sidecar inside: COPY --from the sidecar's image.
	build(t, imageAppExec, t.TempDir(), "../../examples/compose/test/Dockerfile.exec", "SIDECAR_IMAGE="+imageSidecar)
	t.Logf("built %s, %s, %s and %s in %s", imageSidecar, imageBusybox, imageDevvault, imageAppExec, time.Since(start).Round(time.Millisecond))
	return st, nil
}

// build builds one labelled image with the legacy builder.
func build(t *testing.T, tag, context, dockerfile string, buildArgs ...string) {
	t.Helper()
	args := []string{"build", "--quiet", "--label", label, "--tag", tag, "--file", dockerfile}
	for _, a := range buildArgs {
		args = append(args, "--build-arg", a)
	}
	docker(t, append(args, context)...)
}

// legacyEngine reports whether the engine's version is before 25.
func legacyEngine(version string) bool {
	major, err := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	return err == nil && major < 25
}

// static fails for a binary that needs a dynamic loader: a scratch image
// has no libc.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: a scratch image cannot run it", path)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
