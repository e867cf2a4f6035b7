package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// errNotKV2 is a KV v2 read whose answer does not have KV v2's shape (the
// mount is KV v1 and happens to hold something at data/<path>).
var errNotKV2 = errors.New("the answer is not KV v2's (data and metadata)")

func (cn *conn) read(ctx context.Context, req ReadRequest) (*Secret, error) {
	mount, path := strings.Trim(req.Mount, "/"), strings.Trim(req.Path, "/")
	ctx, span := cn.tracer.Start(ctx, "vault.read", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("vault.mount", mount), attribute.String("vault.path", path),
			attribute.String("vault.kv_version", req.KVVersion), attribute.Int("vault.version", req.Version)))
	defer span.End()
	sec, err := cn.readWithToken(ctx, mount, path, req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	span.SetAttributes(attribute.Int("vault.kv_version_read", sec.KVVersion))
	return sec, nil
}

func (cn *conn) readWithToken(ctx context.Context, mount, path string, req ReadRequest) (*Secret, error) {
	if mount == "" || path == "" {
		return nil, misconfigured("vault read: mount %q and path %q must both be set", req.Mount, req.Path)
	}
	if req.Version < 0 {
		return nil, misconfigured("vault read %s/%s: version %d is negative", mount, path, req.Version)
	}
	gen, err := cn.ensureToken(ctx)
	if err != nil {
		return nil, err
	}
	sec, err := cn.readKV(ctx, mount, path, req)
	if !isForbidden(err) {
		return sec, err
	}
	retry, tokenOK, tokenErr := cn.afterForbidden(ctx, gen)
	switch {
	case retry:
		return cn.readKV(ctx, mount, path, req)
	case tokenErr != nil:
		// Whatever the denied reads suggested about the mount came from a
		// token Vault does not accept.
		cn.forget(mount)
		if v := req.KVVersion; v == config.KVAuto || v == "" {
			return nil, fmt.Errorf("%w; the KV version of mount %s is unknown (not checked)", tokenErr, mount)
		}
		return nil, tokenErr
	case tokenOK:
		return nil, fmt.Errorf("%w; the token is valid, its policies do not allow this read", err)
	}
	return nil, err
}

func (cn *conn) readKV(ctx context.Context, mount, path string, req ReadRequest) (*Secret, error) {
	switch req.KVVersion {
	case config.KV1:
		if req.Version > 0 {
			return nil, misconfigured("vault read %s/%s: a version pin needs KV v2, but kv_version is 1", mount, path)
		}
		return cn.readV1(ctx, mount, path)
	case config.KV2:
		sec, err := cn.readV2(ctx, mount, path, req.Version)
		if errors.Is(err, errNotKV2) {
			err = configError{err} // kv_version: 2 on a KV v1 mount
		}
		return sec, err
	case config.KVAuto, "":
	default:
		return nil, misconfigured("vault read %s/%s: %w", mount, path, config.CheckKVVersion(req.KVVersion))
	}
	v, err := cn.mountVersion(ctx, mount, path)
	if err != nil {
		return nil, err
	}
	switch v {
	case 1:
		if req.Version > 0 {
			return nil, misconfigured("vault read %s/%s: a version pin needs KV v2, but mount %s is KV v1", mount, path, mount)
		}
		return cn.readV1(ctx, mount, path)
	case 2:
		return cn.readV2(ctx, mount, path, req.Version)
	}
	return cn.readEither(ctx, mount, path, req.Version)
}

// mountVersion is the KV version of mount, detected once per mount the way
// the Vault CLI does. It is 0 when the preflight was denied (0 is cached
// too, and readEither finds the version instead).
func (cn *conn) mountVersion(ctx context.Context, mount, path string) (int, error) {
	cn.kvMu.Lock()
	v, ok := cn.kvVersions[mount]
	cn.kvMu.Unlock()
	if ok {
		return v, nil
	}
	// Secrets syncing in parallel (once's workers, the daemon's first
	// runs) share one preflight per mount instead of each sending one.
	res, err, _ := cn.kvDetect.Do(mount, func() (any, error) { return cn.detectVersion(ctx, mount, path) })
	if err != nil {
		return 0, err
	}
	v, _ = res.(int)
	return v, nil
}

