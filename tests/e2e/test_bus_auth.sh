#!/usr/bin/env bash
# The closed bus against the real processes (issue 13, docs/trust.md): a
# node with no key, with a key nobody listed, with a listed key sending what
# its role may not send (a gateway's key: an admin credit, a rotate-key, a
# forged settlement and reversal; the same key posing as a second ledger to
# take auth requests), and a key revoked while its node is connected. Each
# is refused, logged with the key's name and counted; balances, keys and
# the journal stay as they were; p2c2r-ctl audit stays clean. The same
# credit from ctl's key goes through, so the refusals are the bus's doing.
. "$(dirname "$0")/lib.sh"
PROBE=$ROOT/build/bench/bus_probe

start_stack
CTL=(env P2C2R_DB="$T_READER_DB" "$BIN/p2c2r-ctl" --broker "$BROKER")
check "ctl writes through the closed bus with its key (account create)" \
  "${CTL[@]}" account create peer attacker-peer
VICTIM=$(sql "SELECT id FROM accounts WHERE kind = 'gamer' AND name = 'probe'")
PEER=$(sql "SELECT id FROM accounts WHERE kind = 'peer' AND name = 'attacker-peer'")
# Everything an intruder could change: journal, tasks, reversals, every
# account's balance, key and state. The gamers who register meanwhile
# (reg-*) are new accounts whose starting credit comes from the external
# funding account: both left out, and the transactions that paid them.
snapshot () {
  sql "SELECT (SELECT count(*) FROM journal_tx t WHERE NOT EXISTS
                 (SELECT 1 FROM journal_entries e JOIN accounts a ON a.id = e.account_id
                   WHERE e.tx_id = t.id AND a.name LIKE 'reg-%'))
           || '/' || (SELECT count(*) FROM tasks) || '/' || (SELECT count(*) FROM reversals)
           || '/' || (SELECT string_agg (id || ':' || balance_pico || ':'
                                         || coalesce (key_hash, '-') || ':' || disabled, ','
                                         ORDER BY id)
                        FROM accounts WHERE name NOT LIKE 'reg-%' AND kind <> 'external')"
}
BEFORE=$(snapshot)

# A listed key bound to gateway, used for everything a gateway may not do
"$BIN/p2c2r-ctl" keys add gw-evil gateway >/dev/null
# A key pair nobody listed, talking to the right broker
"$BIN/p2c2r-ctl" --keys "$T_DIR/stranger" keys init >/dev/null
cp "$P2C2R_KEYS/broker.key" "$T_DIR/stranger/broker.key"
# the broker rereads the allow-list within a second
wait_for 10 grep -q 'allow-list reread keys=5' "$T_DIR/broker.log"

probe () {   # probe NAME ARGS...: runs bus_probe in the background, output in NAME.out
  local name=$1; shift
  spawn_out "$name" "$PROBE" --broker "$BROKER" --account "$VICTIM" --peer "$PEER" "$@"
}
probe nokey --key-name "" --service ctl --send credit
probe stranger --keys "$T_DIR/stranger" --key-name ctl --service ctl --send credit
probe gw-credit --key-name gw-evil --service gateway --send credit
probe gw-rotate --key-name gw-evil --service gateway --send rotate-key
probe gw-settle --key-name gw-evil --service gateway --send settle
probe gw-reverse --key-name gw-evil --service gateway --send reverse
probe poser --key-name gw-evil --service ledger --send none --for-ms 6000
# gamers register while the poser waits for their auth requests
for i in 1 2 3 4; do
  "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "reg-$i" --task encryption \
      --params '{"data":"x","iterations":1}' --count 1 --quiet --timeout-s 5 >/dev/null 2>&1
