#!/usr/bin/env bash
# Every p2c2r-ctl command against the real broker and ledger on a fresh
# database: accounts and keys, top-ups from the external account, balances
# and statements, effective-dated rates (history never rewritten), payouts,
# the monitoring queries through `p2c2r-ctl psql`, and an audit that passes
# on clean books and names each kind of corruption written on purpose.
# Tasks are settled by the load generator standing in for the scheduler.
. "$(dirname "$0")/lib.sh"

t_db
LOAD=$ROOT/build/bench/ledger_load
[ -x "$LOAD" ] || make -C "$ROOT" --no-print-directory build/bench/ledger_load >/dev/null
bport=$(free_port)
# the ledger as its role, the owner's conninfo for migrations; ctl reads as the reader
export P2C2R_BROKER=tcp://127.0.0.1:$bport P2C2R_DB=$T_READER_DB
LEDGER_ENV=(env P2C2R_DB="$T_LEDGER_DB" P2C2R_OWNER_DB="$T_DB")
START_PICO=2000000000000                # every new gamer starts with $2
spawn broker "$BIN/p2c2r-broker" --bind "$P2C2R_BROKER"
spawn ledger "${LEDGER_ENV[@]}" "$BIN/p2c2r-ledger" --sql-dir "$ROOT/ledger/sql" \
    --starting-credit-pico $START_PICO --payout-threshold-pico 10000000000   # $0.01
CTL=$BIN/p2c2r-ctl
# Ready when its database connection is up, migrations applied: the rates
# table alone shows up while later migrations are still running, and a
# command sent before the ledger listens is lost (ctl then says so and fails)
wait_for 20 grep -q 'store: connected' "$T_DIR/ledger.log" \
    || { echo "FAIL the ledger never connected to its database"; T_FAIL=1; t_report; exit 1; }
ctl () { "$CTL" "$@" 2>>"$T_DIR/ctl.err"; }

# --- accounts and keys
out=$(ctl --json account create gamer alice); rc=$?
check "account create gamer alice exits 0" test $rc = 0
key=$(jq -r .api_key <<<"$out")
alice=$(jq -r .id <<<"$out")
check "the API key is 64 hex digits (256 bits)" grep -Eq '^[0-9a-f]{64}$' <<<"$key"
hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
check "only the key's SHA-256 is stored" test "$(sql "SELECT key_hash FROM accounts WHERE id = $alice")" = "$hash"
check "the key itself is nowhere in the database" test "$(sql "SELECT COUNT(*) FROM accounts WHERE key_hash = '$key' OR name = '$key'")" = 0
ctl account create gamer alice >/dev/null
check "creating alice twice is refused (exit 1)" test $? = 1
check "a human create shows the key once" bash -c "'$CTL' account create peer bob 2>/dev/null | grep -Eq '^api_key +[0-9a-f]{64}$'"
ctl account create admin carol >/dev/null
check "account create admin" test $? = 0
ctl account create treasury x >/dev/null
check "account create of a system kind is refused" test $? != 0
check "account list --kind gamer shows only alice" test "$(ctl --json account list --kind gamer | jq -r '[.[].name] | join(",")')" = alice
check "account list (table) lists the four system accounts and ours" test "$(ctl account list | grep -cE ' (platform_fee|treasury|external|payouts_pending|gamer|peer|admin) ')" = 7
check "a new gamer holds the starting credit" test "$(ctl --json balance alice | jq -r .balance_pico)" = $START_PICO
check "the starting credit is a credit transaction from the external account" \
    test "$(sql "SELECT COUNT(*) FROM journal_tx j JOIN journal_entries e ON e.tx_id = j.id JOIN accounts a ON a.id = e.account_id WHERE j.kind = 'credit' AND a.kind = 'external' AND e.amount_pico = -$START_PICO")" = 1
check "account show alice" test "$(ctl --json account show alice | jq -r '.kind + " " + (.has_key|tostring)')" = "gamer true"