// detectVersion asks Vault for mount's KV version and caches the answer.
func (cn *conn) detectVersion(ctx context.Context, mount, path string) (int, error) {
	var v int
	var sec *api.Secret
	err := cn.call(ctx, "KV version check of "+mount, func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+mount+"/"+path)
		return err
	})
	switch s := statusOf(err); {
	case err == nil && sec != nil && sec.Data != nil:
		typ, _ := sec.Data["type"].(string)
		if typ != "" && typ != "kv" && typ != "generic" {
			return 0, misconfigured("vault read %s/%s: mount %s is a %q secrets engine, not KV", mount, path, mount, typ)
		}
		v = 1
		if opts, _ := sec.Data["options"].(map[string]any); opts != nil && opts["version"] == "2" {
			v = 2
		}
		cn.log.Debug("vault KV version detected", zap.String("mount", mount), zap.Int("kv_version", v))
	case err == nil:
		return 0, nil // no answer: try both, ask again next time
	case s == http.StatusForbidden || s == http.StatusUnauthorized:
		cn.log.Debug("vault KV version check denied; trying KV v2, then v1", zap.String("mount", mount))
		v = 0
	case s >= 400 && s < 500 && s != http.StatusTooManyRequests:
		return 0, nil
	default:
		return 0, err
	}
	cn.remember(mount, v)
	return v, nil
}

func (cn *conn) forget(mount string) {
	cn.kvMu.Lock()
	delete(cn.kvVersions, mount)
	cn.kvMu.Unlock()
}

func (cn *conn) remember(mount string, v int) {
	cn.kvMu.Lock()
	cn.kvVersions[mount] = v
	cn.kvMu.Unlock()
}

// readEither reads without knowing the mount's version: KV v2 first, then
// KV v1; the version that answers is remembered for the mount.
func (cn *conn) readEither(ctx context.Context, mount, path string, version int) (*Secret, error) {
	sec, err2 := cn.readV2(ctx, mount, path, version)
	if err2 == nil {
		cn.remember(mount, 2)
		return sec, nil
	}
	retry := errors.Is(err2, ErrNotFound) || errors.Is(err2, errNotKV2) || isForbidden(err2)
	if version > 0 || !retry {
		return nil, err2
	}
	sec, err1 := cn.readV1(ctx, mount, path)
	if err1 == nil {
		cn.remember(mount, 1)
		return sec, nil
	}
	if errors.Is(err2, ErrNotFound) && (errors.Is(err1, ErrNotFound) || isForbidden(err1)) {
		return nil, err2
	}
	var ce *callError
	if isForbidden(err2) && isForbidden(err1) && errors.As(err1, &ce) {
		// Denied both ways: neither says which version the mount is.
		return nil, &callError{op: "read " + mount + "/" + path + " (KV version unknown; tried as v2 and v1)", err: ce.err}
	}
	return nil, err1
}

func (cn *conn) readV2(ctx context.Context, mount, path string, version int) (*Secret, error) {
	var params map[string][]string
	if version > 0 {
		params = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	var sec *api.Secret
	err := cn.call(ctx, "read "+mount+"/"+path+" (KV v2)", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Logical().ReadWithDataWithContext(ctx, mount+"/data/"+path, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, notFound(mount, path, version, "")
	}
	meta, ok := sec.Data["metadata"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("vault read %s/%s (KV v2): %w; is the mount KV v1?", mount, path, errNotKV2)
	}
	data, ok := sec.Data["data"].(map[string]any)
	if !ok {
		why := "deleted"
		if destroyed, _ := meta["destroyed"].(bool); destroyed {
			why = "destroyed"
		}
		return nil, notFound(mount, path, version, why)
	}
	out := &Secret{Data: data, KVVersion: 2}
	if n, ok := meta["version"].(json.Number); ok {
		v, _ := n.Int64()
		out.Version = int(v)
	}
	if s, ok := meta["created_time"].(string); ok {
		out.CreatedTime, _ = time.Parse(time.RFC3339Nano, s)
	}
	return out, nil
}

func (cn *conn) readV1(ctx context.Context, mount, path string) (*Secret, error) {
	var sec *api.Secret
	err := cn.call(ctx, "read "+mount+"/"+path+" (KV v1)", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Logical().ReadWithContext(ctx, mount+"/"+path)
		return err
	})
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		// A KV v2 mount answers a v1 read with 404 and a warning.
		return nil, notFound(mount, path, 0, "")
	}
	return &Secret{Data: sec.Data, KVVersion: 1}, nil
}
