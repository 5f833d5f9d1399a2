#!/usr/bin/env bash
# Makes sure the Debian 12 base images that deploy/docker/Dockerfile* build
# from exist, and prints which to use as shell assignments:
#   P2C2R_BUILD_BASE=...  P2C2R_RUNTIME_BASE=...
# 1. debian:bookworm-slim: kept when present; else pulled (a user's server,
#    a CI with a registry); else, where no registry answers, made with
#    debootstrap from Debian's archive and `docker import`ed under that name.
# 2. When a container can reach Debian's archive, the Dockerfiles' apt-get
#    installs what they need and both bases are debian:bookworm-slim.
#    When it cannot (Docker's networks may have no route out), the packages
#    are debootstrapped on the host into two bases instead: p2c2r-base:build
#    (the -dev packages) and p2c2r-base:runtime (the runtime libraries,
#    PostgreSQL, HAProxy); the Dockerfiles then find nothing missing.
# `base_images.sh systemd` instead prints P2C2R_SYSTEMD_IMAGE=...: a clean
# minimal Debian 12 with systemd as init, for deploy/install-agent.sh.
# Root filesystems are cached as tarballs under P2C2R_DEBOOTSTRAP_CACHE
# (default /var/cache/p2c2r-debootstrap, kept between runs on one machine,
# never required); the images are kept too: they are the cached bases the
# deploy suite does not remove. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${P2C2R_DEBOOTSTRAP_CACHE:-/var/cache/p2c2r-debootstrap}
SUITE=bookworm
MIRROR=${P2C2R_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SLIM=debian:bookworm-slim

say() { echo "base_images: $*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The packages of deploy/docker/packages-NAME.txt, comma-separated
packages() { sed 's/#.*//' "deploy/docker/packages-$1.txt" | tr -s ' \n' '\n' | grep . | paste -sd, -; }

# debootstrap a minimal Debian with the given extra packages (comma list,
# may be empty) and import it as the image NAME
make_image() {
  local name=$1 include=$2 key tarball root
  key=$(printf '%s %s %s' "$SUITE" "$MIRROR" "$include" | sha256sum | cut -c1-16)
  tarball=$CACHE/rootfs-$SUITE-$key.tar
  if [ ! -s "$tarball" ]; then
    say "debootstrap $SUITE for $name${include:+ with $include}"
    root=$(mktemp -d /tmp/p2c2r-debootstrap.XXXXXX)
    # shellcheck disable=SC2064  # the path is fixed now
    trap "rm -rf '$root'" EXIT
    debootstrap --variant=minbase ${include:+--include="$include"} \
      --cache-dir="$CACHE/debs" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
      || { tail -20 "$root.log" >&2; rm -f "$root.log"; return 1; }
    rm -f "$root.log"
    # apt's sources as in Debian's own image: updates and security too
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # the host's name and resolver do not belong in an image
    : >"$root/etc/hostname"
    : >"$root/etc/resolv.conf"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap - EXIT
  fi
  say "importing $name"
  docker import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$name" >/dev/null
}

mkdir -p "$CACHE/debs"
# One run at a time per machine shares the cache
exec 9>"$CACHE/lock"
flock 9

if [ "${1:-}" = systemd ]; then
  have_image p2c2r-base:systemd || make_image p2c2r-base:systemd systemd,systemd-sysv,ca-certificates
  echo "P2C2R_SYSTEMD_IMAGE=p2c2r-base:systemd"
  exit 0
fi

if ! have_image "$SLIM"; then
  if timeout 120 docker pull -q "$SLIM" >/dev/null 2>&1; then
    say "pulled $SLIM"
  else
    say "$SLIM cannot be pulled: making it with debootstrap"
    make_image "$SLIM" ""
  fi
fi

# Can a build container reach Debian's archive?
if timeout 60 docker run --rm "$SLIM" \
     bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' >/dev/null 2>&1; then
  echo "P2C2R_BUILD_BASE=$SLIM"
  echo "P2C2R_RUNTIME_BASE=$SLIM"
  exit 0
fi
say "containers cannot reach Debian's archive: bases with the packages in them"
have_image p2c2r-base:build || make_image p2c2r-base:build "$(packages build)"
have_image p2c2r-base:runtime \
  || make_image p2c2r-base:runtime "$(packages runtime),$(packages postgres),$(packages haproxy)"
echo "P2C2R_BUILD_BASE=p2c2r-base:build"
echo "P2C2R_RUNTIME_BASE=p2c2r-base:runtime"
