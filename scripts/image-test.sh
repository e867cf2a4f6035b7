#!/usr/bin/env bash
# image-test.sh proves the container image's contract without a Docker engine.
#
# It reads the Dockerfile, runs the build stage's RUN steps with the stage's
# output directory /image redirected into a temporary directory (so the
# binary is built with exactly the Dockerfile's flags and the image's files
# are assembled by the same deployments/docker/rootfs.sh), copies what the
# final stage's COPY lines name, with their --chown, into an empty directory, and then runs the image's ENTRYPOINT
# with `version` and `validate`, and its HEALTHCHECK command, inside that
# directory with chroot as the image's USER (65534:65534): no shell, no
# libc, no other file than the final stage holds.
#
# As root it uses chroot(8) --userspec; otherwise a user namespace
# (unshare --user --map-user=65534 --root). If neither is possible it fails:
# it never skips.
#
#   IMAGE_TEST_MODE     auto (default), chroot or userns
#   IMAGE_TEST_TARGET_MIB  size target: a larger binary is reported (default 16)
#   IMAGE_TEST_MAX_MIB     hard limit: a larger binary fails (default 17.5)
#   IMAGE_TEST_EXAMPLE  example directory copied to /etc/secrets-sidecar
#                       (default examples/template)
#   IMAGE_TEST_KEEP     set to keep the assembled directory
#   IMAGE_TEST_DOCKERFILE       the Dockerfile to read (default ./Dockerfile)
#   IMAGE_TEST_STATUS_WAITING   a status file saying not ready: isready -> 1
#   IMAGE_TEST_STATUS_READY     a fresh, ready status file: isready -> 0
#   IMAGE_TEST_VAULT_ADDR       a Vault (on 127.0.0.1) to sync from, with
#     IMAGE_TEST_VAULT_PATH     a KV v2 secret at secret/<path> with fields
#                               username and password (IMAGE_TEST_PASSWORD)
#     IMAGE_TEST_ROLE_ID, IMAGE_TEST_SECRET_ID  an AppRole that may read it
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockerfile=${IMAGE_TEST_DOCKERFILE:-$repo/Dockerfile}
mode=${IMAGE_TEST_MODE:-auto}
target_mib=${IMAGE_TEST_TARGET_MIB:-16}
max_mib=${IMAGE_TEST_MAX_MIB:-17.5}
example=${IMAGE_TEST_EXAMPLE:-examples/template}
version=image-test
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
image_user=65534:65534

fail() {
	echo "image-test: FAIL: $*" >&2
	exit 1
}
note() { echo "image-test: $*"; }

for tool in go file; do
	command -v "$tool" >/dev/null || fail "$tool is required (apt-get install $tool)"
done

if [[ $mode == auto ]]; then
	if [[ $(id -u) == 0 ]]; then mode=chroot; else mode=userns; fi
fi
case $mode in
chroot)
	[[ $(id -u) == 0 ]] || fail "IMAGE_TEST_MODE=chroot needs root"
	command -v chroot >/dev/null || fail "chroot is required (coreutils)"
	;;
userns)
	command -v unshare >/dev/null || fail "unshare is required (util-linux)"
	unshare --user --map-user=65534 --map-group=65534 true 2>/dev/null ||
		fail "cannot create a user namespace mapped to 65534 (unshare --user --map-user=65534; kernel.unprivileged_userns_clone or util-linux >= 2.38?) and not root: no way to run the image's user"
	;;
*) fail "IMAGE_TEST_MODE=$mode: want auto, chroot or userns" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/image-test.XXXXXX")
if [[ -z ${IMAGE_TEST_KEEP:-} ]]; then
	trap 'rm -rf "$work"' EXIT
else
	note "keeping $work"
fi
stage=$work/stage # the build stage's /image
root=$work/root   # the final image
mkdir -p "$stage" "$root"
chmod 0755 "$work" "$root"

# --- read the Dockerfile -------------------------------------------------

