#!/bin/sh
# Assembles the build context of deployments/docker/Dockerfile.prebuilt in
# the directory OUT_DIR from a binary built outside Docker (`make build`):
#
#   OUT_DIR/image/root/     rootfs.sh's files plus BINARY as /secrets-sidecar
#   OUT_DIR/image/secrets/  the /secrets mount point
#
# The binary must be static (CGO_ENABLED=0): the image has no libc.
#
#   prebuilt-context.sh BINARY OUT_DIR
set -eu

if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
	echo "usage: $0 BINARY OUT_DIR" >&2
	exit 2
fi
bin=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
	echo "$0: $bin is not an executable file (make build)" >&2
	exit 1
fi
if [ -e "$out/image" ]; then
	echo "$0: $out/image exists: give an empty or new directory" >&2
	exit 1
fi

mkdir -p "$out"
sh "$here/rootfs.sh" "$out/image"
cp "$bin" "$out/image/root/secrets-sidecar"
# Execute-only, and COPY makes it root's (0:0): a process whose user may not
# read its binary is non-dumpable from execve on (see ../../Dockerfile).
chmod 0511 "$out/image/root/secrets-sidecar"
