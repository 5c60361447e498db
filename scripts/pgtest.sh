#!/usr/bin/env bash
# pgtest.sh CMD [ARGS...]
#
# Starts a throwaway PostgreSQL cluster (15 when installed, else any version found) on 127.0.0.1 (trust auth, fsync
# off, a free port), exports
#   PAYPER_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
# runs CMD, then stops the cluster and deletes its directory whatever
# happens. Exits with CMD's status.
#
# Example: scripts/pgtest.sh go test ./store/...
#
# The server runs as the "postgres" OS user when this script runs as root
# (initdb refuses root). If no server binaries are found and we are root,
# Debian's postgresql package is installed first.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

log() { echo "pgtest: $*" >&2; }

find_bindir() {
	local dir
	if command -v pg_config >/dev/null 2>&1; then
		dir=$(pg_config --bindir 2>/dev/null || true)
		if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
			echo "$dir"
			return 0
		fi
	fi
	for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
		if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
			echo "$dir"
			return 0
		fi
	done
	return 1
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "PostgreSQL server binaries not found; install Debian's postgresql package"
		exit 1
	fi
	log "installing PostgreSQL server (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q postgresql </dev/null >/dev/null
	bindir=$(find_bindir) || {
		log "PostgreSQL server binaries still missing after install"
		exit 1
	}
fi

# as_server runs a server binary as the user owning the cluster.
if [ "$(id -u)" -eq 0 ]; then
	server_user=postgres
	if ! id "$server_user" >/dev/null 2>&1; then
		log "OS user $server_user does not exist"
		exit 1
	fi
	as_server() { runuser -u "$server_user" -- "$@"; }
else
	server_user=$(id -un)
	as_server() { "$@"; }
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/payper-pgtest.XXXXXX")
chmod 700 "$workdir"
if [ "$(id -u)" -eq 0 ]; then
	chown "$server_user": "$workdir"
fi
datadir="$workdir/data"
logfile="$workdir/server.log"
started=

cleanup() {
	local status=$?
	if [ -n "$started" ]; then
		as_server "$bindir/pg_ctl" stop -D "$datadir" -m immediate -s >/dev/null 2>&1 || true
	fi
	rm -rf "$workdir"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_server "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 --no-locale >"$workdir/initdb.log" 2>&1 || {
	cat "$workdir/initdb.log" >&2
	log "initdb failed"
	exit 1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Another process may grab a port between the check and the start, so a
# failed start tries another one.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
	port=$((20000 + RANDOM % 30000))
	if port_in_use "$port"; then
		continue
	fi
	if as_server "$bindir/pg_ctl" start -D "$datadir" -l "$logfile" -w -t 60 -s \
		-o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$workdir \
			-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
			-c max_connections=200" </dev/null; then
		started=1
		break
	fi
done
if [ -z "$started" ]; then
	[ -f "$logfile" ] && tail -n 20 "$logfile" >&2
	log "could not start PostgreSQL"
	exit 1
fi

version=$("$bindir/postgres" --version | awk '{print $3}')
log "PostgreSQL $version on 127.0.0.1:$port (data $datadir, user $server_user, fsync off); stopped on exit"

export PAYPER_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

set +e
"$@"
status=$?
set -e
exit "$status"
