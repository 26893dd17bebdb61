#!/usr/bin/env bash
# Installs the Debian packages a real node of the harness needs (e2e/harness/node.ts), each only
# when nothing on the machine provides what it is for yet; never removes or replaces anything.
#
#   node-packages.sh [--check]
#
#   containerd                   containerd, ctr          (Debian 12: 1.6.20)
#   runc                         runc                     (1.1.5)
#   containernetworking-plugins  /usr/lib/cni/{bridge,host-local,loopback}  (1.1.1)
#   nftables                     nft (kube-proxy's nftables mode)
#
# Why Debian's containerd rather than building containerd v2 from the module proxy: the packages
# exist for the distribution the harness targets, come with runc and the CNI plugins at versions
# tested together, and cost seconds instead of a cold multi-minute build; kubelet 1.36 still runs
# against containerd 1.6's CRI (it logs that containerd lacks RuntimeConfig and falls back to its
# own cgroupDriver setting).
#
# Docker CE's containerd.io ships its own containerd and runc and conflicts with Debian's packages:
# installing them would remove it, so the script refuses instead. With --check it installs nothing
# and exits 1 with one line saying what is missing.
set -euo pipefail

check_only=false
[[ "${1:-}" == --check ]] && check_only=true

need=()
command -v containerd >/dev/null && command -v ctr >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
for plugin in bridge host-local loopback; do
  if [[ ! -x /usr/lib/cni/$plugin ]]; then
    need+=(containernetworking-plugins)
    break
  fi
done
command -v nft >/dev/null || need+=(nftables)

if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "$check_only" == true ]]; then
  echo "missing Debian packages for a real node: ${need[*]} (as root: bash e2e/scripts/node-packages.sh)" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "node-packages: a real node needs ${need[*]}; run as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
if dpkg-query -W -f='${Status}' containerd.io 2>/dev/null | grep -q 'install ok installed'; then
  echo "node-packages: Docker CE's containerd.io is installed; Debian's ${need[*]} would conflict with it and replace it, so nothing is installed (provide containerd, runc and /usr/lib/cni/{bridge,host-local,loopback} yourself)" >&2
  exit 1
fi
command -v apt-get >/dev/null || {
  echo "node-packages: no apt-get here; install ${need[*]} with the system's package manager" >&2
  exit 1
}
echo "node-packages: installing ${need[*]}" >&2
# Where an init system runs, the package starts a system containerd on /run/containerd; the
# harness leaves it alone and runs its own, with its own socket and directories.
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
