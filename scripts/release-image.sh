#!/usr/bin/env bash
# release-image.sh builds, pushes, signs and attests the release's multi-arch
# image from the binaries GoReleaser put in dist/, so that the image holds
# exactly the archived binaries. The tag workflow (.github/workflows/
# release.yml) and `make release-check` (scripts/release-check.sh, against
# a local registry) both run it; they differ only in how it signs.
#
#   1. Each architecture's build context is deployments/docker/
#      prebuilt-context.sh's around dist's binary, the context of
#      Dockerfile.prebuilt (the image `make test-containers` runs).
#   2. scripts/imagebuild (Go, go-containerregistry; no Docker, BuildKit or
#      base image) assembles what Dockerfile.prebuilt declares for each
#      context, with OCI annotations (version, revision, licenses, created
#      at the commit's time, so that one commit gives one digest), and
#      pushes one OCI index of linux/amd64 and linux/arm64 with the tags.
#   3. imagebuild verify reads the index back from the registry by digest
#      and fails unless each platform's image has its configuration and
#      dist's binary byte for byte (root's, 0511, an ELF for that machine).
#   4. cosign signs the index and, with --recursive, each platform's image;
#      a CycloneDX SBOM of each architecture's binary (cyclonedx-gomod bin:
#      the modules and versions linked into it, with their licences) is
#      attached to that platform's image as a signed attestation.
#   5. cosign verify and verify-attestation check both, as users do.
#
#   release-image.sh IMAGE TAG
#
#   IMAGE  e.g. ghcr.io/secrets-sidecar/secrets-sidecar (lowercased here)
#   TAG    the release tag, v1.2.3: tags 1.2.3, 1.2 and 1; a pre-release
#          (v1.2.3-rc.1) gets only its own tag; build metadata (a
#          snapshot's +1a2b3c4) becomes -1a2b3c4, as tags have no '+'
#
# Environment:
#   COSIGN, CYCLONEDX_GOMOD  the tools (the make targets install them)
#   GO                       the go command (default go)
#   SIGN_KEY                 set: sign with this key file (COSIGN_PASSWORD
#                            unlocks it), without a transparency log, and
#                            verify with SIGN_PUBLIC_KEY; unset: keyless,
#                            with the workflow's OIDC identity, verified
#                            against SIGN_IDENTITY_REGEXP and
#                            SIGN_OIDC_ISSUER
#   SBOM_DIR                 where the SBOMs go (default dist)
#
# A registry on a loopback address (127.0.0.1:PORT, localhost:PORT) is
# spoken to over plain HTTP. Credentials for others come from Docker's
# config (docker login). Prints (and appends to $GITHUB_OUTPUT when set):
#   image=ghcr.io/...        IMAGE, lowercased
#   digest=sha256:...        the index
#   digest_amd64=sha256:...  each architecture's image
#   sbom_amd64=dist/...      each architecture's SBOM
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