# --- credit
out=$(ctl --json credit alice 5.25 --memo "card 1234")
check "credit alice 5.25 gives balance 7.25" test "$(jq -r .balance_pico <<<"$out")" = 7250000000000
check "the credit carries its memo" test "$(sql "SELECT memo FROM journal_tx WHERE id = $(jq -r .tx_id <<<"$out")")" = "card 1234"
check "the external account is minus what came in" test "$(ctl --json balance external:funding | jq -r .balance_pico)" = -7250000000000
ctl credit alice -3 >/dev/null
check "a negative credit is refused" test $? = 2
ctl credit alice 0.0000000000001 >/dev/null
check "more than 12 decimals is refused" test $? = 2
ctl credit bob 1 >/dev/null
check "a peer cannot be credited" test $? != 0
ctl credit nobody 1 >/dev/null
check "an unknown account is an error" test $? = 2

# --- settle tasks at the seeded rates (load checks every ack's amounts)
"$LOAD" --broker "$P2C2R_BROKER" --tasks 2000 --gamers 2 --peers 3 --prefix e >"$T_DIR/load-e.out" 2>>"$T_DIR/load.log"
check "2000 tasks settled at the seeded rates" test $? = 0
spent_e=$(sql "SELECT SUM(cost_usd) FROM tasks")
check "psql: SELECT COUNT(*) FROM tasks" test "$(ctl psql -X -At -c 'SELECT COUNT(*) FROM tasks')" = 2000
check "psql: SELECT SUM(cost_usd) FROM tasks equals revenue's gamers paid" \
    test "$(ctl psql -X -At -c 'SELECT SUM(cost_usd) FROM tasks')" = "$(ctl --json revenue | jq -r .gamers_paid_usd)"
top_sql=$(ctl psql -X -At -F ' ' -c 'SELECT peer_id, total_earned_usd FROM peers ORDER BY total_earned_usd DESC LIMIT 10' | head -1)
top_ctl=$(ctl --json top-peers 3 | jq -r '.[0].peer_id + " " + .[0].total_earned_usd')
check "psql: peers by earnings agrees with top-peers ($top_ctl)" test "$top_sql" = "$top_ctl"
check "top-peers 3 gives 3 rows" test "$(ctl --json top-peers 3 | jq length)" = 3
check "the peers' earnings are the tasks' sum" \
    test "$(ctl psql -X -At -c 'SELECT SUM(total_earned_usd) FROM peers')" = "$(sql 'SELECT SUM(peer_earning_pico) * 0.000000000001 FROM tasks')"
check "revenue counts 2000 tasks and the top-ups" test "$(ctl --json revenue | jq -r '(.tasks|tostring) + " " + .top_ups_usd')" = "2000 11.250000000000"
check "revenue --since tomorrow is empty" test "$(ctl --json revenue --since tomorrow | jq -r .tasks)" = 0
g0=e-gamer-0
stmt_last=$(ctl --json statement $g0 | jq -r '.[-1].balance_usd')
check "statement's running balance ends at the balance" test "$stmt_last" = "$(ctl --json balance $g0 | jq -r .balance_usd)"
check "statement has the credit and the 1000 settlements" test "$(ctl --json statement $g0 | jq length)" = 1001
check "statement --since tomorrow is empty" test "$(ctl --json statement $g0 --since tomorrow | jq length)" = 0
check "statement as a table" bash -c "'$CTL' statement $g0 2>/dev/null | grep -q '(1001 rows)'"

# --- rates: a change applies from now on and never rewrites history
check "rates list has the seeded row in force" test "$(ctl --json rates list | jq -r '.[0].in_force|tostring')" = true
ctl rates set 0.02 0.3 500 --from "2001-01-01" >/dev/null
check "rates starting in the past are refused" test $? = 1
ctl rates set 0.02 0.3 500 >/dev/null
check "rates set 0.02 0.3 500" test $? = 0
check "rates list: two rows, the new one in force" test "$(ctl --json rates list | jq -r '[.[].in_force|tostring] | join(",")')" = false,true
ctl rates set 0.05 0.5 100 --from "2999-01-01" >/dev/null
check "rates for the future are accepted and not in force yet" test "$(ctl --json rates list | jq -r '.[-1].in_force|tostring')" = false
"$LOAD" --broker "$P2C2R_BROKER" --tasks 500 --gamers 2 --peers 3 --prefix f \
    --gamer-rate-pico-per-hour 20000000000 --peer-rate-pico-per-hour 300000000000 --fee-bp 500 \
    >"$T_DIR/load-f.out" 2>>"$T_DIR/load.log"
