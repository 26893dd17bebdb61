#!/usr/bin/env bash
# Removes what a real node (e2e/harness/node.ts) left on this machine, from what it recorded in
# DIR/node.env: its processes (kubelet, containerd, the containers' shims and processes), its mount
# namespace (with the container root file systems, kubelet's volumes and the pods' network
# namespaces mounted in it), the cgroups under its own cgroup root, its network namespace and the
# host's route to its pods, and DIR itself. Safe to run twice, after a crash of the process that
# started the node (its watchdog runs it), and from `npm run cluster:down`. The processes go
# first: the mount namespace they share (DIR/mntns) lives as long as any of them does.
#
#   node-cleanup.sh DIR [--keep-dir]
set -u
dir="${1:?usage: node-cleanup.sh DIR [--keep-dir]}"
keep_dir="${2:-}"
[[ -f "$dir/node.env" ]] || exit 0
# shellcheck disable=SC1091
source "$dir/node.env"
: "${NETNS:?}" "${CGROUP_ROOT:?}" "${SOCKET:?}"

# Process groups this node started (recorded by e2e/harness/processes.ts), newest first.
groups() { cat "$dir"/run/pids "$dir"/net/pids 2>/dev/null | tac; }
for p in $(groups); do kill -TERM "-$p" 2>/dev/null; done

cgroup_procs() {
  local d
  for d in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [[ -d "$d" ]] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}
# The shims: containerd starts them in process groups of their own, naming its socket.
shims() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$SOCKET"; then echo "${p#/proc/}"; fi
  done
}
# Containers run in the pods' cgroups, which only this node's kubelet made (under CGROUP_ROOT).
for _ in $(seq 50); do
  procs="$(cgroup_procs) $(shims)"
  [[ -z "${procs// /}" ]] && break
  # shellcheck disable=SC2086
  kill -KILL $procs 2>/dev/null
  sleep 0.1
done
for p in $(groups); do kill -KILL "-$p" 2>/dev/null; done

# Mounts under DIR, deepest first (mountinfo escapes spaces as \040; DIR has none): the file that
# holds the node's mount namespace open, with which every mount made inside it goes.
for _ in 1 2 3; do
  mounts="$(awk -v d="$dir/" 'index($5, d) == 1 { print length($5) " " $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2-)"
  [[ -z "$mounts" ]] && break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done <<<"$mounts"
done

# The cgroups, leaves first (a cgroup v1 directory goes with rmdir once it has no process).
for d in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
  [[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done

pids="$(ip netns pids "$NETNS" 2>/dev/null)"
# shellcheck disable=SC2086
[[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null
ip netns del "$NETNS" 2>/dev/null
rm -rf "/etc/netns/$NETNS"
[[ -n "${POD_ROUTE:-}" ]] && ip route del $POD_ROUTE 2>/dev/null

[[ "$keep_dir" == --keep-dir ]] || rm -rf "$dir"
exit 0
