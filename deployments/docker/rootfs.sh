#!/bin/sh
# Assembles the secrets-sidecar image's files, all but the binary, under the
# directory $1:
#
#   $1/root/     the image's / (copied owned by root)
#   $1/secrets/  the image's /secrets (copied owned by 65534:65534)
#
# It is the one source of truth for the scratch image: the Dockerfile's build
# stage runs it and the final stage copies the result, and
# scripts/image-test.sh runs the same build-stage steps to assemble the same
# tree for its chroot test.
#
#   CA_BUNDLE  CA certificates to copy (default /etc/ssl/certs/ca-certificates.crt)
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUT_DIR" >&2
	exit 2
fi
out=$1
root=$out/root
here=$(cd "$(dirname "$0")" && pwd)
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [ ! -s "$ca" ]; then
	echo "$0: no CA bundle at $ca (install ca-certificates)" >&2
	exit 1
fi

# /etc/passwd and /etc/group name root and nobody (65534), the image's user,
# so that tools and libraries that look the user up find it.
mkdir -p "$root/etc/ssl/certs"
chmod 0755 "$out" "$root" "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs"
cp "$here/rootfs/etc/passwd" "$here/rootfs/etc/group" "$root/etc/"
chmod 0644 "$root/etc/passwd" "$root/etc/group"

# CA certificates for https:// Vault addresses (Go reads this path on Linux).
cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"

# The licence and the third-party notices (`make notices`), where Debian
# keeps a package's: /usr/share/doc/secrets-sidecar/.
doc=$root/usr/share/doc/secrets-sidecar
mkdir -p "$doc"
chmod 0755 "$root/usr" "$root/usr/share" "$root/usr/share/doc" "$doc"
for f in LICENSE THIRD_PARTY_NOTICES; do
	if [ ! -s "$here/../../$f" ]; then
		echo "$0: no $f at the repository's root" >&2
		exit 1
	fi
	cp "$here/../../$f" "$doc/$f"
	chmod 0644 "$doc/$f"
done

# /tmp, world-writable and sticky: the daemon's status file lives in
# /tmp/secrets-sidecar/ by default (SIDECAR_STATUS_FILE), and a scratch
# image has no directory the unprivileged user could create it in.
mkdir -p "$root/tmp"
chmod 1777 "$root/tmp"

# /secrets, the conventional mount point of the shared volume. The image
# holds it owned by 65534 so that an empty Docker named volume mounted there
# starts out writable by the sidecar (Docker copies the image directory's
# owner and mode into a new volume); tmpfs and emptyDir volumes bring their
# own.
mkdir -p "$out/secrets"
chmod 0755 "$out/secrets"
