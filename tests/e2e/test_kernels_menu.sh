#!/usr/bin/env bash
# The gamer as a person uses it on a terminal (driven through a
# pseudo-terminal): without --task it shows the original demo's menu of
# nine tasks, "all" and quit, runs each choice and shows its result,
# latency and cost, saving images with --out; with --count it draws a
# progress bar on stderr, but never into a pipe or into --json output.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_CACHE_HOME=$T_DIR/cache

start_stack --starting-credit-pico 1000000000000 || { t_report; exit 1; }
peer menu-peer --slots 2 --no-bench
wait_for 30 grep -q 'peer: registered' "$T_DIR/menu-peer.log"

M=$T_DIR/menu.txt
python3 "$HERE/kernels_menu.py" "$M" 1 10 7x q -- "$BIN/p2c2r-agent" gamer --server "$SERVER" \
    --gamer-id menu-player --out "$T_DIR/menu-out"
tr -d '\r' <"$M" >"$M.clean"
for t in ai_npc_dialogue ai_pathfinding ai_procedural raytracing_reflections rt_shadows \
         rt_global_illumination physics_rigid_body physics_fluid physics_destruction; do
  check "the menu offers $t" grep -Eq "^ +[0-9]+\) .* $t\$" "$M.clean"
done
check "the menu offers all of them and quit" grep -Eq '^ +10\) All' "$M.clean"
check "and quit" grep -Eq '^ +q\) Quit' "$M.clean"
check "choice 1 shows the dialogue result, latency and cost" \
    grep -Eq '^  ai_npc_dialogue: ok in [0-9.]+ ms, cost \$[0-9.]+' "$M.clean"
check "its result is shown" grep -Eq '^    result: \{.*"dialogue":' "$M.clean"
check "\"all\" runs the nine tasks, each ok (1 + 9 results)" \
    test "$(grep -Ec '^  [a-z_]+: ok in [0-9.]+ ms, cost \$' "$M.clean")" = 10
check "and reports the total" grep -Eq '^  all 9 tasks in [0-9.]+ ms' "$M.clean"
check "an unknown choice is said so" grep -q "unknown choice '7x'" "$M.clean"
check "quit ends with status 0" test "$(cat "$M.rc")" = 0
check "the menu says where it saved the three ray-traced images" \
    test "$(grep -c 'PNG, [0-9]* bytes, saved to ' "$M.clean")" = 3
n=0
for f in "$T_DIR"/menu-out/*.png; do
  [ -e "$f" ] && python3 "$HERE/kernels_check.py" pnginfo "$f" >/dev/null && n=$((n + 1))
done
check "three decodable PNGs in --out" test $n = 3
check "named <index>-<type>.png" test -e "$T_DIR/menu-out/4-rt_reflections.png" \
    -a -e "$T_DIR/menu-out/5-rt_shadows.png" -a -e "$T_DIR/menu-out/6-rt_global_illumination.png"

# Progress bar: on a terminal only
P=$T_DIR/progress.txt
python3 "$HERE/kernels_menu.py" "$P" -- "$BIN/p2c2r-agent" gamer --server "$SERVER" \
    --task encryption --params '{"data":"{i}","iterations":100}' --count 30 --concurrency 4
check "a --count run on a terminal ends with a full progress bar" \
    grep -aq '\[##############################\] 30/30 ok=30 errors=0' "$P"
check "and exits 0" test "$(cat "$P.rc")" = 0
"$BIN/p2c2r-agent" gamer --server "$SERVER" --task encryption --params '{"data":"{i}","iterations":100}' \
    --count 30 --concurrency 4 >"$T_DIR/pipe.out" 2>"$T_DIR/pipe.err"
check "no bar when stderr is not a terminal" bash -c "! grep -q '30/30' '$T_DIR/pipe.err' && grep -q 'ok=30' '$T_DIR/pipe.out'"
J=$T_DIR/json.txt
python3 "$HERE/kernels_menu.py" "$J" -- "$BIN/p2c2r-agent" gamer --server "$SERVER" \
    --task encryption --params '{"data":"{i}","iterations":100}' --count 30 --concurrency 4 --json
check "no bar with --json, even on a terminal" bash -c "! grep -q '30/30' '$J' && test \$(grep -c '\"ok\":true' '$J') = 30"
t_report