if [[ $# -ne 2 ]]; then
	echo "usage: $0 IMAGE TAG" >&2
	exit 2
fi
image=${1,,}
tag=$2
go=${GO:-go}
cosign=${COSIGN:?set COSIGN to the cosign binary (make release-image)}
cdx=${CYCLONEDX_GOMOD:?set CYCLONEDX_GOMOD to the cyclonedx-gomod binary (make release-image)}
sbom_dir=${SBOM_DIR:-dist}
commit=$(git rev-parse --short HEAD)
created=$(git log -1 --format=%ct HEAD)
arches=(amd64 arm64)

note() { echo "release-image: $*" >&2; }
fail() {
	echo "release-image: FAIL: $*" >&2
	exit 1
}

[[ $tag =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]] ||
	fail "tag $tag is not v<major>.<minor>.<patch>[-prerelease][+build]"
version=${tag#v}
tags=("${version//+/-}")
if [[ -z ${BASH_REMATCH[4]}${BASH_REMATCH[5]} ]]; then
	tags+=("${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}")
fi
[[ -f dist/artifacts.json && -f dist/metadata.json ]] || fail "dist/ missing: run goreleaser release (or make release-snapshot) first"
# The labels, annotations and timestamps are HEAD's: dist/ must be too.
built=$(jq -r .commit dist/metadata.json)
[[ $built == "$(git rev-parse HEAD)" ]] ||
	fail "dist/ was built at commit $built, HEAD is $(git rev-parse HEAD): build it again (make release-snapshot)"

# Signing: a key (local) or keyless (the workflow's identity).
sign_args=(--yes)
verify_args=()
if [[ -n ${SIGN_KEY:-} ]]; then
	: "${SIGN_PUBLIC_KEY:?SIGN_KEY needs SIGN_PUBLIC_KEY to verify with}" "${COSIGN_PASSWORD?SIGN_KEY needs COSIGN_PASSWORD}"
	# No transparency log: it is public and this key is not.
	sign_args+=(--key "$SIGN_KEY" --tlog-upload=false)
	verify_args+=(--key "$SIGN_PUBLIC_KEY" --insecure-ignore-tlog=true)
	how="key $SIGN_PUBLIC_KEY"
else
	: "${SIGN_IDENTITY_REGEXP:?keyless signing: set SIGN_IDENTITY_REGEXP (or SIGN_KEY)}" "${SIGN_OIDC_ISSUER:?keyless signing: set SIGN_OIDC_ISSUER}"
	verify_args+=(--certificate-identity-regexp "$SIGN_IDENTITY_REGEXP" --certificate-oidc-issuer "$SIGN_OIDC_ISSUER")
	how="keyless, identity ~ $SIGN_IDENTITY_REGEXP"
fi
registry_args=()
case $image in
127.*/* | localhost:*/* | \[::1\]:*/*) registry_args+=(--allow-http-registry --allow-insecure-registry) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

(cd scripts/imagebuild && "$go" build -o "$work/imagebuild" .)

declare -A binaries
push_args=(-version "$tag" -revision "$commit" -created "$created")
verify_bins=()
for arch in "${arches[@]}"; do
	bin=$(jq -r --arg a "$arch" '[.[] | select(.type == "Binary" and .goos == "linux" and .goarch == $a)] | if length == 1 then .[0].path else empty end' dist/artifacts.json)
	[[ -n $bin && -x $bin ]] || fail "dist/artifacts.json: want one linux/$arch binary"
	binaries[$arch]=$bin
	sh deployments/docker/prebuilt-context.sh "$bin" "$work/$arch"
	push_args+=(-platform "linux/$arch=$work/$arch")
	verify_bins+=(-binary "linux/$arch=$bin")
done
for t in "${tags[@]}"; do push_args+=(-tag "$image:$t"); done

"$work/imagebuild" push "${push_args[@]}" >"$work/pushed"
declare -A digests
while IFS='=' read -r k v; do digests[$k]=$v; done <"$work/pushed"
index=${digests[digest]:-}
[[ $index =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no index digest from imagebuild push: $(cat "$work/pushed")"
note "pushed $image@$index, tags ${tags[*]}"

"$work/imagebuild" verify -image "$image@$index" -version "$tag" -revision "$commit" "${verify_bins[@]}" >&2 ||
	fail "what $image@$index serves is not the release"
note "the registry serves dist's binaries byte for byte"

out=("image=$image" "digest=$index")
"$cosign" sign "${sign_args[@]}" "${registry_args[@]}" --recursive "$image@$index"
mkdir -p "$sbom_dir"
for arch in "${arches[@]}"; do
	d=${digests[digest_$arch]:-}
	[[ $d =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no digest for linux/$arch"
	sbom=$sbom_dir/secrets-sidecar_${version}_image_linux_${arch}.cdx.json
	t0=$(date +%s%N)
	# -licenses downloads each module to read its licence (the release
	# build has them in the module cache already). cyclonedx-gomod takes
	# the platform for the package URLs from GOOS and GOARCH.
	if ! GOOS=linux GOARCH=$arch "$cdx" bin -json -licenses -assert-licenses -noserial -notimestamp -std \
		-version "$tag" -output "$work/sbom.json" "${binaries[$arch]}" 2>"$work/cdx.log"; then
		cat "$work/cdx.log" >&2
		fail "cyclonedx-gomod failed for linux/$arch"
	fi
	# Our own module's licence, which cyclonedx-gomod reads from a module
	# download that a release not yet published does not have.
	jq '.metadata.component.licenses //= [{"license": {"id": "Apache-2.0"}}]' "$work/sbom.json" >"$sbom"
	jq -e --arg a "$arch" '(.components | length) > 10 and (.metadata.component.purl | contains("goarch=" + $a))' "$sbom" >/dev/null ||
		fail "$sbom: not an SBOM of the linux/$arch binary"
	note "SBOM of linux/$arch: $(jq '.components | length' "$sbom") components in $((($(date +%s%N) - t0) / 1000000)) ms"
	"$cosign" attest "${sign_args[@]}" "${registry_args[@]}" --type cyclonedx --predicate "$sbom" "$image@$d"
	out+=("digest_$arch=$d" "sbom_$arch=$sbom")
done

# As users verify: the signature on the index (what a tag resolves to) and
# on each platform's image, and each image's SBOM attestation.
"$cosign" verify "${verify_args[@]}" "${registry_args[@]}" "$image:${tags[0]}@$index" >"$work/verify.json" ||
	fail "cosign verify $image@$index"
jq -e --arg d "$index" 'length > 0 and all(.[]; .critical.image["docker-manifest-digest"] == $d)' "$work/verify.json" >/dev/null ||
	fail "cosign verify: no signature for $index: $(cat "$work/verify.json")"
jq -c '.[]' "$work/verify.json" >&2
for arch in "${arches[@]}"; do
	d=${digests[digest_$arch]}
	"$cosign" verify "${verify_args[@]}" "${registry_args[@]}" "$image@$d" >/dev/null ||
		fail "cosign verify linux/$arch ($image@$d)"
	"$cosign" verify-attestation "${verify_args[@]}" "${registry_args[@]}" --type cyclonedx "$image@$d" >"$work/att.json" ||
		fail "cosign verify-attestation linux/$arch ($image@$d)"
	# The attested predicate is the SBOM written above, for that image.
	jq -r '.payload' "$work/att.json" | head -1 | base64 -d >"$work/statement.json"
	jq -e --arg d "${d#sha256:}" --slurpfile sbom "$sbom_dir/secrets-sidecar_${version}_image_linux_${arch}.cdx.json" \
		'.predicateType == "https://cyclonedx.org/bom" and (.subject[0].digest.sha256 == $d) and (.predicate == $sbom[0])' \
		"$work/statement.json" >/dev/null || fail "linux/$arch: the attested SBOM is not $sbom_dir's"
done
note "signed ($how) and verified: the index, both platforms' images and their SBOM attestations, in $(($(date +%s) - start))s"

printf '%s\n' "${out[@]}"
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
	printf '%s\n' "${out[@]}" >>"$GITHUB_OUTPUT"
fi
