#!/usr/bin/env bash
# Build a local Python base image without any image registry: debootstrap Debian bookworm (Python 3.11),
# add python3 + pip + venv, and `docker import` the root filesystem.
#
# Used by scripts/container_check.py where docker.io/python:3.11-slim cannot be pulled; the product Dockerfile
# takes it as `--build-arg BASE_IMAGE=<tag>`. Skips the work when the tag already exists (pass --force to rebuild).
#
# Usage: scripts/make_base_image.sh [--force] [TAG]        (default TAG: sealion-base:bookworm-py311)
# Needs: root, debootstrap, a running Docker engine (DOCKER_HOST honoured), a reachable Debian mirror.
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), DOCKER (default: docker),
#        EXTRA_CA_DIR (default /usr/local/share/ca-certificates): this host's extra CA certificates (*.crt), trusted
#        in the image too, so pip/apt inside `docker build` work behind the same TLS-intercepting proxy as the host.
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then
    force=1
    shift
fi
tag="${1:-sealion-base:bookworm-py311}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
docker_bin="${DOCKER:-docker}"

if [[ $force -eq 0 ]] && "$docker_bin" image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag exists; reusing it (pass --force to rebuild)"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: debootstrap needs root" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "error: debootstrap missing (apt-get install -y debootstrap)" >&2; exit 1; }

rootfs="$(mktemp -d /var/tmp/sealion-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
start=$(date +%s)
echo "debootstrap bookworm -> $rootfs (mirror $mirror)"
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# Same suites as the official Debian images (security updates included); apt lists and .debs are not kept.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
extra_ca_dir="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
if compgen -G "$extra_ca_dir/*.crt" >/dev/null; then
    cp "$extra_ca_dir"/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    echo "trusting this host's extra CA certificates: $(cd "$extra_ca_dir" && echo *.crt)"
fi
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log

chmod 755 "$rootfs" # mktemp made it 0700; as the image's / it must be traversable by non-root users
tar --numeric-owner -C "$rootfs" -c . | "$docker_bin" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap bookworm + python3, pip, venv" \
    - "$tag" >/dev/null
echo "built base image $tag in $(($(date +%s) - start)) s ($("$docker_bin" run --rm "$tag" python3 --version))"
