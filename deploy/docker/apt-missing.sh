#!/bin/sh
# Installs the Debian packages listed in a file (one a line, # comments)
# that the image lacks, then empties apt's caches. With nothing missing it
# touches no network, so a base image made with everything already in it
# (tests/deploy/base_images.sh) builds offline.
set -eu
missing=""
for p in $(sed 's/#.*//' "$1"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086  # one word per package
    apt-get install -y -q --no-install-recommends $missing
fi
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb "$1"
