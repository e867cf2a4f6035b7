package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The image's user: nobody, as Dockerfile.prebuilt's USER.
const nobody = 65534

// Stamp is what identifies a build: the version and commit the binary
// carries (the Dockerfile's VERSION and COMMIT build arguments) and the
// commit's time, used for every timestamp so that the same commit gives the
// same image digest.
type Stamp struct {
	Version  string
	Revision string
	Created  time.Time
}

// runConfig is the image's run configuration, set explicitly here and
// checked against what deployments/docker/Dockerfile.prebuilt declares
// (main_test.go): user, entrypoint, command, exposed port, labels and
// health check.
func runConfig(st Stamp) dockerspec.DockerOCIImageConfig {
	return dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{
			User:         fmt.Sprintf("%d:%d", nobody, nobody),
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
			// What a Dockerfile build gives an image FROM scratch on Linux.
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Entrypoint: []string{"/secrets-sidecar"},
			Cmd:        []string{"run"},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "secrets-sidecar",
				"org.opencontainers.image.description": description,
				"org.opencontainers.image.version":     st.Version,
				"org.opencontainers.image.revision":    st.Revision,
			},
		},
		DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{
			Healthcheck: &dockerspec.HealthcheckConfig{
				Test:          []string{"CMD", "/secrets-sidecar", "isready"},
				Interval:      10 * time.Second,
				Timeout:       3 * time.Second,
				StartPeriod:   30 * time.Second,
				StartInterval: time.Second,
				Retries:       3,
			},
		},
	}
}

const (
	description = "Keeps files on a shared volume in sync with secrets in HashiCorp Vault or OpenBao"
	source      = "https://github.com/secrets-sidecar/secrets-sidecar"
	licenses    = "Apache-2.0"
)

// annotations are the OCI annotations of each manifest and of the index.
func annotations(st Stamp) map[string]string {
	return map[string]string{
		ocispec.AnnotationCreated:     st.Created.UTC().Format(time.RFC3339),
		ocispec.AnnotationTitle:       "secrets-sidecar",
		ocispec.AnnotationDescription: description,
		ocispec.AnnotationVersion:     st.Version,
		ocispec.AnnotationRevision:    st.Revision,
		ocispec.AnnotationLicenses:    licenses,
		ocispec.AnnotationSource:      source,
	}
}

// layerFromDir makes a layer of the files under dir, placed under prefix
// in the image ("" for /), owned by uid:gid, with their modes as they are
// on disk and mtime as every time: what Dockerfile.prebuilt's
// `COPY [--chown=uid:gid] dir/ /prefix/` puts in its layer. Only
// directories and regular files are taken; anything else fails.
func layerFromDir(dir, prefix string, uid, gid int, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if prefix != "" {
		fi, err := os.Lstat(dir)
		if err != nil {
			return nil, err
		}
		if err := writeEntry(tw, prefix, fi, "", uid, gid, mtime); err != nil {
			return nil, err
		}
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return writeEntry(tw, filepath.ToSlash(filepath.Join(prefix, rel)), fi, path, uid, gid, mtime)
	})
	if err != nil {
		return nil, fmt.Errorf("layer from %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

func writeEntry(tw *tar.Writer, name string, fi fs.FileInfo, path string, uid, gid int, mtime time.Time) error {
	h := &tar.Header{
		Name:    name,
		Mode:    int64(fi.Mode().Perm()),
		Uid:     uid,
		Gid:     gid,
		ModTime: mtime,
		Format:  tar.FormatPAX,
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		h.Mode |= 0o1000
	}
	if fi.Mode()&fs.ModeSetuid != 0 || fi.Mode()&fs.ModeSetgid != 0 {
		return fmt.Errorf("%s: setuid or setgid: not for this image", path)
	}
	switch {
	case fi.IsDir():
		h.Typeflag = tar.TypeDir
		h.Name += "/"
		return tw.WriteHeader(h)
	case fi.Mode().IsRegular():
		h.Typeflag = tar.TypeReg
		h.Size = fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		if err != nil {
			return err
		}
		if n != fi.Size() {
			return fmt.Errorf("%s: changed while read (%d bytes, was %d)", path, n, fi.Size())
		}
		return nil
	default:
		return fmt.Errorf("%s: %s: only directories and regular files go into the image", path, fi.Mode().Type())
	}
}

// Build assembles one platform's image from a build context of
// Dockerfile.prebuilt (deployments/docker/prebuilt-context.sh's OUT_DIR:
// image/root/ and image/secrets/): an empty base, then the layers of the
// Dockerfile's two COPY instructions, the run configuration, OCI media
// types and annotations.
func Build(context string, p v1.Platform, st Stamp) (v1.Image, error) {
	root, err := layerFromDir(filepath.Join(context, "image", "root"), "", 0, 0, st.Created)
	if err != nil {
		return nil, err
	}
	secrets, err := layerFromDir(filepath.Join(context, "image", "secrets"), "secrets", nobody, nobody, st.Created)
	if err != nil {
		return nil, err
	}
	// Layers appended to an empty (scratch) base; the configuration is
	// then written in full, as ggcr's ConfigFile has no field for the
	// health check's start interval.
	base, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: root, MediaType: types.OCILayer},
		mutate.Addendum{Layer: secrets, MediaType: types.OCILayer})
	if err != nil {
		return nil, err
	}
	layers, err := base.Layers()
	if err != nil {
		return nil, err
	}
	created := st.Created.UTC()
	cfg := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &created,
			Platform: ocispec.Platform{Architecture: p.Architecture, OS: p.OS, Variant: p.Variant},
			RootFS:   ocispec.RootFS{Type: "layers"},
			History: []ocispec.History{
				{Created: &created, CreatedBy: "COPY image/root/ /", Comment: "scripts/imagebuild"},
				{Created: &created, CreatedBy: "COPY --chown=65534:65534 image/secrets/ /secrets/", Comment: "scripts/imagebuild"},
			},
		},
		Config: runConfig(st),
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Annotations:   annotations(st),
	}
	for _, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.Digest(diffID.String()))
		d, err := partial.Descriptor(l)
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: d.Size, Digest: d.Digest})
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgHash, cfgSize, err := v1.SHA256(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, err
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgSize, Digest: cfgHash}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&image{config: rawCfg, manifest: rawManifest, layers: layers})
}

// image is a v1.Image from its serialized configuration and manifest and
// its layers (partial.CompressedToImage fills in the rest).
type image struct {
	config, manifest []byte
	layers           []v1.Layer
}

func (i *image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	if cfg, _, err := v1.SHA256(bytes.NewReader(i.config)); err == nil && cfg == h {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("image has no blob %s", h)
}

// Platformed is one platform's image.
type Platformed struct {
	Platform v1.Platform
	Image    v1.Image
}

// Index is the multi-platform OCI index of the images, in their order,
// annotated like them.
func Index(imgs []Platformed, st Stamp) v1.ImageIndex {
	var adds []mutate.IndexAddendum
	for _, pi := range imgs {
		p := pi.Platform
		adds = append(adds, mutate.IndexAddendum{Add: pi.Image, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &p}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	return mutate.Annotations(idx, annotations(st)).(v1.ImageIndex)
}
