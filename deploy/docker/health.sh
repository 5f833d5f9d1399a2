#!/bin/sh
# Healthchecks of the P2C2R image (compose.yaml): `p2c2r-health SERVICE`
# exits 0 when that service does its job, not merely when it runs.
#   broker     a node joins it and hears its heartbeat
#   scheduler  the broker counts a live scheduler node (one per pool)
#   ledger     on the bus, and every migration shipped in the image is
#              applied to the database (the ledger serves nothing before)
#   gateway    /readyz: 200 only while a broker, a scheduler and a ledger
#              answer and the gateway is not draining
set -eu
BROKER=${P2C2R_BROKER:-tcp://broker:5555}
case "${1:-}" in
  broker)
    exec p2c2r-broker --bind tcp://127.0.0.1:5555 --probe broker ;;
  scheduler)
    exec p2c2r-broker --bind "$BROKER" --probe scheduler ;;
  ledger)
    p2c2r-broker --bind "$BROKER" --probe ledger
    want=$(ls /usr/local/share/p2c2r/sql | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -1)
    have=$(p2c2r-ctl psql -XqtA -c 'SELECT max(version) FROM schema_migrations')
    [ "$have" = "$want" ] || { echo "migrations applied: ${have:-none} of $want" >&2; exit 1; } ;;
  gateway)
    exec curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:8765/readyz ;;
  *)
    echo "usage: p2c2r-health broker|scheduler|ledger|gateway" >&2; exit 2 ;;
esac
