#!/usr/bin/env bash
# The machine set-up that `npm run demo`, `npm test` and .ci/run share: the system commands the
# data-path, image and real-node parts need, installed from Debian's packages when (and only when)
# nothing on the machine provides them. It never removes or replaces a package, and refuses where
# an install would conflict with what is there. Without root it says, in one line, what is
# missing and how to get it, and fails: a suite that skips itself for want of set-up is no pass.
#
#   setup-system.sh [--check]     (--check: report only, install nothing)
#
#   iproute2                     ip (network namespaces, veth pairs, routes)
#   nftables                     nft (kube-proxy's nftables mode)
#   runc                         runc (the image suite; the real node's runtime)      (Debian 12: 1.1.5)
#   containerd                   containerd, ctr (the real node, e2e/harness/node.ts) (1.6.20)
#   containernetworking-plugins  /usr/lib/cni/{bridge,host-local,loopback}            (1.1.1)
#
# Why Debian's containerd rather than building containerd v2 from the module proxy: the packages
# exist for the distribution the harness targets, come with runc and the CNI plugins at versions
# tested together, and cost seconds instead of a cold multi-minute build; kubelet 1.36 still runs
# against containerd 1.6's CRI (it logs that containerd lacks RuntimeConfig and falls back to its
# own cgroupDriver setting). Where an init system runs, the package starts a system containerd on
# /run/containerd; the harness leaves it alone and runs its own, with its own socket and
# directories.
set -euo pipefail

check_only=false
[[ ${1:-} == --check ]] && check_only=true

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v runc >/dev/null 2>&1 || need+=(runc)
{ command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1; } || need+=(containerd)
for plugin in bridge host-local loopback; do
  if [[ ! -x /usr/lib/cni/$plugin ]]; then
    need+=(containernetworking-plugins)
    break
  fi
done

say() { echo "setup-system: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  if [[ ${#need[@]} -gt 0 ]]; then
    say "needs root and ${need[*]} (Debian: apt-get install ${need[*]}): the backends live in network namespaces, kube-proxy programs nftables, the real node runs containerd; run it as root (e.g. sudo -E npm …)"
  else
    say "needs root: the backends live in network namespaces, kube-proxy programs nftables, the real node runs containerd; run it as root (e.g. sudo -E npm …)"
  fi
  exit 1
fi

[[ ${#need[@]} -eq 0 ]] && exit 0

if $check_only; then
  say "missing Debian packages ${need[*]} (as root: bash e2e/scripts/setup-system.sh)"
  exit 1
fi

command -v apt-get >/dev/null 2>&1 || {
  say "missing ${need[*]}, and there is no apt-get: install them with this system's package manager"
  exit 1
}

# Docker CE's containerd.io ships its own containerd and runc and conflicts with Debian's
# packages: installing those would remove it, so refuse and let the machine's owner decide.
if dpkg-query -W -f='${Status}' containerd.io 2>/dev/null | grep -q 'install ok installed'; then
  for p in "${need[@]}"; do
    if [[ $p == runc || $p == containerd ]]; then
      say "refusing to install $p: Docker CE's containerd.io is installed and conflicts with Debian's $p; provide containerd, runc and /usr/lib/cni/{bridge,host-local,loopback} yourself and run again"
      exit 1
    fi
  done
fi

say "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# --no-remove: apt must not remove anything to satisfy these installs.
if ! apt-get install -y -q --no-install-recommends --no-remove "${need[@]}" >/dev/null; then
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends --no-remove "${need[@]}" >/dev/null
fi
for c in ip nft runc containerd ctr; do
  command -v "$c" >/dev/null 2>&1 || { say "installed ${need[*]} but $c is still not on PATH"; exit 1; }
done