# Logical instructions: comments dropped, backslash continuations joined.
mapfile -t instructions < <(awk '
	/^[[:space:]]*#/ { next }
	{
		line = $0
		if (sub(/\\[[:space:]]*$/, "", line)) { acc = acc line " "; next }
		line = acc line; acc = ""
		if (line ~ /[^[:space:]]/) print line
	}' "$dockerfile")

# json_array '["a", "b"]' prints one element per line (plain strings only).
json_array() {
	local s=$1 elem
	[[ $s =~ ^[[:space:]]*\[(.*)\][[:space:]]*$ ]] || fail "not an exec-form JSON array: $s"
	IFS=',' read -ra elems <<<"${BASH_REMATCH[1]}"
	for elem in "${elems[@]}"; do
		[[ $elem =~ ^[[:space:]]*\"([^\"\\]*)\"[[:space:]]*$ ]] || fail "unsupported JSON array element: $elem"
		printf '%s\n' "${BASH_REMATCH[1]}"
	done
}

build_stage="" final_from="" stage_name="" user="" entrypoint="" healthcheck=""
build_runs=() final_copies=()
for ins in "${instructions[@]}"; do
	read -r word rest <<<"$ins"
	case ${word^^} in
	FROM)
		final_from=$rest stage_name=""
		[[ $rest =~ [[:space:]][Aa][Ss][[:space:]]+([^[:space:]]+)$ ]] && stage_name=${BASH_REMATCH[1]}
		[[ -z $build_stage ]] && build_stage=$stage_name
		final_copies=() user="" entrypoint="" healthcheck=""
		;;
	RUN) [[ $stage_name == "$build_stage" ]] && build_runs+=("$rest") ;;
	COPY) final_copies+=("$rest") ;;
	USER) user=$rest ;;
	ENTRYPOINT) entrypoint=$rest ;;
	HEALTHCHECK) healthcheck=$rest ;;
	ADD) [[ $stage_name == "$build_stage" ]] || fail "ADD in the final stage: use COPY --from=build" ;;
	ENV | WORKDIR | VOLUME) [[ $stage_name == "$build_stage" ]] || fail "$word in the final stage: image-test.sh does not model it yet" ;;
	esac
done

