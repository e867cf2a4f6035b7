package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// machines are the ELF machines of the release's architectures.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// Verify checks an index as a registry serves it: an OCI index of exactly
// want's platforms (OS/ARCH), each image's configuration the release's, and its
// /secrets-sidecar want's binary for that platform byte for byte, root's,
// mode 0511, an ELF for its architecture. It returns a line per check
// passed, and every failure joined.
func Verify(idx v1.ImageIndex, want map[string][]byte, st Stamp) ([]string, error) {
	var report []string
	var errs []error
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != types.OCIImageIndex {
		errs = append(errs, fmt.Errorf("media type %s, want %s", mt, types.OCIImageIndex))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if got := im.Annotations["org.opencontainers.image.licenses"]; got != licenses {
		errs = append(errs, fmt.Errorf("index: licenses annotation %q, want %q", got, licenses))
	}
	seen := map[string]bool{}
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			errs = append(errs, fmt.Errorf("manifest %s has no platform", desc.Digest))
			continue
		}
		p := *desc.Platform
		bin, ok := want[p.String()]
		if !ok || seen[p.String()] {
			errs = append(errs, fmt.Errorf("manifest %s: platform %s unexpected or repeated", desc.Digest, p))
			continue
		}
		seen[p.String()] = true
		img, err := idx.Image(desc.Digest)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		lines, err := verifyImage(img, p, bin, st)
		report = append(report, lines...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", p, desc.Digest, err))
		}
	}
	for p := range want {
		if !seen[p] {
			errs = append(errs, fmt.Errorf("no manifest for %s", p))
		}
	}
	return report, errors.Join(errs...)
}

func verifyImage(img v1.Image, p v1.Platform, bin []byte, st Stamp) ([]string, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.OS != p.OS || cfg.Architecture != p.Architecture {
		return nil, fmt.Errorf("config: platform %s/%s, the index says %s", cfg.OS, cfg.Architecture, p)
	}
	if want := runConfig(st); !reflect.DeepEqual(cfg.Config, want) {
		g, _ := json.Marshal(cfg.Config)
		w, _ := json.Marshal(want)
		return nil, fmt.Errorf("config: run configuration\n  %s\nwant\n  %s", g, w)
	}
	c := cfg.Config
	report := []string{fmt.Sprintf("%s: config %s/%s, user %s, entrypoint %q, cmd %q, healthcheck %q, version %s, revision %s",
		p, cfg.OS, cfg.Architecture, c.User, c.Entrypoint, c.Cmd, c.Healthcheck.Test,
		c.Labels["org.opencontainers.image.version"], c.Labels["org.opencontainers.image.revision"])}

	h, got, err := fileInLayers(img, "secrets-sidecar")
	if err != nil {
		return report, err
	}
	if h.Mode&0o7777 != 0o511 || h.Uid != 0 || h.Gid != 0 {
		return report, fmt.Errorf("/secrets-sidecar: mode %04o owner %d:%d, want 0511 0:0", h.Mode&0o7777, h.Uid, h.Gid)
	}
	if !bytes.Equal(got, bin) {
		return report, fmt.Errorf("/secrets-sidecar (%d bytes) differs from the binary given (%d bytes)", len(got), len(bin))
	}
	f, err := elf.NewFile(bytes.NewReader(got))
	if err != nil {
		return report, fmt.Errorf("/secrets-sidecar: %w", err)
	}
	if m, ok := machines[p.Architecture]; !ok || f.Machine != m || f.Class != elf.ELFCLASS64 {
		return report, fmt.Errorf("/secrets-sidecar: ELF %s %s, want %s", f.Class, f.Machine, machines[p.Architecture])
	}
	return append(report, fmt.Sprintf("%s: /secrets-sidecar 0511 0:0, %d bytes, the given binary byte for byte, ELF %s %s",
		p, len(got), f.Class, f.Machine)), nil
}

// fileInLayers returns the last layer's entry for path and its content.
func fileInLayers(img v1.Image, path string) (*tar.Header, []byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, err
	}
	var hdr *tar.Header
	var content []byte
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, nil, err
			}
			if strings.Trim(strings.TrimPrefix(h.Name, "./"), "/") != path {
				continue
			}
			if h.Typeflag != tar.TypeReg {
				rc.Close()
				return nil, nil, fmt.Errorf("/%s is not a regular file (type %c)", path, h.Typeflag)
			}
			if content, err = io.ReadAll(tr); err != nil {
				rc.Close()
				return nil, nil, err
			}
			hdr = h
		}
		rc.Close()
	}
	if hdr == nil {
		return nil, nil, fmt.Errorf("no /%s in the layers", path)
	}
	return hdr, content, nil
}
