package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

const prebuiltDockerfile = "../../deployments/docker/Dockerfile.prebuilt"

var testStamp = Stamp{Version: "v1.2.3", Revision: "abc1234", Created: time.Unix(1700000000, 0).UTC()}

// instruction is one Dockerfile instruction: its keyword (upper case) and
// its arguments, continuation lines joined, comments left out.
type instruction struct{ keyword, args string }

func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
		if cont {
			continue
		}
		kw, args, _ := strings.Cut(strings.Join(strings.Fields(cur.String()), " "), " ")
		cur.Reset()
		out = append(out, instruction{strings.ToUpper(kw), args})
	}
	return out
}

// declared is what a Dockerfile's final stage declares, as an image
// configuration, with ARG defaults overridden as `--build-arg` does, and
// its COPY instructions.
type declared struct {
	config dockerspec.DockerOCIImageConfig
	copies []copyInstruction
}

type copyInstruction struct {
	src, dst string
	uid, gid int
}

// words splits KEY="VALUE" KEY2="VALUE2" (quoted values may hold spaces).
func words(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unbalanced quotes in %q", s)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

func declaredBy(text string, buildArgs map[string]string) (declared, error) {
	var d declared
	d.config.ExposedPorts = map[string]struct{}{}
	d.config.Labels = map[string]string{}
	args := map[string]string{}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return args[k] })
	}
	froms := 0
	for _, in := range parseDockerfile(text) {
		switch in.keyword {
		case "FROM":
			froms++
			if in.args != "scratch" {
				return d, fmt.Errorf("FROM %s: want scratch", in.args)
			}
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			if bv, ok := buildArgs[k]; ok {
				v = bv
			}
			args[k] = v
		case "LABEL":
			ws, err := words(in.args)
			if err != nil {
				return d, err
			}
			for _, w := range ws {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					return d, fmt.Errorf("LABEL %q: want KEY=VALUE", w)
				}
				d.config.Labels[k] = expand(v)
			}
		case "USER":
			d.config.User = in.args
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				d.config.ExposedPorts[p] = struct{}{}
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &d.config.Entrypoint); err != nil {
				return d, fmt.Errorf("ENTRYPOINT: want the exec (JSON) form: %w", err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(in.args), &d.config.Cmd); err != nil {
				return d, fmt.Errorf("CMD: want the exec (JSON) form: %w", err)
			}
		case "HEALTHCHECK":
			hc := &dockerspec.HealthcheckConfig{}
			rest := in.args
			for strings.HasPrefix(rest, "--") {
				var flag string
				flag, rest, _ = strings.Cut(rest, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
				var err error
				switch k {
				case "interval":
					hc.Interval, err = time.ParseDuration(v)
				case "timeout":
					hc.Timeout, err = time.ParseDuration(v)
				case "start-period":
					hc.StartPeriod, err = time.ParseDuration(v)
				case "start-interval":
					hc.StartInterval, err = time.ParseDuration(v)
				case "retries":
					hc.Retries, err = strconv.Atoi(v)
				default:
					err = fmt.Errorf("unknown flag")
				}
				if err != nil {
					return d, fmt.Errorf("HEALTHCHECK %s: %w", flag, err)
				}
			}
			cmd, ok := strings.CutPrefix(rest, "CMD ")
			var test []string
			if !ok || json.Unmarshal([]byte(cmd), &test) != nil {
				return d, fmt.Errorf("HEALTHCHECK %q: want CMD in the exec (JSON) form", rest)
			}
			hc.Test = append([]string{"CMD"}, test...)
			d.config.Healthcheck = hc
		case "COPY":
			c := copyInstruction{}
			f := strings.Fields(in.args)
			for len(f) > 2 && strings.HasPrefix(f[0], "--") {
				owner, ok := strings.CutPrefix(f[0], "--chown=")
				if !ok {
					return d, fmt.Errorf("COPY %s: only --chown is understood here", f[0])
				}
				u, g, _ := strings.Cut(owner, ":")
				var err1, err2 error
				c.uid, err1 = strconv.Atoi(u)
				c.gid, err2 = strconv.Atoi(g)
				if err1 != nil || err2 != nil {
					return d, fmt.Errorf("COPY --chown=%s: want numeric UID:GID", owner)
				}
				f = f[1:]
			}
			if len(f) != 2 {
				return d, fmt.Errorf("COPY %s: want one source and a destination", in.args)
			}
			c.src, c.dst = f[0], f[1]
			d.copies = append(d.copies, c)
		default:
			return d, fmt.Errorf("%s: not an instruction this check understands", in.keyword)
		}
	}
	if froms != 1 {
		return d, fmt.Errorf("%d stages, want one (FROM scratch)", froms)
	}
	return d, nil
}

