#!/usr/bin/env bash
# A private PostgreSQL cluster for P2C2R: data in DIR/data, the unix socket in
# DIR/run (no TCP at all), the server log in DIR/log. Local connections are
# trusted, so the socket directory is the only door; fsync and synchronous
# commit stay on because the ledger's acks promise durability.
#
#   pg.sh start DIR PORT     initdb if DIR/data is missing, start, wait, create db p2c2r
#   pg.sh stop DIR           fast shutdown (does nothing when not running)
#   pg.sh conninfo DIR PORT  print the libpq conninfo for the cluster
#
# PostgreSQL refuses to run as root: as root the cluster belongs to a system
# user p2c2r (created when missing) and the server tools run as that user.
# Idempotent; prints nothing but errors.
set -euo pipefail

PG_USER=p2c2r
PROG=$(basename "$0")

die() { echo "$PROG: $*" >&2; exit 1; }

usage() {
  echo "usage: $PROG start DIR PORT | stop DIR | conninfo DIR PORT" >&2
  exit 2
}

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] || die "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
  echo "$bin"
}

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a server tool as the cluster's owner (ourselves unless root). From /,
# since the owner may not be allowed into the caller's directory.
as_owner() {
  if is_root; then
    (cd / && runuser -u "$PG_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

check_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ] || die "bad port '$1'"
}

abs_dir() {
  [ -n "$1" ] || die "empty DIR"
  realpath -m -- "$1"
}

# Creates DIR (and missing parents); as root hands DIR to the cluster user and
# makes the directories this script created traversable for it.
make_dir() {
  local dir=$1 d created=()
  d=$dir
  while [ ! -e "$d" ]; do
    created+=("$d")
    d=$(dirname -- "$d")
  done
  mkdir -p -- "$dir"
  [ -d "$dir" ] || die "$dir is not a directory"
  if is_root; then
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" \
        || die "cannot create system user $PG_USER"
    fi
    for d in "${created[@]}"; do
      chmod o+x -- "$d"
    done
    chown "$PG_USER:" -- "$dir"
    runuser -u "$PG_USER" -- test -x "$dir" -a -w "$dir" \
      || die "user $PG_USER cannot reach $dir: a parent directory is not traversable (chmod o+x it or choose another DIR)"
  fi
  # Clients of other users must be able to reach DIR/run
  chmod 0755 -- "$dir"
  mkdir -p -- "$dir/run" "$dir/log"
  chmod 0755 -- "$dir/run" "$dir/log"
  if is_root; then
    chown "$PG_USER:" -- "$dir/run" "$dir/log"
  fi
}

is_running() {
  local dir=$1 bin=$2
  [ -f "$dir/data/PG_VERSION" ] || return 1
  as_owner "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

cmd_start() {
  local dir port bin
  dir=$(abs_dir "$1")
  port=$2
  check_port "$port"
  bin=$(pg_bin)
  make_dir "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    [ ! -e "$dir/data" ] || [ -z "$(ls -A -- "$dir/data")" ] \
      || die "$dir/data exists but holds no cluster; remove it first"
    if ! as_owner "$bin/initdb" -D "$dir/data" -U "$PG_USER" --auth=trust --encoding=UTF8 \
         --locale=C.UTF-8 >"$dir/log/initdb.log" 2>&1; then
      cat "$dir/log/initdb.log" >&2
      die "initdb failed (log above, also in $dir/log/initdb.log)"
    fi
    echo "include_if_exists = 'p2c2r.conf'" >>"$dir/data/postgresql.conf"
  fi
  if is_running "$dir" "$bin"; then
    return 0
  fi
  # Rewritten on every start so that a new PORT takes effect
  local conf="$dir/data/p2c2r.conf"
  cat >"$conf" <<CONF
# Written by pg.sh at every start; edit pg.sh instead.
listen_addresses = ''
port = $port
unix_socket_directories = '$dir/run'
unix_socket_permissions = 0777
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
# Settlement writes a journal of random-keyed rows: room for the indexes in
# memory, fewer checkpoints (each one makes the next write of every page a
# full-page image in the WAL), and compressed page images. Durability is the
# same: every commit is flushed.
shared_buffers = 512MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = lz4
CONF
  if is_root; then
    chown "$PG_USER:" -- "$conf"
  fi
  if ! as_owner "$bin/pg_ctl" start -D "$dir/data" -w -t 60 -l "$dir/log/postgresql.log" >/dev/null 2>&1; then
    tail -n 20 "$dir/log/postgresql.log" >&2 || true
    die "pg_ctl start failed (see $dir/log/postgresql.log)"
  fi
  local i ready=0
  for i in $(seq 1 120); do
    if "$bin/pg_isready" -q -h "$dir/run" -p "$port"; then
      ready=1
      break
    fi
    sleep 0.25
  done
  [ "$ready" = 1 ] || die "server did not become ready within 30 s (see $dir/log/postgresql.log)"
  local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$port" -U "$PG_USER")
  if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'p2c2r'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE p2c2r OWNER $PG_USER" >/dev/null \
      || die "cannot create database p2c2r"
  fi
}

cmd_stop() {
  local dir bin
  dir=$(abs_dir "$1")
  bin=$(pg_bin)
  if ! is_running "$dir" "$bin"; then
    return 0
  fi
  as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >/dev/null \
    || die "pg_ctl stop failed (see $dir/log/postgresql.log)"
}

cmd_conninfo() {
  local dir
  dir=$(abs_dir "$1")
  check_port "$2"
  echo "host=$dir/run port=$2 dbname=p2c2r user=$PG_USER"
}

[ $# -ge 1 ] || usage
case "$1" in
  start)    [ $# -eq 3 ] || usage; cmd_start "$2" "$3" ;;
  stop)     [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
  conninfo) [ $# -eq 3 ] || usage; cmd_conninfo "$2" "$3" ;;
  *)        usage ;;
esac