check "new tasks are settled at the new rates" test $? = 0
check "old tasks keep their amounts" test "$(sql "SELECT SUM(cost_usd) FROM tasks WHERE task_id LIKE 'e-%'")" = "$spent_e"
"$LOAD" --broker "$P2C2R_BROKER" --tasks 2000 --gamers 2 --peers 3 --prefix e >"$T_DIR/load-e2.out" 2>>"$T_DIR/load.log"
check "replayed tasks answer the stored (old-rate) amounts" test $? = 0
check "replays wrote nothing" test "$(sql 'SELECT COUNT(*) FROM journal_tx WHERE kind = '"'settle'")" = 2500

# --- payouts
peer0=e-peer-0
owed=$(ctl --json balance $peer0 | jq -r .balance_pico)
out=$(ctl --json payout request $peer0); rc=$?
check "payout request moves the whole payable balance" test "$rc $(jq -r .amount_pico <<<"$out")" = "0 $owed"
pid=$(jq -r .payout_id <<<"$out")
check "the peer's balance is now zero" test "$(ctl --json balance $peer0 | jq -r .balance_pico)" = 0
check "payouts pending holds it" test "$(ctl --json balance payouts_pending:payouts | jq -r .balance_pico)" = "$owed"
ctl payout request $peer0 >/dev/null
check "a second request below the threshold is refused" test $? = 1
ctl payout request bob >/dev/null
check "bob (no earnings) cannot request a payout" test $? = 1
check "payout list --status pending" test "$(ctl --json payout list --status pending | jq -r '.[0].peer')" = $peer0
ctl payout export >/dev/null
check "payout export without --csv is an error" test $? = 2
csv=$(ctl payout export --csv | tr -d '\r')
check "payout export --csv: header and one row" test "$(wc -l <<<"$csv")" = 2
check "the CSV row names the payout, peer and amount" \
    test "$(sed -n 2p <<<"$csv" | cut -d, -f1,3,4)" = "$pid,$peer0,$(ctl --json payout list | jq -r '.[0].amount_usd')"
ctl payout mark-paid "$pid" --reference "wire 42" >/dev/null
check "payout mark-paid" test $? = 0
ctl payout mark-paid "$pid" >/dev/null
check "marking it paid twice is refused" test $? = 1
check "payout list --status paid shows the reference" test "$(ctl --json payout list --status paid | jq -r '.[0].reference')" = "wire 42"
check "nothing is pending any more" test "$(ctl payout export --csv | wc -l)" = 1
check "payouts pending is back to zero" test "$(ctl --json balance payouts_pending:payouts | jq -r .balance_pico)" = 0

# --- disable, enable, rotate
ctl account disable alice >/dev/null
check "account disable" test "$(sql "SELECT disabled FROM accounts WHERE id = $alice")" = t
ctl account enable alice >/dev/null
check "account enable" test "$(sql "SELECT disabled FROM accounts WHERE id = $alice")" = f
newkey=$(ctl --json account rotate-key alice | jq -r .api_key)
check "rotate-key gives a new key" test -n "$newkey" -a "$newkey" != "$key"
check "only the new key's hash is stored" test "$(sql "SELECT key_hash FROM accounts WHERE id = $alice")" = "$(printf %s "$newkey" | sha256sum | cut -d' ' -f1)"
ctl account disable platform >/dev/null
check "system accounts cannot be disabled" test $? != 0

# --- totals, legacy accounts command
check "totals --json counts the tasks" test "$(ctl --json totals | jq -r .tasks_settled)" = 2500
check "totals --oneline" bash -c "'$CTL' totals --oneline 2>/dev/null | grep -q '^tasks settled 2500 '"
check "accounts (old name of account list)" test "$(ctl --json accounts | jq length)" -ge 10

