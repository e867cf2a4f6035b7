#!/usr/bin/env bash
# Makes sure a PostgreSQL server from Debian's packages is installed for the
# leased-secret tests and prints its bin directory (initdb, pg_ctl, psql).
# The tests start their own cluster with initdb/pg_ctl on 127.0.0.1 and a
# free port, as the postgres user when run as root; nothing here starts a
# server. When PostgreSQL is missing it installs Debian's `postgresql`
# without the default cluster (needs root and apt-get); without them it
# stops with one line saying what to install.
set -euo pipefail

find_bindir() {
	local d
	while read -r d; do # the newest major version first
		[[ -x $d/initdb && -x $d/pg_ctl && -x $d/psql ]] && { echo "$d"; return 0; }
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
	return 1
}

if dir=$(find_bindir); then
	echo "$dir"
	exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "postgres: the tests need a PostgreSQL server: install Debian's postgresql package (apt-get install postgresql), or run make test as root with apt-get" >&2
	exit 1
fi
echo "postgres: installing Debian's postgresql package (no default cluster)..." >&2
mkdir -p /etc/postgresql-common
[[ -e /etc/postgresql-common/createcluster.conf ]] || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends postgresql >&2
dir=$(find_bindir) || { echo "postgres: installed postgresql but found no /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }
echo "$dir"
