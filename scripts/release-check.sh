#!/usr/bin/env bash
# release-check.sh runs the tag workflow's image path for real on this
# machine, after `make release-snapshot` has built dist/: the same
# scripts/release-image.sh the workflow runs, against a local registry and
# signing with a key made for the run instead of the workflow's keyless
# identity, then checks the result as a user would:
#
#   - a registry from Debian's docker-registry package (installed without
#     starting its service, which would listen on every interface), run by
#     this script on 127.0.0.1 and a port the kernel picks, its storage in
#     a temporary directory, stopped at the end;
#   - a cosign key pair in that directory (COSIGN_PASSWORD random);
#   - release-image.sh: the OCI index of linux/amd64 and linux/arm64 pushed
#     with the snapshot's tag, read back and compared with dist's binaries,
#     signed, the SBOM attestations attached, cosign verify and
#     verify-attestation with the public key;
#   - the registry's own answer (curl, OCI index Accept header): an OCI
#     index of exactly the two platforms with the pushed digest; linux/arm64
#     checked from its blobs: the config's platform, user and entrypoint,
#     and /secrets-sidecar in its layer an AArch64 ELF (e_machine 183);
#   - the amd64 image pulled by digest into a real Docker engine (started
#     as `make test-containers` starts it, scripts/engine.sh): the digest
#     Docker records is the one pushed, its image ID the pushed config, the
#     binary in it dist's, its configuration and files those of
#     Dockerfile.prebuilt built by Docker from the same context; run as the README runs it (read-only root, no
#     capabilities): `version` prints the snapshot's version and commit,
#     `validate` accepts a config, `once` writes a secret from the Vault dev
#     server (scripts/devvault.sh, on 127.0.0.1; the container on the
#     host's network) and `run` turns healthy by the image's HEALTHCHECK;
#     no secret value in any output or log.
#
#   COSIGN, CYCLONEDX_GOMOD  the tools (`make release-check` installs them)
#   GO                       the go command (default go)
#   RELEASE_CHECK_STATE      dockerd's log and pid file (default /tmp/secrets-sidecar-release-check)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cosign=${COSIGN:?set COSIGN to the cosign binary (make release-check)}
: "${CYCLONEDX_GOMOD:?set CYCLONEDX_GOMOD (make release-check)}"
state=${RELEASE_CHECK_STATE:-/tmp/secrets-sidecar-release-check}
name=secrets-sidecar
prefix=secrets-sidecar-release-check

note() { echo "release-check: $*" >&2; }
fail() {
	echo "release-check: FAIL: $*" >&2
	exit 1
}
start_time=$(date +%s)

[[ -f dist/metadata.json ]] || fail "dist/metadata.json missing: run make release-snapshot first"
version=$(jq -r .version dist/metadata.json)
tag=v$version
commit=$(git rev-parse --short HEAD)
amd64_bin=$(jq -r '.[] | select(.type == "Binary" and .goarch == "amd64") | .path' dist/artifacts.json)
[[ -x $amd64_bin ]] || fail "no linux/amd64 binary in dist/artifacts.json"

# --- packages -----------------------------------------------------------------

# shellcheck source=scripts/engine.sh
source "$repo/scripts/engine.sh"
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
if ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
	missing+=(docker.io)
