#!/usr/bin/env bash
# release-snapshot.sh runs the release build (.goreleaser.yaml) without a
# tag and without publishing, then checks what a release would ship:
#
#   - goreleaser check accepts the config;
#   - `goreleaser release --snapshot` builds dist/ (no image, no upload,
#     no signature, no SBOM: those need the tag workflow's identity and tools);
#   - each binary is a static ELF for its architecture, and the amd64 one
#     reports the snapshot's x.y.z-shaped version and this commit (an
#     unstamped "dev" build fails);
#   - one tar.gz per architecture holds exactly that binary, LICENSE,
#     THIRD_PARTY_NOTICES, README.md and CHANGELOG.md (the notices as
#     committed: `make check-notices` checks them against the graph);
#   - checksums.txt lists every archive and verifies (sha256sum -c).
#
#   GORELEASER  the goreleaser binary (`make release-snapshot` installs it)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
goreleaser=${GORELEASER:?set GORELEASER to the goreleaser binary (make release-snapshot)}

note() { echo "release-snapshot: $*"; }
fail() {
	echo "release-snapshot: FAIL: $*" >&2
	exit 1
}

# GoReleaser gives up on the commit (stamping "none") when the repository
# has no remote, as in a fresh `git init` or a worktree of such a
# repository; name the project's for this run only.
if [[ -z $(git remote) ]]; then
	export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
		GIT_CONFIG_VALUE_0=https://github.com/secrets-sidecar/secrets-sidecar.git
fi

start=$(date +%s)
"$goreleaser" check
"$goreleaser" release --snapshot --clean --skip=docker,publish,sign,sbom
note "goreleaser snapshot took $(($(date +%s) - start))s"

[[ -f dist/metadata.json ]] || fail "dist/metadata.json missing"
version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' dist/metadata.json)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+-snapshot\+[0-9a-f]+$ ]] ||
	fail "snapshot version \"$version\" is not x.y.z-snapshot+commit"
commit=$(git rev-parse --short HEAD)

# GoReleaser names build directories <id>_<os>_<arch>_<variant>
# (linux_amd64_v1, linux_arm64_v8.0): one directory per architecture.
binary() {
	local dirs=(dist/secrets-sidecar_linux_"$1"*/)
	[[ ${#dirs[@]} -eq 1 && -x ${dirs[0]}secrets-sidecar ]] ||
		fail "want one dist/secrets-sidecar_linux_$1*/secrets-sidecar, got: ${dirs[*]}"
	echo "${dirs[0]}secrets-sidecar"
}

for arch in amd64 arm64; do
	bin=$(binary "$arch")
	desc=$(file -b "$bin")
	case $arch in
	amd64) want=x86-64 ;;
	arm64) want=aarch64 ;;
	esac
	[[ $desc == *"ELF 64-bit"*"$want"*"statically linked"* ]] || fail "$bin: not a static $want ELF: $desc"
	note "$bin: $desc"
done

# The stamped version: v<version> (as `git describe` names a tag) and the
# short commit, exactly as `make build` stamps them.
got=$("$(binary amd64)" version)
[[ $got =~ ^secrets-sidecar\ v[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "version is not x.y.z-shaped: $got"
[[ $got == "secrets-sidecar v$version (commit $commit, "* ]] ||
	fail "version: got \"$got\", want \"secrets-sidecar v$version (commit $commit, ...)\""
note "version: $got"

# Archives: the binary as built, the licence and third-party notices,
# README.md and CHANGELOG.md, nothing else.
want_files=$(printf '%s\n' CHANGELOG.md LICENSE README.md THIRD_PARTY_NOTICES secrets-sidecar | sort)
for arch in amd64 arm64; do
	archive=dist/secrets-sidecar_${version}_linux_${arch}.tar.gz
	[[ -f $archive ]] || fail "$archive missing"
	files=$(tar -tzf "$archive" | sort)
	[[ $files == "$want_files" ]] || fail "$archive holds:
$files
want:
$want_files"
	tar -xzOf "$archive" secrets-sidecar | cmp - "$(binary "$arch")" || fail "$archive: the binary differs from dist's"
	for f in LICENSE THIRD_PARTY_NOTICES; do
		tar -xzOf "$archive" "$f" | cmp - "$f" || fail "$archive: $f differs from the repository's"
	done
	note "$archive: $(echo "$files" | tr '\n' ' ')"
done

# checksums.txt names every archive and verifies.
[[ -f dist/checksums.txt ]] || fail "dist/checksums.txt missing"
for arch in amd64 arm64; do
	grep -qE "^[0-9a-f]{64}  secrets-sidecar_${version//+/\\+}_linux_${arch}\.tar\.gz$" dist/checksums.txt ||
		fail "checksums.txt has no line for the $arch archive"
done
(cd dist && sha256sum -c checksums.txt) || fail "checksums.txt does not verify"

note "ok: $version in $(($(date +%s) - start))s"
