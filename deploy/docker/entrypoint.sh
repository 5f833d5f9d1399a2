#!/bin/sh
# Entrypoint of the P2C2R image (runs as the user p2c2r). Every service of
# compose.yaml starts through it; `docker compose exec` does not, so what an
# operator's command needs comes from the environment compose.yaml sets
# (P2C2R_DB=@/var/lib/p2c2r/secrets/ledger_db, P2C2R_BROKER), not from here.
set -eu

# Keys of the internal bus (CURVE, docs/trust.md) in the volume "keys"
# (P2C2R_KEYS): the broker makes them on its first start (its pair, one per
# service and the allow-list) and every start after reuses them; the other
# services start once the broker is healthy, so they find them. Managed
# later with `docker compose exec broker p2c2r-ctl keys list|add|revoke`.
KEYS=${P2C2R_KEYS:-/var/lib/p2c2r/keys}
case "${1:-}" in
  p2c2r-broker)
    if [ ! -e "$KEYS/broker.key" ]; then
      p2c2r-ctl keys init --keys "$KEYS" >/dev/null
      echo "p2c2r-entrypoint: made the bus keys in $KEYS" >&2
    fi
    # The operator's token of the gateways' admin listeners (/metrics,
    # /api/stats, the operator's page: docs/gateway.md), readable by its
    # owner only: `docker compose exec gateway cat $KEYS/admin-token`
    if [ ! -e "$KEYS/admin-token" ]; then
      (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEYS/admin-token")
      echo "p2c2r-entrypoint: made the operator's token $KEYS/admin-token" >&2
    fi ;;
  p2c2r-ledger|p2c2r-scheduler|p2c2r-gateway)
    if [ ! -e "$KEYS/broker.key" ]; then
      echo "p2c2r-entrypoint: no bus keys in $KEYS (the broker makes them on its first start)" >&2
      exit 1
    fi ;;
esac

# The ledger (and ctl) read the database's conninfo that the PostgreSQL
# container writes on its first start; compose starts the ledger only once
# PostgreSQL is healthy, so a missing file is a mistake worth saying.
case "${1:-}" in
  p2c2r-ledger)
    for f in ledger_db owner_db; do
      if [ ! -r "/var/lib/p2c2r/secrets/$f" ]; then
        echo "p2c2r-entrypoint: no /var/lib/p2c2r/secrets/$f (the secrets volume is" \
             "written by the postgres service on its first start)" >&2
        exit 1
      fi
    done ;;
esac
exec "$@"
