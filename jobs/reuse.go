package jobs

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
)

// maxReused bounds each file read back for Reuse: certificates and keys
// are a few KiB.
const maxReused = 1 << 20

// reuse is a leased secret's fetch when its source can keep what its
// files already hold (a Reuser, which decides when to try: a first
// issuance): the files are read back (no-follow; a set only through its
// own data link) and the source's data is accepted only if rendering it
// gives exactly those files. nil: fetch as usual. Only a request that
// writes (POST, PUT: an issuance) is offered.
func (s *Syncer) reuse(ctx context.Context, j *Job, mode source.Mode) *source.Data {
	sec := &j.Secret
	r, ok := j.source.(Reuser)
	if !ok || sec.Lease == nil || sec.Lease.Method == http.MethodGet {
		return nil
	}
	var onDisk []source.File
	read := func() ([]source.File, bool) {
		var ok bool
		onDisk, ok = s.readBack(j)
		return onDisk, ok
	}
	accept := func(d *source.Data) bool {
		for i, f := range onDisk {
			rd := j.renderer
			if len(j.outputs) > 0 {
				rd = j.outputs[i].renderer
			}
			out, err := rd.RenderLease(d.Values, (*render.Lease)(d.Lease))
			if err != nil || !bytes.Equal(out, f.Content) {
				return false
			}
		}
		return len(onDisk) > 0
	}
	return r.Reuse(ctx, sec, mode, read, accept)
}

// readBack reads j's files as they are, in the order of its outputs;
// false when any is missing or cannot be read safely (the reason is
// logged at debug: a first start has none).
func (s *Syncer) readBack(j *Job) ([]source.File, bool) {
	sec := &j.Secret
	fail := func(err error) ([]source.File, bool) {
		s.log.Debug("no files to reuse", zap.String("secret_name", sec.Name), zap.String("destination", destinationText(sec)), zap.Error(err))
		return nil, false
	}
	if len(j.outputs) == 0 {
		content, _, err := files.ReadNoLinks(sec.Destination, maxReused)
		if err != nil {
			return fail(err)
		}
		return []source.File{{Key: sec.Key, Content: content}}, true
	}
	d, err := files.OpenDir(sec.SetDir(), 0)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	set, err := d.ReadSet(sec.Name, maxReused)
	if err != nil {
		return fail(err)
	}
	out := make([]source.File, len(j.outputs))
	for i, o := range j.outputs {
		content, ok := set[filepath.Base(o.file.Destination)]
		if !ok {
			return fail(files.ErrNotSet)
		}
		out[i] = source.File{Key: o.file.Key, Content: content}
	}
	return out, true
}
