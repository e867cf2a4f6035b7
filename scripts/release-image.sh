#!/usr/bin/env bash
# release-image.sh builds and pushes the release's multi-arch image from the
# binaries GoReleaser put in dist/, so the image holds exactly the archived
# binary. Each architecture's image is deployments/docker/Dockerfile.prebuilt
# (the same file `make test-containers` builds and runs) on the context
# deployments/docker/prebuilt-context.sh assembles around that
# architecture's binary; it is pushed by digest, then one index with the
# semver tags points at all of them. The binary in each pushed image is
# compared with dist's before the script reports success.
#
#   release-image.sh IMAGE TAG
#
#   IMAGE  e.g. ghcr.io/secrets-sidecar/secrets-sidecar (lowercased here)
#   TAG    the release tag, v1.2.3: tags 1.2.3, 1.2 and 1; a pre-release
#          (v1.2.3-rc.1) gets only its own tag
#
# Needs docker with a buildx builder that can push by digest (the
# docker-container driver), a login to the registry, jq, and dist/ from
# `goreleaser release`. Prints (and appends to $GITHUB_OUTPUT when set):
#   image=ghcr.io/...        IMAGE, lowercased
#   digest=sha256:...        the index
#   digest_amd64=sha256:...  each architecture's image
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

if [[ $# -ne 2 ]]; then
	echo "usage: $0 IMAGE TAG" >&2
	exit 2
fi
image=${1,,}
tag=$2
commit=$(git rev-parse --short HEAD)
arches=(amd64 arm64)

note() { echo "release-image: $*" >&2; }
fail() {
	echo "release-image: FAIL: $*" >&2
	exit 1
}

[[ $tag =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?$ ]] || fail "tag $tag is not v<major>.<minor>.<patch>[-prerelease]"
version=${tag#v}
tags=("$version")
if [[ -z ${BASH_REMATCH[4]} ]]; then
	tags+=("${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}")
fi
[[ -f dist/artifacts.json ]] || fail "dist/artifacts.json missing: run goreleaser release first"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=()

declare -A digests binaries
for arch in "${arches[@]}"; do
	bin=$(jq -r --arg a "$arch" '[.[] | select(.type == "Binary" and .goos == "linux" and .goarch == $a)] | if length == 1 then .[0].path else empty end' dist/artifacts.json)
	[[ -n $bin && -x $bin ]] || fail "dist/artifacts.json: want one linux/$arch binary"
	binaries[$arch]=$bin
	sh deployments/docker/prebuilt-context.sh "$bin" "$work/$arch"
	# No BuildKit attestations: provenance and SBOMs are attested with
	# cosign and GitHub's attestations, by digest, by the workflow.
	docker buildx build \
		--platform "linux/$arch" \
		--file deployments/docker/Dockerfile.prebuilt \
		--build-arg VERSION="$tag" \
		--build-arg COMMIT="$commit" \
		--provenance=false --sbom=false \
		--output "type=image,name=$image,push-by-digest=true,name-canonical=true,push=true" \
		--metadata-file "$work/$arch.json" \
		"$work/$arch"
	digests[$arch]=$(jq -r '."containerimage.digest"' "$work/$arch.json")
	[[ ${digests[$arch]} =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no digest for linux/$arch"
	note "linux/$arch: $image@${digests[$arch]} from $bin"
	out+=("digest_$arch=${digests[$arch]}")
done

args=()
for t in "${tags[@]}"; do args+=(--tag "$image:$t"); done
for arch in "${arches[@]}"; do args+=("$image@${digests[$arch]}"); done
docker buildx imagetools create "${args[@]}"
index=$(docker buildx imagetools inspect "$image:$version" --format '{{json .Manifest}}' | jq -r .digest)
[[ $index =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no index digest for $image:$version"
note "index $image@$index, tags ${tags[*]}"

# What was pushed holds dist's binaries, byte for byte.
for arch in "${arches[@]}"; do
	docker pull --quiet --platform "linux/$arch" "$image@$index" >/dev/null
	c=$(docker create --platform "linux/$arch" "$image@$index")
	docker cp "$c:/secrets-sidecar" - | tar -xOf - secrets-sidecar >"$work/pushed-$arch"
	docker rm "$c" >/dev/null
	cmp "$work/pushed-$arch" "${binaries[$arch]}" || fail "linux/$arch: the pushed binary differs from ${binaries[$arch]}"
	note "linux/$arch: the pushed binary is ${binaries[$arch]}"
done

out=("image=$image" "digest=$index" "${out[@]}")
printf '%s\n' "${out[@]}"
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
	printf '%s\n' "${out[@]}" >>"$GITHUB_OUTPUT"
fi