// buildContext assembles a build context with prebuilt-context.sh around
// binary.
func buildContext(t *testing.T, binary []byte) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := filepath.Join(dir, "ctx")
	out, err := exec.Command("sh", "../../deployments/docker/prebuilt-context.sh", bin, ctx).CombinedOutput()
	if err != nil {
		t.Fatalf("prebuilt-context.sh: %v\n%s", err, out)
	}
	return ctx
}

// fakeELF is an ELF header alone for machine m: enough for debug/elf.
func fakeELF(t *testing.T, m elf.Machine, tail string) []byte {
	t.Helper()
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	buf.WriteString(tail)
	return buf.Bytes()
}

type entry struct {
	mode     int64
	uid, gid int
	content  string
}

// layerEntries reads a layer's tar: path (no trailing slash) -> entry.
func layerEntries(t *testing.T, l v1.Layer) map[string]entry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = entry{h.Mode, h.Uid, h.Gid, string(b)}
	}
}

// copied is what `COPY [--chown] c.src c.dst` puts in its layer from the
// context: c.src's tree under c.dst, the modes as in the context, the
// owner --chown's or root's.
func copied(t *testing.T, ctx string, c copyInstruction) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	src := filepath.Join(ctx, c.src)
	dst := strings.Trim(c.dst, "/")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		name := filepath.ToSlash(filepath.Join(dst, rel))
		if name == "." { // COPY dir/ / does not list /
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := int64(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		var content []byte
		if fi.Mode().IsRegular() {
			if content, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		out[name] = entry{mode, c.uid, c.gid, string(content)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkAgainst fails unless img is what the Dockerfile text declares
// for st on the context ctx: run configuration, labels, and one layer per
// COPY holding what that COPY copies.
func checkAgainst(t *testing.T, text string, img v1.Image, ctx string, st Stamp) error {
	t.Helper()
	d, err := declaredBy(text, map[string]string{"VERSION": st.Version, "COMMIT": st.Revision})
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return err
	}
	got := cfg.Config
	// A Dockerfile build FROM scratch sets PATH without an ENV; the
	// Dockerfile declares none.
	got.Env = nil
	if !reflect.DeepEqual(got, d.config) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(d.config)
		return fmt.Errorf("configuration\n  %s\nDockerfile.prebuilt declares\n  %s", g, w)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(d.copies) {
		return fmt.Errorf("%d layers, the Dockerfile has %d COPY instructions", len(layers), len(d.copies))
	}
	for i, c := range d.copies {
		if g, w := layerEntries(t, layers[i]), copied(t, ctx, c); !reflect.DeepEqual(g, w) {
			return fmt.Errorf("layer %d differs from COPY %s %s (owner %d:%d):\n  got  %v\n  want %v", i, c.src, c.dst, c.uid, c.gid, names(g), names(w))
		}
	}
	return nil
}

func names(m map[string]entry) []string {
	var out []string
	for k, e := range m {
		out = append(out, fmt.Sprintf("%s %04o %d:%d %dB", k, e.mode, e.uid, e.gid, len(e.content)))
	}
	return out
}

// TestImageMatchesDockerfile: the image imagebuild assembles is what
// deployments/docker/Dockerfile.prebuilt declares for the same build
// context (the image `make test-containers` builds and runs): user,
// entrypoint, command, exposed port, labels with the stamp, health check,
// and each COPY's files with their modes and owners; and a change to
// either side is caught.
func TestImageMatchesDockerfile(t *testing.T) {
	text, err := os.ReadFile(prebuiltDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := buildContext(t, fakeELF(t, elf.EM_X86_64, "binary"))
	img, err := Build(ctx, v1.Platform{OS: "linux", Architecture: "amd64"}, testStamp)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAgainst(t, string(text), img, ctx, testStamp); err != nil {
		t.Fatalf("the assembled image differs from Dockerfile.prebuilt: %v", err)
	}

	for _, tc := range []struct{ name, from, to string }{
		{"health check retries", "--retries=3", "--retries=5"},
		{"health check start interval", "--start-interval=1s", "--start-interval=2s"},
		{"user", "USER 65534:65534", "USER 0:0"},
		{"port", "EXPOSE 8080", "EXPOSE 9090"},
		{"command", `CMD ["run"]`, `CMD ["once"]`},
		{"owner of /secrets", "--chown=65534:65534", "--chown=0:0"},
		{"label", `org.opencontainers.image.revision="${COMMIT}"`, `org.opencontainers.image.revision="x"`},
		{"a label more", `LABEL `, `LABEL a="b" `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(text), tc.from) {
				t.Fatalf("Dockerfile.prebuilt has no %q", tc.from)
			}
			if checkAgainst(t, strings.Replace(string(text), tc.from, tc.to, 1), img, ctx, testStamp) == nil {
				t.Errorf("a Dockerfile with %q for %q went unnoticed", tc.to, tc.from)
			}
		})
	}
	t.Run("another stamp", func(t *testing.T) {
		other := testStamp
		other.Revision = "def5678"
		if checkAgainst(t, string(text), img, ctx, other) == nil {
			t.Error("an image stamped with another revision went unnoticed")
		}
	})
}

// TestBuildIsReproducible: the same context and stamp give the same
// digests, so a re-run of a release pushes nothing new; another commit
// time gives another image.
func TestBuildIsReproducible(t *testing.T) {
	ctx := buildContext(t, fakeELF(t, elf.EM_X86_64, "binary"))
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	digest := func(st Stamp) v1.Hash {
		img, err := Build(ctx, p, st)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Index([]Platformed{{p, img}}, st).Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := digest(testStamp), digest(testStamp)
	if a != b {
		t.Fatalf("two builds of one commit: %s and %s", a, b)
	}
	later := testStamp
	later.Created = later.Created.Add(time.Second)
	if c := digest(later); c == a {
		t.Fatalf("another commit time gave the same index %s", c)
	}
}

// testIndex assembles an index of amd64 and arm64 images around the given
// binaries.
func testIndex(t *testing.T, amd64, arm64 []byte) v1.ImageIndex {
	t.Helper()
	var imgs []Platformed
	for _, pb := range []struct {
		arch string
		bin  []byte
	}{{"amd64", amd64}, {"arm64", arm64}} {
		p := v1.Platform{OS: "linux", Architecture: pb.arch}
		img, err := Build(buildContext(t, pb.bin), p, testStamp)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, Platformed{p, img})
	}
	return Index(imgs, testStamp)
}

// TestIndex: an OCI index of OCI manifests, one per platform, each with
// the OCI annotations and its platform's configuration.
func TestIndex(t *testing.T) {
	idx := testIndex(t, fakeELF(t, elf.EM_X86_64, "a"), fakeELF(t, elf.EM_AARCH64, "b"))
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index: media type %s, %d manifests; want %s, 2", im.MediaType, len(im.Manifests), types.OCIImageIndex)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		desc := im.Manifests[i]
		if desc.MediaType != types.OCIManifestSchema1 || desc.Platform == nil || desc.Platform.String() != "linux/"+arch {
			t.Errorf("manifest %d: %s %v, want %s linux/%s", i, desc.MediaType, desc.Platform, types.OCIManifestSchema1, arch)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("%s: config media type %s", arch, m.Config.MediaType)
		}
		for _, l := range m.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("%s: layer media type %s", arch, l.MediaType)
			}
		}
		for _, anns := range []map[string]string{m.Annotations, im.Annotations} {
			for k, v := range map[string]string{
				"org.opencontainers.image.version":  "v1.2.3",
				"org.opencontainers.image.revision": "abc1234",
				"org.opencontainers.image.licenses": "Apache-2.0",
				"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
			} {
				if anns[k] != v {
					t.Errorf("%s: annotation %s=%q, want %q", arch, k, anns[k], v)
				}
			}
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != arch || cfg.OS != "linux" || !cfg.Created.Equal(testStamp.Created) {
			t.Errorf("%s: config %s/%s created %s", arch, cfg.OS, cfg.Architecture, cfg.Created)
		}
	}
}

