#!/usr/bin/env bash
# The short form of `make chaos` (tests/chaos/chaos.sh): one round, a small
# load, every process killed once and PostgreSQL restarted; 0 lost in every
# row, the audit clean. Restarts the test cluster (tests/run.sh runs the e2e
# tests one at a time).
export ROUNDS=1 CHAOS_TASKS=${CHAOS_TASKS:-40} CHAOS_GAMERS=${CHAOS_GAMERS:-2}
exec "$(dirname "$0")/../chaos/chaos.sh"
