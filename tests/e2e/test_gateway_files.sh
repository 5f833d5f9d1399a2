#!/usr/bin/env bash
# Static files over the gateway's HTTP, checked with curl as a browser or
# `curl | sh` would fetch them: GET / is the web root's index.html; each
# kind of file comes back byte for byte with its Content-Type; a missing
# file is 404; attempts to leave the root (../, %2e%2e, a symlink out) get
# nothing from outside it; a file over the size bound is refused. The
# default root is web/ of the source tree, and after `make install` the
# installed copy under PREFIX/share/p2c2r/web. Needs no PostgreSQL: a
# broker and gateways are enough.
. "$(dirname "$0")/lib.sh"

BPORT=$(free_port)
BROKER=tcp://127.0.0.1:$BPORT
spawn broker "$BIN/p2c2r-broker" --bind "$BROKER"

# get PORT PATH: prints "STATUS TYPE" and keeps the body in $T_DIR/body
get () {
  curl -s --path-as-is -o "$T_DIR/body" -w '%{http_code} %{content_type}' \
      "http://127.0.0.1:$1$2"
}

# A web root with one file of each kind, a subdirectory, a symlink out of
# the root, and a secret beside it
W=$T_DIR/web
mkdir -p "$W/sub" "$W/sdk"
printf '<!doctype html><title>t</title>\n' >"$W/index.html"
printf 'export const x = 1;\n' >"$W/sdk/p2c2r.js"
printf 'body { color: red }\n' >"$W/style.css"
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' >"$W/logo.png"
printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' >"$W/icon.svg"
printf '{"a":1}\n' >"$W/data.json"
printf '#!/bin/sh\necho setup\n' >"$W/setup.sh"
head -c 1000 /dev/urandom >"$W/blob.bin"
printf '<p>sub</p>\n' >"$W/sub/index.html"
printf 'top secret\n' >"$T_DIR/secret"
ln -s "$T_DIR/secret" "$W/out"
ln -s /etc/passwd "$W/passwd"
truncate -s 17M "$W/huge.bin"

GP=$(free_port)
GA=$(free_port)
spawn gw "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GP" --web-root "$W" \
    --admin-listen "127.0.0.1:$GA"
check "the gateway starts with --web-root" wait_for 20 healthz "$GP"

# serves_admin PATH FILE: the admin listener answers 200 with the file's bytes
serves_admin () {
  [ "$(get "$GA" "$1")" = "200 text/html; charset=utf-8" ] && cmp -s "$T_DIR/body" "$2"
}

# serves PATH TYPE FILE: 200, that Content-Type, the file's bytes
serves () {
  local got; got=$(get "$GP" "$1")
  [ "$got" = "200 $2" ] && cmp -s "$T_DIR/body" "$3"
}
check "GET / is index.html (text/html)" serves / "text/html; charset=utf-8" "$W/index.html"
check "GET /index.html" serves /index.html "text/html; charset=utf-8" "$W/index.html"
check "a .js file is text/javascript" serves /sdk/p2c2r.js "text/javascript; charset=utf-8" "$W/sdk/p2c2r.js"
check "a .css file is text/css" serves /style.css "text/css; charset=utf-8" "$W/style.css"
check "a .png file is image/png, byte for byte" serves /logo.png "image/png" "$W/logo.png"
check "a .svg file is image/svg+xml" serves /icon.svg "image/svg+xml" "$W/icon.svg"
check "a .json file is application/json" serves /data.json "application/json" "$W/data.json"
check "a .sh file is a shell script" serves /setup.sh "text/x-shellscript; charset=utf-8" "$W/setup.sh"
check "anything else is application/octet-stream" serves /blob.bin "application/octet-stream" "$W/blob.bin"
check "a directory serves its index.html" serves /sub/ "text/html; charset=utf-8" "$W/sub/index.html"
check "a query string does not change the file" serves "/style.css?v=2" "text/css; charset=utf-8" "$W/style.css"
check "a missing file is 404" test "$(get "$GP" /nothing.html | cut -d' ' -f1)" = 404
check "a missing directory is 404" test "$(get "$GP" /nothing/ | cut -d' ' -f1)" = 404

# None of these may return anything from outside the root
outside () {
  local got; got=$(get "$GP" "$1")
  case "$got" in 200*) return 1;; esac
  ! grep -q -e 'root:' -e 'top secret' "$T_DIR/body"
}
for path in /../../etc/passwd /../secret /sub/../../secret /%2e%2e/%2e%2e/etc/passwd \
            /%2e%2e/secret /sub/%2e%2e/%2e%2e/secret /..%2fsecret /%2e%2e%2fsecret \
            /sub/..%2f..%2fsecret /.%2e/.%2e/etc/passwd /out /passwd '/..\secret' \
            //etc/passwd /%00/etc/passwd; do
  check "nothing from outside the root for $path" outside "$path"
done
check "a file over the size bound is refused (403)" test "$(get "$GP" /huge.bin | cut -d' ' -f1)" = 403
check "the pages still answer: /healthz" test "$(get "$GP" /healthz)" = "200 text/plain"
check "the pages still answer: /metrics on the admin listener" grep -q p2c2r_gateway_connections \
    <(admin_get "$GA" /metrics)
check "/metrics is not on the public listener (404)" test "$(get "$GP" /metrics | cut -d' ' -f1)" = 404
printf '<p>operator</p>\n' >"$W/operator.html"
check "the operator's page is not on the public listener (404)" \
    test "$(get "$GP" /operator.html | cut -d' ' -f1)" = 404
check "GET / on the admin listener is the operator's page" serves_admin / "$W/operator.html"
if [ -f /usr/share/javascript/chart.js/chart.min.js ]; then
  check "Chart.js (libjs-chart.js) is served as /vendor/chart.js/chart.min.js" \
      bash -c "[ \"\$(curl -s -o '$T_DIR/chart' -w '%{http_code} %{content_type}' http://127.0.0.1:$GP/vendor/chart.js/chart.min.js)\" = '200 text/javascript; charset=utf-8' ] && cmp -s '$T_DIR/chart' /usr/share/javascript/chart.js/chart.min.js"
else
  check "libjs-chart.js is installed (deploy/deps.sh)" false
fi
check "the gateway kept running" kill -0 "$PID_gw"

# The default root: web/ of the source tree when run from it
GD=$(free_port)
spawn gwd "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GD"
wait_for 20 healthz "$GD"
check "by default GET / is the source tree's web/index.html" \
    bash -c "[ \"\$(curl -s -o '$T_DIR/dbody' -w '%{http_code}' http://127.0.0.1:$GD/)\" = 200 ] \
             && cmp -s '$T_DIR/dbody' '$ROOT/web/index.html'"

# ... and after make install, the installed copy
P=$T_DIR/prefix
# (a make of its own: not the jobserver of a `make test` that runs this)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$ROOT" install PREFIX="$P" \
    >"$T_DIR/install.log" 2>&1
check "make install puts web/ under PREFIX/share/p2c2r/web" \
    cmp -s "$P/share/p2c2r/web/index.html" "$ROOT/web/index.html"
printf '<p>installed</p>\n' >"$P/share/p2c2r/web/index.html"
GI=$(free_port)
spawn gwi "$P/bin/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GI"
wait_for 20 healthz "$GI"
check "an installed gateway serves PREFIX/share/p2c2r/web" \
    bash -c "curl -s http://127.0.0.1:$GI/ | grep -q installed"
t_report
