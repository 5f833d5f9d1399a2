# Helpers of the deploy suite (tests/deploy/run.sh): the compose tool of
# this machine, waiting for health, accounts, peers as containers, gamers
# through HAProxy. Every object made here carries the project's unique name
# so that cleanup frees exactly what this run made.

check () {     # check "what a user would check" COMMAND...
  local what=$1; shift
  if "$@"; then D_PASS=$((D_PASS + 1)); echo "ok   $what"
  else D_FAIL=$((D_FAIL + 1)); echo "FAIL $what"; fi
}
note () { echo "     $*"; }

# `docker compose` (v2) where installed, else `docker-compose` (v1, Debian 12)
if docker compose version >/dev/null 2>&1; then
  DC_TOOL=(docker compose)
  DC_WAIT=1
else
  DC_TOOL=(docker-compose)
  DC_WAIT=0
fi
dc () { "${DC_TOOL[@]}" --project-directory "$ROOT" -f "$ROOT/compose.yaml" "$@"; }

# `docker compose up -d --wait ARGS`; compose v1 has no --wait, so there the
# same: every container of the project healthy, or fail at the deadline
dc_up_wait () {
  if [ "$DC_WAIT" = 1 ]; then
    dc up -d --wait --wait-timeout 240 "$@"
    return
  fi
  dc up -d "$@" || return 1
  wait_healthy 240
}

# Every container of the project running and healthy within $1 seconds
wait_healthy () {
  local until=$((SECONDS + $1)) c bad
  while :; do
    bad=""
    for c in $(dc ps -q); do
      case $(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c") in
        running/healthy) ;;
        *) bad="$bad $c" ;;
      esac
    done
    [ -z "$bad" ] && [ -n "$(dc ps -q)" ] && return 0
    if [ $SECONDS -ge $until ]; then
      for c in $bad; do
        echo "     not healthy: $(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")"
      done
      return 1
    fi
    sleep 1
  done
}

# The containers of one service
cids () { dc ps -q "$1"; }
cid () { dc ps -q "$1" | head -1; }

# An operator's command, as docs/deploy.md writes it
ctl () { dc exec -T ledger p2c2r-ctl "$@"; }

# Creates an account and prints its API key
new_key () { ctl account create "$1" "$2" 2>/dev/null | awk '$1 == "api_key" {print $2}'; }

# Every account's id and balance, one per line (the books to compare)
balances () {
  ctl account list --json 2>/dev/null | python3 -c '
import json, sys
for a in sorted(json.load(sys.stdin), key=lambda a: a["id"]):
    print(a["id"], a["kind"], a["name"], a["balance_usd"])'
}

# Starts a peer container on the peers' network: peer NAME KEY. The test's
# private network has no TLS terminator: the agent is told that plain ws://
# to another host is meant (it refuses to send a key so otherwise)
peer_start () {
  docker run -d --name "$PROJECT-$1" --label "org.p2c2r.test=$PROJECT" \
    --network "$PEERNET" -e P2C2R_API_KEY="$2" -e P2C2R_ALLOW_INSECURE_WS=true \
    "p2c2r:$P2C2R_TAG" \
    p2c2r-agent peer --server ws://p2c2r:8765 --peer-id "$1" --slots 1 --no-bench >/dev/null
}

# Times a peer's log says it registered
peer_registrations () { docker logs "$PROJECT-$1" 2>&1 | grep -c 'peer: registered'; }

# A gamer on this host through HAProxy's published port, like a player:
# gamer OUT COUNT CONCURRENCY ITERATIONS [more flags]; replies in OUT.json,
# the summary in OUT.sum. The data differ per run (OUT's name and our PID),
# so that no result comes from the scheduler's cache: peers do every task.
data_of () { echo "$(basename "$1")-$$-"; }
gamer () {
  local out=$1 count=$2 conc=$3 iters=$4; shift 4
  "$ROOT/bin/p2c2r-agent" gamer --server "ws://127.0.0.1:$PORT" --api-key "$GAMER_KEY" \
    --task hash --params "{\"data\":\"$(data_of "$out"){i}\",\"iterations\":$iters}" \
    --count "$count" --concurrency "$conc" --timeout-s 300 --json "$@" \
    </dev/null >"$out.json" 2>"$out.sum"
}

# Every reply of a gamer run is ok and carries the right hash (iterated
# SHA-256 chained over the raw digest, the original demo's formula that
# agent/kernels/k_encryption.c 2.0.0 computes), and the summary counts them all
results_ok () {
  local out=$1 count=$2 iters=$3
  python3 - "$out.json" "$count" "$iters" "$(data_of "$out")" <<'PY' &&
import hashlib, json, sys
path, count, iters, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
seen = set()
for line in open(path):
    r = json.loads(line)
    i = r["index"]
    cur = ("%s%d" % (data, i)).encode()
    for k in range(iters):
        h = hashlib.sha256(); h.update(cur); h.update(str(k).encode()); cur = h.digest()
    if not r["ok"] or r["result"]["hash"] != cur.hex():
        sys.exit("reply %d: %s" % (i, line.strip()[:200]))
    seen.add(i)
if len(seen) != count:
    sys.exit("%d distinct replies of %d" % (len(seen), count))
PY
  grep -q "ok=$count errors=0 missing=0 protocol_errors=0 cached=0" "$out.sum" \
    || { echo "     $(grep "^summary: tasks" "$out.sum")"; return 1; }
}

# Lines (replies) a running gamer has written so far
replies () { wc -l <"$1.json" 2>/dev/null || echo 0; }

# Waits until a running gamer has at least N replies (or its process ended)
wait_replies () {
  local out=$1 n=$2 pid=$3 until=$((SECONDS + 120))
  while [ "$(replies "$out")" -lt "$n" ] && kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $until ]; do
    sleep 0.2
  done
  [ "$(replies "$out")" -ge "$n" ]
}

# A figure of a gateway container's own /api/stats (python expression on s)
gw_stat () {
  docker exec "$1" sh -c 'curl -fsS --max-time 3 -H "Authorization: Bearer $(cat /var/lib/p2c2r/keys/admin-token)" http://127.0.0.1:8766/api/stats' 2>/dev/null \
    | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# A short gamer run whose every reply is right: gamer_ok OUT COUNT
# Iterations of the suite's hash tasks: enough work per task that a gamer's
# pace stays under the compose gateways' per-connection message rate
ITERS=20000
gamer_ok () { gamer "$1" "$2" 2 "$ITERS" && results_ok "$1" "$2" "$ITERS"; }

# Waits until the scheduler counts N peers online (they back off after
# losing HAProxy), up to 180 s
wait_peers () {
  local until=$((SECONDS + 180)) n
  while [ $SECONDS -lt $until ]; do
    n=$(gw_stat "$(cid gateway)" 's["scheduler"]["peers_online"]' 2>/dev/null)
    [ "${n:-0}" -ge "$1" ] && return 0
    sleep 1
  done
  echo "     peers online: ${n:-?} of $1"
  return 1
}