fi
command -v ss >/dev/null || missing+=(iproute2) # the registry's port
[[ ${#missing[@]} -eq 0 ]] || engine_install "${missing[@]}"
for c in docker-registry docker curl jq ss; do
	command -v "$c" >/dev/null || fail "no $c"
done

# --- teardown -----------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/release-check.XXXXXX")
chmod 0755 "$tmp"
registry_pid=""
vault_pid=""
pulled=""
built_image=""
finish() {
	local code=$?
	trap - EXIT
	if docker info >/dev/null 2>&1; then
		local ids
		mapfile -t ids < <(docker ps --all --quiet --filter "name=^$prefix-")
		[[ ${#ids[@]} -eq 0 ]] || docker rm --force "${ids[@]}" >/dev/null || code=1
		[[ -z $pulled ]] || docker rmi "$pulled" >/dev/null || code=1
		[[ -z $built_image ]] || docker rmi "$built_image" >/dev/null || code=1
	fi
	for p in $vault_pid $registry_pid; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	engine_stop
	rm -rf "$tmp"
	note "took $(($(date +%s) - start_time))s"
	exit "$code"
}
trap finish EXIT

# --- the registry ---------------------------------------------------------------

mkdir "$tmp/storage"
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/storage
http:
  addr: 127.0.0.1:0
EOF
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
port=""
for _ in $(seq 1 100); do
	port=$(ss -Htlnp 2>/dev/null | awk -v pid="pid=$registry_pid," 'index($0, pid) { n = split($4, a, ":"); print a[n]; exit }')
	[[ -n $port ]] && curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" && break
	kill -0 "$registry_pid" 2>/dev/null || break
	port=""
	sleep 0.1
done
[[ -n $port ]] || {
	cat "$tmp/registry.log" >&2
	fail "docker-registry did not answer on 127.0.0.1"
}
registry=127.0.0.1:$port
image=$registry/$name
note "registry $(docker-registry --version 2>&1 | head -1) on $registry (pid $registry_pid), storage $tmp/storage"

# --- push, sign, attest, verify (the workflow's script) ---------------------------

COSIGN_PASSWORD=$(head -c 18 /dev/urandom | base64)
export COSIGN_PASSWORD
"$cosign" generate-key-pair --output-key-prefix "$tmp/cosign" >"$tmp/keygen.log" 2>&1 || {
	cat "$tmp/keygen.log" >&2
	fail "cosign generate-key-pair"
}
t0=$(date +%s)
SIGN_KEY=$tmp/cosign.key SIGN_PUBLIC_KEY=$tmp/cosign.pub SBOM_DIR=$tmp/sbom \
	scripts/release-image.sh "$image" "$tag" >"$tmp/outputs"
declare -A o
while IFS='=' read -r k v; do o[$k]=$v; done <"$tmp/outputs"
index=${o[digest]}
note "release-image.sh: $image@$index in $(($(date +%s) - t0))s"

# --- the registry's answer ------------------------------------------------------

api=http://$registry/v2/$name
docker_tag=${version//+/-}
curl -fsS -D "$tmp/headers" -H 'Accept: application/vnd.oci.image.index.v1+json' "$api/manifests/$docker_tag" >"$tmp/index.json"
echo "release-check: GET /v2/$name/manifests/$docker_tag (Accept: application/vnd.oci.image.index.v1+json):" >&2
jq . "$tmp/index.json" >&2
served=$(tr -d '\r' <"$tmp/headers" | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
[[ $served == "$index" ]] || fail "the registry serves $docker_tag as $served, pushed $index"
jq -e '.mediaType == "application/vnd.oci.image.index.v1+json" and
	([.manifests[] | .platform.os + "/" + .platform.architecture] | sort) == ["linux/amd64", "linux/arm64"] and
	all(.manifests[]; .mediaType == "application/vnd.oci.image.manifest.v1+json")' "$tmp/index.json" >/dev/null ||
	fail "$docker_tag is not an OCI index of linux/amd64 and linux/arm64"
curl -fsS "$api/tags/list" | jq -c . >&2

# manifest DIGEST ARCH: checks the platform's manifest and config, prints the
# config's digest and the layers' digests.
manifest() {
	local m=$tmp/manifest-$2.json
	curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$api/manifests/$1" >"$m"
	curl -fsS "$api/blobs/$(jq -r .config.digest "$m")" >"$tmp/config-$2.json"
	jq -e --arg a "$2" '.os == "linux" and .architecture == $a and .config.User == "65534:65534" and
		.config.Entrypoint == ["/secrets-sidecar"] and .config.Cmd == ["run"] and
		.config.Healthcheck.Test == ["CMD", "/secrets-sidecar", "isready"]' "$tmp/config-$2.json" >/dev/null ||
		fail "linux/$2: config $(jq -c '{os, architecture, config}' "$tmp/config-$2.json")"
	jq -r '.config.digest, .layers[].digest' "$m"
}
for arch in amd64 arm64; do
	d=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$tmp/index.json")
	[[ $d == "${o[digest_$arch]}" ]] || fail "linux/$arch: the index names $d, release-image.sh pushed ${o[digest_$arch]}"
	mapfile -t blobs < <(manifest "$d" "$arch")
	declare "config_$arch=${blobs[0]}" "layer_$arch=${blobs[1]}" # the layer of / (COPY image/root/ /)
	note "linux/$arch: $d, config $(jq -c '{os, architecture, user: .config.User, entrypoint: .config.Entrypoint}' "$tmp/config-$arch.json")"
done
# arm64 cannot run here: its binary, from the layer as served, is an
# AArch64 ELF (e_machine at offset 18, little-endian: 183 = 0xb7).
mkdir "$tmp/arm64"
# shellcheck disable=SC2154 # layer_arm64 is declared in the loop above
curl -fsS "$api/blobs/$layer_arm64" | tar -xzf - -C "$tmp/arm64" secrets-sidecar
machine=$(od -An -tu2 -j18 -N2 "$tmp/arm64/secrets-sidecar" | tr -d ' ')
[[ $(head -c4 "$tmp/arm64/secrets-sidecar" | od -An -c | tr -d ' ') == '177ELF' && $machine == 183 ]] ||
	fail "linux/arm64: /secrets-sidecar is not an AArch64 ELF (e_machine $machine)"
arm64_bin=$(jq -r '.[] | select(.type == "Binary" and .goarch == "arm64") | .path' dist/artifacts.json)
cmp "$tmp/arm64/secrets-sidecar" "$arm64_bin" || fail "linux/arm64: the served binary differs from $arm64_bin"
note "linux/arm64: /secrets-sidecar in the served layer is an ELF for EM_AARCH64 (183), $arm64_bin byte for byte"

# --- pulled by digest into Docker, and run ------------------------------------------

engine_start "$state"
insecure=$(docker info --format '{{json .RegistryConfig.InsecureRegistryCIDRs}}')
note "engine $(docker version --format '{{.Server.Version}}'), plain-HTTP registries: $insecure"
[[ $insecure == *'"127.0.0.0/8"'* ]] || fail "the engine does not take 127.0.0.0/8 as plain HTTP (dockerd --insecure-registry $registry)"
docker pull --quiet "$image@$index" >/dev/null
pulled=$image@$index
ref=$pulled
repo_digests=$(docker image inspect --format '{{json .RepoDigests}}' "$ref")
[[ $repo_digests == *"\"$image@$index\""* ]] || fail "docker records $repo_digests, pushed $image@$index"
id=$(docker image inspect --format '{{.Id}}' "$ref")
# shellcheck disable=SC2154 # config_amd64 is declared in the loop above
[[ $id == "$config_amd64" ]] || fail "the pulled image is $id, the pushed linux/amd64 config $config_amd64"
note "pulled $image@$index: RepoDigests $repo_digests, image ID $id (the pushed linux/amd64 config)"

c=$(docker create --name "$prefix-copy" "$ref")
docker cp "$c:/secrets-sidecar" - | tar -xOf - secrets-sidecar >"$tmp/pulled-amd64"
docker rm "$c" >/dev/null
cmp "$tmp/pulled-amd64" "$amd64_bin" || fail "the pulled binary differs from $amd64_bin"

# The same context through Dockerfile.prebuilt with Docker's own (legacy)
# builder, as `make test-containers` builds it: its run configuration and
# its files (names, modes, owners, sizes) are the pulled image's.
sh deployments/docker/prebuilt-context.sh "$amd64_bin" "$tmp/ctx"
if (($(docker version --format '{{.Server.Version}}' | cut -d. -f1) < 25)); then
	# Before 25 the builder rejects the start interval (and the engine
	# ignores it in an image); compared without it below.
	sed 's/ --start-interval=[^ ]*//' deployments/docker/Dockerfile.prebuilt >"$tmp/ctx/Dockerfile"
else
	cp deployments/docker/Dockerfile.prebuilt "$tmp/ctx/Dockerfile"
fi
built=$prefix/dockerfile:$docker_tag
DOCKER_BUILDKIT=0 docker build --quiet --tag "$built" --build-arg VERSION="$tag" --build-arg COMMIT="$commit" \
	--file "$tmp/ctx/Dockerfile" "$tmp/ctx" >/dev/null
built_image=$built
run_config() {
	docker image inspect --format '{{json .Config}}' "$1" |
		jq -S '{User, Env, Entrypoint, Cmd, ExposedPorts, Labels, Healthcheck: (.Healthcheck | del(.StartInterval))}'
}
files() {
	local c
	c=$(docker create --name "$prefix-files" "$1")
	docker export "$c" | tar --numeric-owner -tvf - | awk '{ print $1, $2, $3, $6 }' | sort
	docker rm "$c" >/dev/null
}
diff <(run_config "$built") <(run_config "$ref") >&2 || fail "the pulled image's configuration differs from Dockerfile.prebuilt's (docker build)"
files "$built" >"$tmp/files-dockerfile"
files "$ref" >"$tmp/files-pulled"
diff "$tmp/files-dockerfile" "$tmp/files-pulled" >&2 || fail "the pulled image's files differ from Dockerfile.prebuilt's (docker build)"
note "the pulled image has the configuration and the $(wc -l <"$tmp/files-pulled") files (modes, owners, sizes) of Dockerfile.prebuilt built by Docker"

hardening=(--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges:true)
out=$(docker run --rm --name "$prefix-version" --network none "${hardening[@]}" "$ref" version)
[[ $out == "secrets-sidecar $tag (commit $commit, go"* ]] || fail "version printed \"$out\", want \"secrets-sidecar $tag (commit $commit, go...\""
note "version: $out"

# The dev server, a secret, and a config that reads it with the root token.
vault_bin=$(scripts/devvault.sh)
"$vault_bin" -root-token root -log-level warn >"$tmp/vault.json" 2>"$tmp/vault.log" &
vault_pid=$!
for _ in $(seq 1 300); do
	[[ -s $tmp/vault.json ]] && break
	kill -0 "$vault_pid" 2>/dev/null || break
	sleep 0.1
done
vault_addr=$(jq -r .addr "$tmp/vault.json" 2>/dev/null) || true
[[ $vault_addr == http://127.0.0.1:* ]] || {
	cat "$tmp/vault.log" >&2
	fail "the Vault dev server did not start"
}
secret=release-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
curl -fsS -o /dev/null -H 'X-Vault-Token: root' -X POST -d "{\"data\": {\"api_key\": \"$secret\"}}" \
	"$vault_addr/v1/secret/data/release-check/api"
mkdir -m 0755 "$tmp/config"
cat >"$tmp/config/config.yaml" <<'EOF'
vault:
  auth:
    method: token
defaults:
  refresh_interval: 5s
secrets:
  - name: api-key
    path: release-check/api
    destination: /secrets/api-key
    key: api_key
EOF
chmod 0644 "$tmp/config/config.yaml"
mounts=(-v "$tmp/config:/etc/secrets-sidecar:ro")
vault_env=(-e "VAULT_ADDR=$vault_addr" -e VAULT_TOKEN=root -e SIDECAR_HTTP_ADDR=)

out=$(docker run --rm --name "$prefix-validate" --network none "${hardening[@]}" "${mounts[@]}" "$ref" validate)
[[ $out == "/etc/secrets-sidecar/config.yaml: ok ("* ]] || fail "validate printed \"$out\""
note "validate: $out"

# noleak WHAT TEXT: the secret's value is nowhere in TEXT.
noleak() { [[ $2 != *"$secret"* ]] || fail "$1 holds the secret's value"; }
mkdir -m 0755 "$tmp/once" "$tmp/run"
chown 65534:65534 "$tmp/once" "$tmp/run"
out=$(docker run --rm --name "$prefix-once" --network host "${hardening[@]}" "${mounts[@]}" "${vault_env[@]}" \
	-v "$tmp/once:/secrets" "$ref" once --timeout 60s 2>&1) || fail "once: $out"
[[ $(cat "$tmp/once/api-key") == "$secret" ]] || fail "once: /secrets/api-key is not the secret"
noleak "once's output" "$out"
note "once: exit 0, /secrets/api-key written ($(stat -c '%a %u:%g' "$tmp/once/api-key"))"

docker run --detach --name "$prefix-run" --network host "${hardening[@]}" "${mounts[@]}" "${vault_env[@]}" \
	-v "$tmp/run:/secrets" --health-interval 1s "$ref" >/dev/null
health=""
for _ in $(seq 1 120); do
	health=$(docker inspect --format '{{.State.Health.Status}} {{.State.Status}}' "$prefix-run")
	[[ $health == "healthy running" || $health == *" exited" ]] && break
	sleep 0.5
done
[[ $health == "healthy running" ]] || {
	docker logs "$prefix-run" >&2 || true
	fail "run: health \"$health\", want healthy"
}
[[ $(cat "$tmp/run/api-key") == "$secret" ]] || fail "run: /secrets/api-key is not the secret"
docker stop --time 20 "$prefix-run" >/dev/null
exit_code=$(docker inspect --format '{{.State.ExitCode}}' "$prefix-run")
[[ $exit_code == 0 ]] || fail "run: exit code $exit_code after docker stop, want 0"
noleak "run's logs" "$(docker logs "$prefix-run" 2>&1)"
noleak "the health check's output" "$(docker inspect --format '{{json .State.Health}}' "$prefix-run")"
note "run: healthy by the image's HEALTHCHECK (isready), exit 0 after docker stop; no secret value in any output"

note "ok: $image@$index ($tag), signed, attested, pulled by digest and run"
