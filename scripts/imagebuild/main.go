// Command imagebuild assembles secrets-sidecar's multi-platform release
// image from prebuilt binaries without Docker, BuildKit or a base image to
// pull, pushes it as an OCI index, and checks what a registry serves back.
// scripts/release-image.sh runs it for the tag workflow and for
// `make release-check` alike.
//
//	imagebuild push -version V -revision R -created UNIX \
//	    -platform linux/amd64=CONTEXT -platform linux/arm64=CONTEXT \
//	    -tag REGISTRY/NAME:TAG [-tag REGISTRY/NAME:TAG2 ...]
//
// builds one image per platform from CONTEXT, a build context of
// deployments/docker/Dockerfile.prebuilt (prebuilt-context.sh's OUT_DIR),
// with the layers, run configuration and labels that Dockerfile declares,
// OCI annotations (created, version, revision, licenses, source) and every
// timestamp at the commit's time (UNIX seconds), so that a commit always
// gives the same digests. It pushes the index under the first tag, adds
// the other tags, and prints digest=sha256:... (the index) and
// digest_ARCH=sha256:... (each platform's image).
//
//	imagebuild verify -image REGISTRY/NAME@sha256:... -version V -revision R \
//	    -binary linux/amd64=PATH -binary linux/arm64=PATH
//
// reads the index back by digest and fails unless it is an OCI index of
// exactly those platforms, each image's configuration is the release's
// (platform, user, entrypoint, command, health check, labels), and its
// /secrets-sidecar is PATH byte for byte, root's, mode 0511, an ELF for
// that architecture.
//
// Registry credentials come from Docker's config (docker login); a
// registry on a loopback address is spoken to over plain HTTP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

// multi is a repeatable flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: imagebuild push|verify [flags] (see the package comment)")
	}
	fs := flag.NewFlagSet("imagebuild "+args[0], flag.ContinueOnError)
	version := fs.String("version", "", "the binary's version, as `version` prints it (v1.2.3)")
	revision := fs.String("revision", "", "the commit the binary was built from (short)")
	created := fs.Int64("created", 0, "push: the commit's time, UNIX seconds")
	image := fs.String("image", "", "verify: the index, REGISTRY/NAME@sha256:...")
	var platforms, tags, binaries multi
	fs.Var(&platforms, "platform", "push: OS/ARCH=CONTEXT, once per platform")
	fs.Var(&tags, "tag", "push: REGISTRY/NAME:TAG, the first pushed, the others added")
	fs.Var(&binaries, "binary", "verify: OS/ARCH=PATH, once per platform")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *version == "" || *revision == "" {
		return errors.New("-version and -revision are required")
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	switch args[0] {
	case "push":
		if *created <= 0 || len(platforms) == 0 || len(tags) == 0 {
			return errors.New("push: -created, -platform and -tag are required")
		}
		return push(Stamp{Version: *version, Revision: *revision, Created: time.Unix(*created, 0).UTC()}, platforms, tags, opts)
	case "verify":
		if *image == "" || len(binaries) == 0 {
			return errors.New("verify: -image and -binary are required")
		}
		return verify(Stamp{Version: *version, Revision: *revision}, *image, binaries, opts)
	default:
		return fmt.Errorf("unknown command %q: want push or verify", args[0])
	}
}

// platformArg splits OS/ARCH=VALUE.
func platformArg(s string) (v1.Platform, string, error) {
	plat, val, ok := strings.Cut(s, "=")
	osName, arch, ok2 := strings.Cut(plat, "/")
	if !ok || !ok2 || osName == "" || arch == "" || val == "" {
		return v1.Platform{}, "", fmt.Errorf("%q: want OS/ARCH=VALUE", s)
	}
	return v1.Platform{OS: osName, Architecture: arch}, val, nil
}

func push(st Stamp, platformArgs, tags []string, opts []remote.Option) error {
	var imgs []Platformed
	seen := map[string]bool{}
	for _, a := range platformArgs {
		p, dir, err := platformArg(a)
		if err != nil {
			return fmt.Errorf("-platform %w", err)
		}
		if seen[p.String()] {
			return fmt.Errorf("-platform %s given twice", p)
		}
		seen[p.String()] = true
		img, err := Build(dir, p, st)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		imgs = append(imgs, Platformed{p, img})
	}
	idx := Index(imgs, st)

	var refs []name.Tag
	for _, t := range tags {
		ref, err := name.NewTag(t, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("-tag %q: %w", t, err)
		}
		if len(refs) > 0 && ref.Context() != refs[0].Context() {
			return fmt.Errorf("-tag %s: not in %s", t, refs[0].Context())
		}
		refs = append(refs, ref)
	}
	// WriteIndex pushes each platform's layers, configuration and manifest
	// (by digest), then the index under the first tag.
	if err := remote.WriteIndex(refs[0], idx, opts...); err != nil {
		return fmt.Errorf("push %s: %w", refs[0], err)
	}
	for _, ref := range refs[1:] {
		if err := remote.Tag(ref, idx, opts...); err != nil {
			return fmt.Errorf("tag %s: %w", ref, err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("digest=%s\n", d)
	for _, pi := range imgs {
		pd, err := pi.Image.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("digest_%s=%s\n", pi.Platform.Architecture, pd)
	}
	return nil
}

func verify(st Stamp, image string, binaryArgs []string, opts []remote.Option) error {
	ref, err := name.NewDigest(image, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-image %q: want REGISTRY/NAME@sha256:...: %w", image, err)
	}
	want := map[string][]byte{}
	for _, a := range binaryArgs {
		p, path, err := platformArg(a)
		if err != nil {
			return fmt.Errorf("-binary %w", err)
		}
		if want[p.String()], err = os.ReadFile(path); err != nil {
			return err
		}
	}
	// remote checks that what it is served hashes to the digest asked for.
	idx, err := remote.Index(ref, opts...)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	report, err := Verify(idx, want, st)
	for _, line := range report {
		fmt.Println(line)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	return nil
}
