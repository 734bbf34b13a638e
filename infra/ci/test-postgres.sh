#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tests and print its URL on stdout.
#   usage: infra/ci/test-postgres.sh DIR [PORT]      (PORT default: a free port)
#   stop:  pg_ctl -D DIR/data stop   (as the postgres user when run as root)
# Uses Debian's server binaries (apt-get install postgresql); trust auth, loopback only, no fsync.
# Exit 3 when no server binaries are installed (the tests then skip, saying why).
set -euo pipefail
dir=${1:?usage: test-postgres.sh DIR [PORT]}
port=${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "test-postgres: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    exit 3
fi
mkdir -p "$dir"
run=()
if [ "$(id -u)" = 0 ]; then  # initdb refuses to run as root: use the postgres system user
    chown postgres "$dir"
    run=(runuser -u postgres --)
fi
"${run[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
"${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -F" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
echo "postgresql://postgres@127.0.0.1:$port/postgres"