// TestVerify: Verify passes the index as built and catches each way a
// pushed image could differ from the release.
func TestVerify(t *testing.T) {
	amd64, arm64 := fakeELF(t, elf.EM_X86_64, "amd64 binary"), fakeELF(t, elf.EM_AARCH64, "arm64 binary")
	idx := testIndex(t, amd64, arm64)
	want := map[string][]byte{"linux/amd64": amd64, "linux/arm64": arm64}
	report, err := Verify(idx, want, testStamp)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(report) != 4 || !strings.Contains(report[3], "linux/arm64: /secrets-sidecar 0511 0:0") || !strings.Contains(report[3], "EM_AARCH64") {
		t.Errorf("report: %q", report)
	}

	other := testStamp
	other.Version = "v9.9.9"
	for _, tc := range []struct {
		name  string
		idx   v1.ImageIndex
		want  map[string][]byte
		st    Stamp
		error string
	}{
		{"a byte of the binary", idx, map[string][]byte{"linux/amd64": amd64, "linux/arm64": fakeELF(t, elf.EM_AARCH64, "arm64 binarY")}, testStamp, "differs from the binary given"},
		{"a platform missing", idx, map[string][]byte{"linux/amd64": amd64, "linux/arm64": arm64, "linux/s390x": arm64}, testStamp, "no manifest for linux/s390x"},
		{"a platform more", idx, map[string][]byte{"linux/amd64": amd64}, testStamp, "platform linux/arm64 unexpected"},
		{"the wrong architecture's binary", testIndex(t, amd64, amd64), map[string][]byte{"linux/amd64": amd64, "linux/arm64": amd64}, testStamp, "want EM_AARCH64"},
		{"another version", idx, want, other, "run configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.idx, tc.want, tc.st)
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("Verify: %v, want an error with %q", err, tc.error)
			}
		})
	}
}
