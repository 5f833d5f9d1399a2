#!/bin/bash
# Entrypoint of the P2C2R PostgreSQL image. Runs as root only to prepare,
# then execs postgres as the postgres user. On the first start (empty
# volumes) it
#   1. makes the passwords of the database's three roles and their
#      conninfos in the secrets volume (/var/lib/p2c2r/secrets, group p2c2r,
#      mode 0640): nothing secret ever comes from the repository. p2c2r owns
#      the tables and runs the migrations (owner_db); the ledger works as
#      p2c2r_ledger (ledger_db); p2c2r-ctl reads as p2c2r_reader (reader_db)
#      (ledger/sql/008_roles.sql grants each what it may do);
#   2. initialises the cluster in $PGDATA with p2c2r as the owner of the
#      database p2c2r; connections over TCP need the password (scram);
#   3. makes the two other roles with their passwords (also on the first
#      start of a cluster made before they existed: a marker in $PGDATA).
# On later starts all of it exists and is reused as it is. The ledger runs
# the migrations itself when it starts.
set -euo pipefail
SECRETS=/var/lib/p2c2r/secrets
DB=p2c2r
DB_USER=p2c2r
DB_HOST=${P2C2R_DB_HOST:-postgres}

log() { echo "pg-entrypoint: $*" >&2; }

# A secret file written once: to a temporary name first, so that a start
# killed half way never leaves a truncated password behind
write_secret() {
  local path=$1 value=$2
  ( umask 027; printf '%s\n' "$value" >"$path.tmp" )
  chown root:p2c2r "$path.tmp"
  chmod 0640 "$path.tmp"
  mv -f "$path.tmp" "$path"
}

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
  install -d -o root -g p2c2r -m 0750 "$SECRETS"
  if [ ! -s "$SECRETS/pg_password" ]; then
    log "making the database password (first start)"
    # 32 letters and digits: no quoting in a conninfo, ~190 bits
    write_secret "$SECRETS/pg_password" \
      "$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)"
  fi
  for role in ledger reader; do
    if [ ! -s "$SECRETS/pg_password_$role" ]; then
      log "making the password of ${DB}_$role (first start)"
      write_secret "$SECRETS/pg_password_$role" \
        "$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)"
    fi
  done
  password=$(head -1 "$SECRETS/pg_password")
  ledger_password=$(head -1 "$SECRETS/pg_password_ledger")
  reader_password=$(head -1 "$SECRETS/pg_password_reader")
  # Rewritten on every start from the passwords: the host name may change
  conninfo () { echo "host=$DB_HOST port=5432 dbname=$DB user=$1 password=$2 connect_timeout=5"; }
  write_secret "$SECRETS/owner_db" "$(conninfo "$DB_USER" "$password")"
  write_secret "$SECRETS/ledger_db" "$(conninfo "${DB}_ledger" "$ledger_password")"
  write_secret "$SECRETS/reader_db" "$(conninfo "${DB}_reader" "$reader_password")"

  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initialising the cluster in $PGDATA (first start)"
    runuser -u postgres -- initdb -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    # The database user and its database, through the socket only (no TCP
    # until the cluster is ready)
    runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    # The password goes in on stdin, never on a command line (letters and
    # digits only, so it needs no quoting)
    # The ledger's settle function sets p2c2r.settle_checked in its SET
    # clause, which PostgreSQL 15 allows a user that is no superuser only
    # with this grant (ledger/sql/004_settle_function.sql says why it is safe)
    printf "CREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n%s\n" \
        "$DB_USER" "$password" "$DB" "$DB_USER" \
        "GRANT SET ON PARAMETER p2c2r.settle_checked TO $DB_USER;" \
      | runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres >/dev/null
    runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    {
      echo "# P2C2R: every address may try, the password decides (scram)"
      echo "host all all 0.0.0.0/0 scram-sha-256"
      echo "host all all ::/0 scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
  fi
  # The ledger's and the reader's roles (named after the database, as
  # 008_roles.sql expects; it grants, p2c2r may not create roles), with
  # their passwords on stdin
  if [ ! -e "$PGDATA/p2c2r-roles" ]; then
    log "making the roles ${DB}_ledger and ${DB}_reader"
    runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    for pair in "ledger:$ledger_password" "reader:$reader_password"; do
      role=${DB}_${pair%%:*}
      printf "SELECT 'CREATE ROLE %s LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s')\\gexec\nALTER ROLE %s LOGIN PASSWORD '%s';\n" \
          "$role" "$role" "$role" "${pair#*:}" \
        | runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres >/dev/null
    done
    runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    touch "$PGDATA/p2c2r-roles"
    chown postgres:postgres "$PGDATA/p2c2r-roles"
  fi
  # setpriv execs (runuser would stay as PID 1 between docker and postgres)
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi
exec "$@"
