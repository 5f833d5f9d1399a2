#!/usr/bin/env bash
# `make stop`: stops a private PostgreSQL that a killed `make run` left behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
  stop) deploy/local/pg.sh stop "$PWD/var/pg" ;;
  *) echo "usage: $0 stop"; exit 2 ;;
esac