[[ -n $build_stage ]] || fail "no named build stage (FROM ... AS build)"
[[ $final_from =~ ^scratch([[:space:]]|$) ]] || fail "the final stage is FROM $final_from, want FROM scratch"
[[ $user == "$image_user" ]] || fail "the final stage's USER is '$user', want $image_user"
[[ ${#build_runs[@]} -gt 0 ]] || fail "the build stage has no RUN"
[[ ${#final_copies[@]} -gt 0 ]] || fail "the final stage copies nothing"
mapfile -t entry < <(json_array "$entrypoint")
[[ ${entry[0]:-} == /secrets-sidecar ]] || fail "ENTRYPOINT $entrypoint, want [\"/secrets-sidecar\"]"
[[ $healthcheck =~ [[:space:]]?CMD[[:space:]]+(\[.*\])$ ]] || fail "HEALTHCHECK has no exec-form CMD: $healthcheck"
mapfile -t health < <(json_array "${BASH_REMATCH[1]}")

build_line=""
for r in "${build_runs[@]}"; do [[ $r == *"go build"* ]] && build_line=$r; done
[[ -n $build_line ]] || fail "the build stage has no go build"
# shellcheck disable=SC2016 # ${VERSION} is the Dockerfile's text
for want in CGO_ENABLED=0 -trimpath '-s -w' 'modules/buildinfo.version=${VERSION}' 'modules/buildinfo.commit=${COMMIT}' '-o /image/root/secrets-sidecar'; do
	[[ $build_line == *"$want"* ]] || fail "the build stage's go build lacks '$want'"
done

# --- build stage: the Dockerfile's own RUN steps, /image redirected ------

# in_stage PATH: the build stage's /image/... path in the temporary stage.
in_stage() {
	sed -E "s#(^|[[:space:]\"'=])/image(/|[[:space:]\"']|\$)#\1$stage\2#g" <<<"$1"
}
note "build stage: running ${#build_runs[@]} RUN steps from the Dockerfile (/image -> $stage)"
for r in "${build_runs[@]}"; do
	while [[ $r =~ ^--[a-z-]+=[^[:space:]]+[[:space:]]+(.*)$ ]]; do r=${BASH_REMATCH[1]}; done
	r=$(in_stage "$r")
	# -buildvcs=false: the build context has no .git (.dockerignore).
	(cd "$repo" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" VERSION=$version COMMIT=$commit \
		TARGETOS=linux TARGETARCH=$(go env GOARCH) sh -c "$r") ||
		fail "build stage step failed: $r"
done

# --- final stage: exactly the COPY lines ---------------------------------

# owner UID:GID PATH: chown like COPY (root unless --chown). In userns mode
# the caller's own uid is the image's 65534 and nothing else is mapped, so
# files keep the caller as owner there.
owner() {
	if [[ $mode == chroot ]]; then chown -R "$1" "$2"; fi
}
for c in "${final_copies[@]}"; do
	read -ra words <<<"$c"
	from="" chown_to=0:0 paths=()
	for w in "${words[@]}"; do
		case $w in
		--from=*) from=${w#--from=} ;;
		--chown=*) chown_to=${w#--chown=} ;;
		--link) ;;
		--*) fail "COPY flag $w: image-test.sh does not model it yet" ;;
		*) paths+=("$w") ;;
		esac
	done
	[[ ${#paths[@]} -ge 2 ]] || fail "COPY needs a source and a destination: $c"
	dest=${paths[-1]}
	unset 'paths[-1]'
	for src in "${paths[@]}"; do
		if [[ -n $from ]]; then
			[[ $from == "$build_stage" ]] || fail "COPY --from=$from: only the build stage is modelled"
			[[ $src == /image || $src == /image/* ]] || fail "COPY --from=$from $src: only the build stage's /image is modelled"
			srcpath=$stage${src#/image}
		else
			srcpath=$repo/$src
		fi
		[[ -e $srcpath ]] || fail "COPY source $src does not exist ($srcpath)"
		if [[ -d $srcpath ]]; then
			# A directory's contents go into dest; a dest the COPY creates
			# gets the source directory's mode and the --chown owner.
			if [[ ! -e $root$dest ]]; then
				mkdir -p "$root$dest"
				chmod "$(stat -c %a "$srcpath")" "$root$dest"
				owner "$chown_to" "$root$dest"
			fi
			for e in "$srcpath"/* "$srcpath"/.[!.]*; do
				[[ -e $e ]] || continue
				cp -a "$e" "$root$dest/"
				owner "$chown_to" "$root$dest/$(basename "$e")"
			done
		else
			if [[ $dest == */ ]]; then
				mkdir -p "$root$dest"
				target=$root$dest$(basename "$src")
			else
				mkdir -p "$(dirname "$root$dest")"
				target=$root$dest
			fi
			cp -a "$srcpath" "$target"
			owner "$chown_to" "$target"
		fi
	done
done

note "final stage (FROM scratch) holds:"
(cd "$root" && find . -mindepth 1 -printf '  %M %U:%G %9s %p\n' | sort -k4)

bin=$root/secrets-sidecar
[[ -x $bin ]] || fail "/secrets-sidecar is not in the final stage"
# Execute-only and root's: a process whose user may not read its binary is
# non-dumpable from execve on, so a same-uid co-tenant cannot read its
# /proc/PID/environ or /proc/PID/mem while it starts.
[[ $(stat -c %a "$bin") == 511 ]] || fail "/secrets-sidecar is mode $(stat -c %a "$bin"), want 0511 (execute-only)"
if [[ $mode == chroot ]]; then
	[[ $(stat -c %u:%g "$bin") == 0:0 ]] || fail "/secrets-sidecar is owned by $(stat -c %u:%g "$bin"), want 0:0"
fi
grep -q '^nobody:x:65534:65534:' "$root/etc/passwd" || fail "/etc/passwd does not name nobody (65534)"
grep -q '^nobody:x:65534:' "$root/etc/group" || fail "/etc/group does not name nobody (65534)"
[[ -s $root/etc/ssl/certs/ca-certificates.crt ]] || fail "no CA certificates at /etc/ssl/certs/ca-certificates.crt"
[[ $(stat -c %a "$root/tmp") == 1777 ]] || fail "/tmp is not mode 1777"
for f in LICENSE THIRD_PARTY_NOTICES; do
	cmp -s "$root/usr/share/doc/secrets-sidecar/$f" "$repo/$f" || fail "/usr/share/doc/secrets-sidecar/$f is not the repository's $f"
done
[[ -d $root/secrets ]] || fail "no /secrets mount point"
if [[ $mode == chroot ]]; then
	[[ $(stat -c %u:%g "$root/secrets") == "$image_user" ]] || fail "/secrets is not owned by $image_user"
	[[ $(find "$root" -path "$root/secrets" -prune -o ! -uid 0 -print) == "" ]] || fail "files not owned by root outside /secrets"
fi

# --- the binary: static, stripped, trimmed, small -------------------------

desc=$(file -b "$bin")
[[ $desc == *"statically linked"* ]] || fail "not statically linked: $desc"
[[ $desc == *", stripped"* ]] || fail "not stripped: $desc"
meta=$(go version -m "$bin")
grep -Eq '^[[:space:]]+build[[:space:]]+CGO_ENABLED=0$' <<<"$meta" || fail "go version -m: not CGO_ENABLED=0"
grep -Eq '^[[:space:]]+build[[:space:]]+-trimpath=true$' <<<"$meta" || fail "go version -m: not -trimpath"
# (With -trimpath the toolchain records no -ldflags: `file` shows -s -w took
# effect, and `version` below shows the -X stamps did.)
size=$(stat -c %s "$bin")
mib=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')
note "binary: $size bytes ($mib MiB), $desc"
over() { awk -v s="$size" -v m="$1" 'BEGIN { exit !(s > m * 1048576) }'; }
! over "$max_mib" || fail "the binary is $mib MiB, over the ${max_mib} MiB limit"
if over "$target_mib"; then
	note "WARNING: the binary is $mib MiB, over the ${target_mib} MiB target"
fi

# --- run it inside the image as its user ---------------------------------

# image_cmd ARGV...: the command line that runs ARGV with the final stage as
# / and 65534:65534 as the user, with Docker's environment plus image_env.
image_env=()
image_cmd() {
	local env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOSTNAME=image-test "${image_env[@]}")
	if [[ $mode == chroot ]]; then
		cmd=("${env[@]}" "$(command -v chroot)" --userspec="$image_user" --groups=65534 "$root" "$@")
	else
		cmd=("${env[@]}" "$(command -v unshare)" --user --map-user=65534 --map-group=65534 --root="$root" --wd=/ -- "$@")
	fi
}

# in_image EXPECTED_EXIT OUT_FILE ERR_FILE ARGV...: runs ARGV in the image
# and fails unless it exits EXPECTED_EXIT.
in_image() {
	local want=$1 out=$2 err=$3 got=0
	shift 3
	image_cmd "$@"
	"${cmd[@]}" >"$out" 2>"$err" || got=$?
	if [[ $got != "$want" ]]; then
		echo "--- stdout" >&2 && cat "$out" >&2
		echo "--- stderr" >&2 && cat "$err" >&2
		fail "'$*' in the image exited $got, want $want"
	fi
}
out=$work/out err=$work/err

# version through the ENTRYPOINT.
in_image 0 "$out" "$err" "${entry[@]}" version
grep -Eq "^secrets-sidecar $version \(commit $commit, go1\.[0-9]+" "$out" || fail "version printed: $(cat "$out")"
note "version: $(cat "$out")"

# validate: an example config at the default path, SIDECAR_CONFIG unset.
mkdir -p "$root/etc/secrets-sidecar"
cp -R "$repo/$example/." "$root/etc/secrets-sidecar/"
[[ -f $root/etc/secrets-sidecar/config.yaml ]] || fail "$example has no config.yaml"
chmod -R a+rX "$root/etc/secrets-sidecar"
in_image 0 "$out" "$err" "${entry[@]}" validate
grep -q '^/etc/secrets-sidecar/config.yaml: ok (' "$out" || fail "validate printed: $(cat "$out")"
note "validate: $(cat "$out")"

# validate really checks: a bad mode is exit 2, naming file, line and field.
printf 'secrets:\n  - {name: a, path: p, destination: /secrets/a, key: k, mode: "0999"}\n' >"$root/etc/secrets-sidecar/bad.yaml"
chmod 0644 "$root/etc/secrets-sidecar/bad.yaml"
in_image 2 "$out" "$err" "${entry[@]}" validate /etc/secrets-sidecar/bad.yaml
grep -q '^/etc/secrets-sidecar/bad.yaml:2: secrets\[0\].mode: ' "$err" || fail "validate of a bad config printed: $(cat "$err")"
note "validate (bad config): exit 2: $(cat "$err")"

# The process is not root: a root-only file cannot be read.
if [[ $mode == chroot ]]; then
	cp "$root/etc/secrets-sidecar/config.yaml" "$root/etc/secrets-sidecar/root-only.yaml"
	chown 0:0 "$root/etc/secrets-sidecar/root-only.yaml"
	chmod 0600 "$root/etc/secrets-sidecar/root-only.yaml"
	in_image 2 "$out" "$err" "${entry[@]}" validate /etc/secrets-sidecar/root-only.yaml
	grep -q 'permission denied' "$err" || fail "a root-only file was readable: $(cat "$err")"
	note "runs as 65534: a root-only 0600 config is 'permission denied'"
else
	note "userns mode: files belong to the mapped user, so the root-only read check is chroot-only"
fi

# HEALTHCHECK with no status file: not ready, exit 1, one line saying why.
in_image 1 "$out" "$err" "${health[@]}"
lines=$(wc -l <"$err")
[[ $lines == 1 && -s $err ]] || fail "isready without a status file: want one line on stderr, got $lines: $(cat "$err")"
note "HEALTHCHECK ${health[*]} (no status file): exit 1: $(cat "$err")"

# HEALTHCHECK with status files written the daemon's way (the Go test
# writes them with jobs/status): waiting for a secret -> 1, ready -> 0.
put_status() {
	mkdir -p "$root/tmp/secrets-sidecar"
	cp "$1" "$root/tmp/secrets-sidecar/status.json"
	chmod 0755 "$root/tmp/secrets-sidecar"
	chmod 0644 "$root/tmp/secrets-sidecar/status.json"
	owner "$image_user" "$root/tmp/secrets-sidecar" # isready trusts only its own user's file
}
if [[ -n ${IMAGE_TEST_STATUS_WAITING:-} ]]; then
	put_status "$IMAGE_TEST_STATUS_WAITING"
	in_image 1 "$out" "$err" "${health[@]}"
	[[ $(wc -l <"$err") == 1 ]] || fail "isready (not ready): want one line on stderr: $(cat "$err")"
	note "HEALTHCHECK ${health[*]} (status file: a secret not written yet): exit 1: $(cat "$err")"
fi
if [[ -n ${IMAGE_TEST_STATUS_READY:-} ]]; then
	put_status "$IMAGE_TEST_STATUS_READY"
	in_image 0 "$out" "$err" "${health[@]}"
	note "HEALTHCHECK ${health[*]} (status file: ready, fresh): exit 0: $(cat "$out")"
fi

# --- a real sync inside the image, against a real Vault -------------------

# The Go test starts the Vault dev server on 127.0.0.1 (the chroot shares
# the network) with a KV v2 secret and an AppRole, and passes them here.
if [[ -n ${IMAGE_TEST_VAULT_ADDR:-} ]]; then
	: "${IMAGE_TEST_VAULT_PATH:?}" "${IMAGE_TEST_ROLE_ID:?}" "${IMAGE_TEST_SECRET_ID:?}" "${IMAGE_TEST_PASSWORD:?}"
	# The AppRole credentials, as a deployment would mount them.
	mkdir -p "$root/run/secrets/approle"
	printf '%s' "$IMAGE_TEST_ROLE_ID" >"$root/run/secrets/approle/role-id"
	printf '%s' "$IMAGE_TEST_SECRET_ID" >"$root/run/secrets/approle/secret-id"
	chmod 0400 "$root/run/secrets/approle/role-id" "$root/run/secrets/approle/secret-id"
	owner "$image_user" "$root/run/secrets/approle"
	cat >"$root/etc/secrets-sidecar/sync.yaml" <<-EOF
		vault:
		  address: $IMAGE_TEST_VAULT_ADDR
		  auth:
		    method: approle
		    approle:
		      role_id_file: /run/secrets/approle/role-id
		      secret_id_file: /run/secrets/approle/secret-id
		defaults:
		  refresh_interval: 2s
		secrets:
		  - {name: env, path: $IMAGE_TEST_VAULT_PATH, destination: /secrets/app/db.env, format: env}
		  - {name: password, path: $IMAGE_TEST_VAULT_PATH, destination: /secrets/password, key: password}
	EOF
	chmod 0644 "$root/etc/secrets-sidecar/sync.yaml"
	image_env=(SIDECAR_HTTP_ADDR= SIDECAR_LOG_LEVEL=debug)

	# once: every file written, exit 0.
	in_image 0 "$out" "$err" "${entry[@]}" --config /etc/secrets-sidecar/sync.yaml once --timeout 60s
	[[ -f $root/secrets/app/db.env && -f $root/secrets/password ]] || fail "once exited 0 but did not write the files: $(cat "$err")"
	[[ $(cat "$root/secrets/password") == "$IMAGE_TEST_PASSWORD" ]] || fail "/secrets/password does not hold the secret's password field"
	grep -q '^username=' "$root/secrets/app/db.env" || fail "/secrets/app/db.env is not the env format"
	[[ $(stat -c %a "$root/secrets/password") == 400 ]] || fail "/secrets/password is mode $(stat -c %a "$root/secrets/password"), want 0400"
	[[ $(stat -c %a "$root/secrets/app") == 755 ]] || fail "/secrets/app (created) is mode $(stat -c %a "$root/secrets/app"), want 0755"
	if [[ $mode == chroot ]]; then
		[[ $(stat -c %u:%g "$root/secrets/password") == "$image_user" ]] || fail "/secrets/password is owned by $(stat -c %u:%g "$root/secrets/password")"
	fi
	note "once (AppRole login, KV v2 read) as 65534: wrote /secrets/app/db.env and /secrets/password (0400, the right content)"

	# run: the daemon writes its own status file in /tmp; the HEALTHCHECK
	# turns healthy; SIGTERM stops it with exit 0 and it is unhealthy again.
	rm -rf "$root/tmp/secrets-sidecar" "$root/secrets/app" "$root/secrets/password"
	image_cmd "${entry[@]}" --config /etc/secrets-sidecar/sync.yaml run
	"${cmd[@]}" >"$work/daemon.out" 2>"$work/daemon.err" &
	daemon=$!
	image_env=()
	healthy=""
	for _ in $(seq 1 120); do
		image_cmd "${health[@]}"
		if "${cmd[@]}" >"$out" 2>"$err"; then
			healthy=yes
			break
		fi
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.5
	done
	if [[ -z $healthy ]]; then
		kill -KILL "$daemon" 2>/dev/null || true
		cat "$work/daemon.err" >&2
		fail "the daemon did not become healthy within 60s: $(cat "$err")"
	fi
	[[ $(stat -c %u "$root/tmp/secrets-sidecar/status.json") == "$(stat -c %u "$root/secrets/password")" ]] ||
		fail "the status file was not written by the daemon's user"
	note "run: HEALTHCHECK healthy from the daemon's own status file: $(cat "$out")"
	kill -TERM "$daemon"
	code=""
	for _ in $(seq 1 60); do
		if ! kill -0 "$daemon" 2>/dev/null; then
			code=0
			wait "$daemon" || code=$?
			break
		fi
		sleep 0.5
	done
	if [[ -z $code ]]; then
		kill -KILL "$daemon" 2>/dev/null || true
		fail "the daemon did not stop within 30s of SIGTERM"
	fi
	[[ $code == 0 ]] || { cat "$work/daemon.err" >&2; fail "the daemon exited $code after SIGTERM, want 0"; }
	in_image 1 "$out" "$err" "${health[@]}"
	note "run: SIGTERM -> exit 0; HEALTHCHECK afterwards: exit 1: $(cat "$err")"
	if grep -qF -- "$IMAGE_TEST_PASSWORD" "$work/daemon.out" "$work/daemon.err" "$root/tmp/secrets-sidecar/status.json"; then
		fail "the secret's value appears in the daemon's output or status file"
	fi
	note "run: the secret's value is in no log line and not in the status file"
fi

note "ok: mode $mode, user $image_user, binary $mib MiB (target ${target_mib} MiB, limit ${max_mib} MiB)"