done
for p in nokey stranger gw-credit gw-rotate gw-settle gw-reverse poser; do
  pid_var=PID_${p//-/_}
  wait "${!pid_var}" 2>/dev/null
done
val () { sed -n "s/^$2 //p" "$T_DIR/$1.out"; }

check "a node without a key never gets past the handshake" [ "$(val nokey reached)" = 0 ]
check "a key nobody listed never gets past the handshake" [ "$(val stranger reached)" = 0 ]
# (libzmq reports the mechanism mismatch, or only that the keyless node hung
# up mid-handshake, depending on who closes first)
check "the broker logs the keyless handshake" \
  grep -Eq 'refused handshake key=(none reason=no-curve|unknown reason=closed)' "$T_DIR/broker.log"
check "the broker logs the unlisted key" grep -q 'refused handshake key=unknown .*reason=not-listed' "$T_DIR/broker.log"
check "a gateway's key got onto the bus (the refusals below are by role)" [ "$(val gw-credit reached)" = 1 ]
check "its admin credit got no answer" [ "$(val gw-credit admin_ok)/$(val gw-credit admin_refused)" = 0/0 ]
check "its rotate-key got no answer (no account takeover)" [ "$(val gw-rotate admin_ok)" = 0 ]
for t in admin_request settle_request settle_reverse; do
  check "the ledger refused $t from gw-evil and logged the key" \
    grep -q "node: refused type=$t from=.* stamp=gateway:gw-evil key=gw-evil" "$T_DIR/ledger.log"
done
check "a gateway's key announcing ledger is refused at the broker" \
  grep -q 'refused hello .*service=ledger key=gw-evil bound=gateway' "$T_DIR/broker.log"
check "the posing ledger got no auth request" [ "$(val poser auth_requests)" = 0 ]
check "gamers still registered meanwhile (the real ledger answered)" \
  [ "$(sql "SELECT count(*) FROM accounts WHERE kind = 'gamer' AND name LIKE 'reg-%'")" = 4 ]
# counted: the broker's status line carries its counters (every 10 s)
check "the broker counts the refusals" wait_for 15 grep -Eq \
  'refused_handshakes=[1-9][0-9]* refused_hellos=[1-9][0-9]*' "$T_DIR/broker.log"
check "the ledger counts them" grep -Eq 'node: refused .* refused=([4-9]|[1-9][0-9]+)$' "$T_DIR/ledger.log"
check "balances, keys, tasks, reversals and the journal unchanged by the refused" \
  [ "$(snapshot)" = "$BEFORE" ]
check "no settlement of a forged task id" [ "$(sql "SELECT count(*) FROM journal_tx WHERE task_id LIKE 'probe-%'")" = 0 ]
check "p2c2r-ctl audit is clean" "${CTL[@]}" audit

# The same credit from ctl's key goes through: a listed ctl key, revoked
# while its node keeps sending, is cut off from then on
"$BIN/p2c2r-ctl" keys add ops-2 ctl >/dev/null
wait_for 10 grep -q 'allow-list reread keys=6' "$T_DIR/broker.log"
bal () { sql "SELECT balance_pico FROM accounts WHERE id = $VICTIM"; }
B0=$(bal)
probe ops-2 --key-name ops-2 --service ctl --send credit --amount-pico 1000 --every-ms 200 --for-ms 12000
bal_above () { [ "$(bal)" -gt "$1" ]; }
check "a listed ctl key's credits are applied" wait_for 10 bal_above "$B0"
check "p2c2r-ctl keys revoke ops-2" "$BIN/p2c2r-ctl" keys revoke ops-2
check "the broker cuts the live node off" wait_for 5 grep -q 'node cut off .*key=ops-2' "$T_DIR/broker.log"
refusals () { grep -c 'refused message from=.* key=ops-2' "$T_DIR/broker.log"; }
refusals_at_least () { [ "$(refusals)" -ge "$1" ]; }
check "it keeps sending, and the broker refuses it by name" wait_for 5 refusals_at_least 1
# A credit forwarded before the cut may still be on its way: a later ctl
# write, run by the ledger after it, marks when all of them have landed
"${CTL[@]}" account create peer barrier >/dev/null 2>&1
B1=$(bal)
R1=$(refusals)
wait_for 10 refusals_at_least $((R1 + 5))
check "no credit of the revoked key lands after the cut (5 more refused)" [ "$(bal)" = "$B1" ]
check "p2c2r-ctl keys list shows it revoked" bash -c "'$BIN/p2c2r-ctl' keys list | grep -q '^ops-2 .*revoked'"
check "the other nodes were not restarted: the gateway still serves" \
  "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id after --task encryption \
      --params '{"data":"x","iterations":1}' --count 1 --quiet --timeout-s 5
check "ctl's own key still writes" "${CTL[@]}" account create peer after-revoke
check "p2c2r-ctl audit is clean" "${CTL[@]}" audit

# The operator key (docs/trust.md): ctl's pair, its owner's alone. Readable
# by the group, it is not used: nothing is sent, nothing written.
chmod 640 "$P2C2R_KEYS/ctl.key_secret"
"${CTL[@]}" account create peer through-an-open-key >"$T_DIR/open-key.out" 2>&1
RC=$?
chmod 600 "$P2C2R_KEYS/ctl.key_secret"
check "a write with an operator key others can read is refused (exit 2)" [ "$RC" = 2 ]
check "with a message that says why and what to do" \
  grep -q "ctl.key_secret is readable by others (mode 0640); refusing to use it: .*chmod 600" "$T_DIR/open-key.out"
check "and nothing was written" [ "$(sql "SELECT count(*) FROM accounts WHERE name = 'through-an-open-key'")" = 0 ]

# The admin log: who did what, with what, before and after
"${CTL[@]}" --json log --limit 1000 >"$T_DIR/log.json"
logq () { python3 - "$T_DIR/log.json" "$1" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {"rows": rows, "json": json}))
PY
}
check "the log names ctl's key for the account it made" [ "$(logq '[r["who"] for r in rows
   if r["command"] == "account-create" and json.loads(r["args"])["name"] == "attacker-peer"]')" = "['ctl']" ]