# --- no ledger, no broker: a clear error, nothing written
bport2=$(free_port)
spawn broker2 "$BIN/p2c2r-broker" --bind "tcp://127.0.0.1:$bport2"
wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $bport2), 1)"
"$CTL" --broker "tcp://127.0.0.1:$bport2" credit alice 1 >/dev/null 2>"$T_DIR/noledger.err"
check "a broker without a ledger: exit 2" test $? = 2
check "... saying no ledger is connected" grep -q 'no ledger is connected' "$T_DIR/noledger.err"
# A ledger that joins while ctl waits for one: the command goes once, to it
# (ctl sends nothing before the broker names a ledger: a request sent
# earlier would be dropped, and a credit cannot be sent twice)
before=$(ctl --json balance alice | jq -r .balance_pico)
"$CTL" --broker "tcp://127.0.0.1:$bport2" credit alice 1 >/dev/null 2>"$T_DIR/lateledger.err" &
ctlpid=$!
spawn ledger2 "${LEDGER_ENV[@]}" "$BIN/p2c2r-ledger" --broker "tcp://127.0.0.1:$bport2" --sql-dir "$ROOT/ledger/sql"
wait $ctlpid
check "a ledger joining while ctl waits gets the command (exit 0)" test $? = 0
check "... and applies it once" test "$(ctl --json balance alice | jq -r .balance_pico)" = $((before + 1000000000000))
"$CTL" --broker "tcp://127.0.0.1:$(free_port)" --timeout-ms 1500 credit alice 1 >/dev/null 2>"$T_DIR/nobroker.err"
check "no broker at all: exit 2 with a timeout message" bash -c "test $? = 2 && grep -q 'no answer' '$T_DIR/nobroker.err'"

# --- audit: clean, then corruption written on purpose (triggers bypassed)
ctl audit >"$T_DIR/audit-ok.out"
check "audit passes on clean books" test $? = 0
check "audit says OK" grep -q '^audit: OK' "$T_DIR/audit-ok.out"
corrupt () { psql "$T_DB" -qAt -v ON_ERROR_STOP=1 -c "SET session_replication_role = replica; $1" >/dev/null; }
audit_has () { { ctl --json audit || true; } | jq -e --arg c "$1" 'any(.problems[]; .check == $c)' >/dev/null; }
corrupt "INSERT INTO journal_entries (tx_id, account_id, amount_pico) SELECT MIN(id), $alice, 7 FROM journal_tx"
ctl audit >"$T_DIR/audit-bad.out"
check "audit exits 1 on an unbalanced transaction" test $? = 1
ctl --json audit >"$T_DIR/audit-bad.json"
check "audit names it: unbalanced" audit_has unbalanced
check "audit names it: balance_mismatch" audit_has balance_mismatch
corrupt "DELETE FROM tasks WHERE task_id = 'e-5'"
check "a deleted task row: tx_without_task" audit_has tx_without_task
corrupt "UPDATE tasks SET peer_earning_pico = peer_earning_pico + 1, treasury_pico = treasury_pico - 1 WHERE task_id = 'e-6'"
check "a changed amount: amounts" audit_has amounts
check "a changed amount: rates (not the formula)" audit_has rates
corrupt "WITH t AS (INSERT INTO journal_tx (kind) VALUES ('adjust') RETURNING id) INSERT INTO journal_entries (tx_id, account_id, amount_pico) SELECT t.id, a.id, CASE WHEN a.kind = 'peer' THEN -1000 ELSE 1000 END FROM t, accounts a WHERE a.name IN ('bob', 'treasury')"
check "a peer below zero: negative_balance" audit_has negative_balance
corrupt "UPDATE payouts SET amount_pico = amount_pico + 1"
check "a payout that disagrees with its transaction: payouts" audit_has payouts
corrupt "INSERT INTO journal_entries (tx_id, account_id, amount_pico) VALUES (999999999, 999999999, 0)"
check "an entry of nothing: orphan_entries" audit_has orphan_entries
t_report
