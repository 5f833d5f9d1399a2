#!/bin/sh
# Entrypoint of the P2C2R image (runs as the user p2c2r). Every service of
# compose.yaml starts through it; `docker compose exec` does not, so what an
# operator's command needs comes from the environment compose.yaml sets
# (P2C2R_DB=@/var/lib/p2c2r/secrets/ledger_db, P2C2R_BROKER), not from here.
set -eu

# Node keys for the internal bus (issue 13, CURVE): generate this node's
# key pair into /var/lib/p2c2r/keys on its first start and reuse it after;
# the broker's allow-list is made from the public halves. Not done yet: the
# bus is closed only by Docker's private network today.

# The ledger (and ctl) read the database's conninfo that the PostgreSQL
# container writes on its first start; compose starts the ledger only once
# PostgreSQL is healthy, so a missing file is a mistake worth saying.
case "${1:-}" in
  p2c2r-ledger)
    if [ ! -r /var/lib/p2c2r/secrets/ledger_db ]; then
      echo "p2c2r-entrypoint: no /var/lib/p2c2r/secrets/ledger_db (the secrets volume is" \
           "written by the postgres service on its first start)" >&2
      exit 1
    fi ;;
esac
exec "$@"