check "and ops-2's key for its credits, with the balance before and after" [ "$(logq 'len([r for r in rows
   if r["who"] == "ops-2" and r["command"] == "credit"
   and json.loads(r["after"])["balance_pico"] - json.loads(r["before"])["balance_pico"] == 1000]) > 0')" = True ]
check "nothing gw-evil sent is in the log" [ "$(logq 'len([r for r in rows if r["who"] == "gw-evil"])')" = 0 ]
check "no API key is in the log" [ "$(sql "SELECT count(*) FROM admin_log WHERE result ? 'api_key' OR args ? 'api_key'")" = 0 ]
head_printed () { "${CTL[@]}" log | grep -Eq '^head: seq=[0-9]+ hash=[0-9a-f]{64}$'; }
check "p2c2r-ctl log prints the head of the chain" head_printed
# Append-only in the database: refused even to the owner, by the trigger
# refused CONNINFO STATEMENT TEXT: the statement fails with a message holding TEXT
refused () { local out; out=$(psql "$1" -qAt -c "$2" 2>&1); [[ "$out" == *"$3"* ]]; }
check "as the ledger's role, editing a log row is refused" \
  refused "$T_LEDGER_DB" "UPDATE admin_log SET who = 'x'" "permission denied"
check "and deleting one" refused "$T_LEDGER_DB" "DELETE FROM admin_log" "permission denied"
check "as the reader (p2c2r-ctl psql), writing anything is refused" \
  refused "$T_READER_DB" "INSERT INTO admin_log (who, command, args) VALUES ('x', 'y', '{}')" "permission denied"
check "even the owner's edit is refused while the trigger is on" \
  refused "$T_DB" "UPDATE admin_log SET who = 'x'" append-only
check "and the owner's deletion" refused "$T_DB" "DELETE FROM admin_log" append-only
# The owner can switch the trigger off: the audit's chain check sees the edit
SEQ=$(sql "SELECT min(seq) FROM admin_log WHERE who = 'ops-2'")
sql "ALTER TABLE admin_log DISABLE TRIGGER admin_log_append_only;
     UPDATE admin_log SET who = 'ctl' WHERE seq = $SEQ;
     ALTER TABLE admin_log ENABLE TRIGGER admin_log_append_only" >/dev/null
"${CTL[@]}" audit >"$T_DIR/audit-edit.out" 2>&1
check "an owner's edit of a log row: the audit fails (exit 1)" [ $? = 1 ]
check "naming the row" grep -q "admin log row $SEQ (credit by ctl): its hash does not match" "$T_DIR/audit-edit.out"
sql "ALTER TABLE admin_log DISABLE TRIGGER admin_log_append_only;
     UPDATE admin_log SET who = 'ops-2' WHERE seq = $SEQ;
     ALTER TABLE admin_log ENABLE TRIGGER admin_log_append_only" >/dev/null
check "put back, the audit is clean again" "${CTL[@]}" audit
ROW=$(sql "SELECT row_to_json (l) FROM admin_log l WHERE seq = $SEQ")
sql "ALTER TABLE admin_log DISABLE TRIGGER admin_log_append_only;
     DELETE FROM admin_log WHERE seq = $SEQ;
     ALTER TABLE admin_log ENABLE TRIGGER admin_log_append_only" >/dev/null
"${CTL[@]}" audit >"$T_DIR/audit-delete.out" 2>&1
check "an owner's deletion of a log row: the audit fails (exit 1)" [ $? = 1 ]
check "it sees the gap and the credit without its row" bash -c \
  "grep -q 'a row before it is missing' '$T_DIR/audit-delete.out' && grep -q 'FAIL admin_journal' '$T_DIR/audit-delete.out'"
sql "ALTER TABLE admin_log DISABLE TRIGGER admin_log_seal;
     INSERT INTO admin_log SELECT * FROM json_populate_record (NULL::admin_log, \$j\$$ROW\$j\$);
     ALTER TABLE admin_log ENABLE TRIGGER admin_log_seal" >/dev/null
check "p2c2r-ctl audit is clean at the end" "${CTL[@]}" audit
t_report
