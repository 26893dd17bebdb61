#!/usr/bin/env bash
# The machine set-up that `npm run demo`, `npm test` and .ci/run share: the system commands the
# data-path, image and real-node parts need, installed from Debian's packages when (and only when)
# nothing on the machine provides the command. It never removes or replaces a package, and refuses
# where an install would conflict with what is there. Without root it says, in one line, what is
# missing and how to get it, and fails: a suite that skips itself for want of set-up is no pass.
#
# Usage: setup-system.sh [--check]   (--check: report only, install nothing)
set -euo pipefail

check_only=false
[[ ${1:-} == --check ]] && check_only=true

# command → Debian package that provides it.
declare -A provider=(
  [ip]=iproute2
  [nft]=nftables
  [runc]=runc
)
order=(ip nft runc)

missing_cmds=()
missing_pkgs=()
for c in "${order[@]}"; do
  if ! command -v "$c" >/dev/null 2>&1; then
    missing_cmds+=("$c")
    missing_pkgs+=("${provider[$c]}")
  fi
done

say() { echo "setup-system: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  if [[ ${#missing_cmds[@]} -gt 0 ]]; then
    say "needs root and ${missing_cmds[*]} (Debian: apt-get install ${missing_pkgs[*]}); network namespaces, kube-proxy and runc need root: run it as root (e.g. sudo -E npm …)"
  else
    say "needs root: the backends live in network namespaces and kube-proxy programs nftables; run it as root (e.g. sudo -E npm …)"
  fi
  exit 1
fi

[[ ${#missing_pkgs[@]} -eq 0 ]] && exit 0

if $check_only; then
  say "missing ${missing_cmds[*]} (Debian: apt-get install ${missing_pkgs[*]})"
  exit 1
fi

command -v apt-get >/dev/null 2>&1 || {
  say "missing ${missing_cmds[*]}, and there is no apt-get to install ${missing_pkgs[*]}: install them with this system's package manager"
  exit 1
}

# Docker CE's containerd.io ships its own runc and conflicts with Debian's containerd and runc:
# installing those would remove it, so refuse and let the owner of the machine decide.
if dpkg-query -W -f='${Status}' containerd.io 2>/dev/null | grep -q 'install ok installed'; then
  for p in "${missing_pkgs[@]}"; do
    if [[ $p == runc || $p == containerd ]]; then
      say "refusing to install $p: Docker CE's containerd.io is installed and conflicts with Debian's $p; put a runc on PATH (containerd.io's own, e.g. /usr/bin/runc) and run again"
      exit 1
    fi
  done
fi

say "installing ${missing_pkgs[*]} (for ${missing_cmds[*]})"
export DEBIAN_FRONTEND=noninteractive
# --no-remove: apt must not remove anything to satisfy these installs.
if ! apt-get install -y -q --no-install-recommends --no-remove "${missing_pkgs[@]}" >/dev/null; then
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends --no-remove "${missing_pkgs[@]}" >/dev/null
fi
for c in "${missing_cmds[@]}"; do
  command -v "$c" >/dev/null 2>&1 || { say "installed ${provider[$c]} but $c is still not on PATH"; exit 1; }
done
