#!/usr/bin/env bash
# A small multi-host network inside this machine, built from network namespaces (root only):
#
#   <P>-net   a "switch": bridge br0 joining every host and the control plane on 10.248.0.0/24
#   <P>-cp    the control plane's host, 10.248.0.2
#   <P>-hN    host N (N = 1..HOSTS), 10.248.0.(10+N) on eth0; routes 10.248.M.0/24 to host M; forwards packets
#   <P>-hN-pK pod K on host N, 10.248.N.(10+K) on eth0, default route via its host (10.248.N.1 on veth pK)
#
# With NETNS_MESH_IPV6=1 `up` also gives everything an IPv6 address, mirroring the IPv4 plan in fd00:248::/48
# (all added with nodad, so they are usable at once): the control plane fd00:248::2/64 and host N fd00:248::1N/64
# on the switch; pod K on host N fd00:248:N::1K, its host fd00:248:N::1 on veth pK; hosts forward IPv6 and route
# fd00:248:M::/64 to host M. Without it the mesh is IPv4 only, exactly as before.
#
# Only 10.248.0.0/16 (and fd00:248::/48) addresses inside namespaces this script created; nothing is attached to
# the machine's own network namespace, so nothing leaves the machine. Pods get /etc/netns/<pod>/resolv.conf
# pointing at their host (where ztunnel's DNS proxy answers), which `ip netns exec` mounts over /etc/resolv.conf.
#
# Usage: [NETNS_MESH_IPV6=1] scripts/netns-mesh.sh up [HOSTS=2] [PODS=2] | down | status | exec <name> <cmd...>
#   <name> is cp, net, hN or hN-pK. NETNS_MESH_PREFIX (default ambm) names everything; `down` removes every
#   namespace and resolv.conf with that prefix, so it also cleans up after a run that failed halfway.
set -euo pipefail

P="${NETNS_MESH_PREFIX:-ambm}"
case "$P" in (*[!a-z0-9]*|'') echo "NETNS_MESH_PREFIX must be lowercase letters and digits" >&2; exit 2;; esac
V6="${NETNS_MESH_IPV6:-0}"
case "$V6" in (0|1) ;; (*) echo "NETNS_MESH_IPV6 must be 0 or 1" >&2; exit 2;; esac

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk -v p="$P-" 'index($1, p) == 1 { print $1 }'); do
    # Processes still running in a namespace would keep its interfaces alive: stop them first.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf /etc/netns/"$P"-* 2>/dev/null || true
}

up() {
  local hosts="${1:-2}" pods="${2:-2}"
  if [[ ! "$hosts" =~ ^[1-9]$ || ! "$pods" =~ ^[1-9]$ ]]; then echo "HOSTS and PODS must be 1..9" >&2; exit 2; fi
  down
  # A failure halfway leaves nothing behind.
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "netns-mesh: setup failed, tearing down" >&2; down; fi' EXIT

  ip netns add "$P-net"
  in_ns "$P-net" ip link set lo up
  in_ns "$P-net" ip link add br0 type bridge
  # Multicast snooping on a bridge that has just come up can swallow neighbour discovery (IPv6 only).
  [ "$V6" = 0 ] || in_ns "$P-net" ip link set br0 type bridge mcast_snooping 0
  in_ns "$P-net" ip link set br0 up

  attach() { # attach <ns> <ip/24> <port name on the bridge> [<ipv6/64>]
    ip netns add "$1"
    in_ns "$1" ip link set lo up
    ip -n "$P-net" link add "$3" type veth peer name eth0 netns "$1"
    ip -n "$P-net" link set "$3" master br0 up
    in_ns "$1" ip addr add "$2" dev eth0
    [ -z "${4:-}" ] || in_ns "$1" ip -6 addr add "$4" dev eth0 nodad
    in_ns "$1" ip link set eth0 up
  }
  v6() { [ "$V6" = 0 ] || printf '%s' "$1"; }

  attach "$P-cp" 10.248.0.2/24 cp "$(v6 fd00:248::2/64)"
  local n k m
  for n in $(seq 1 "$hosts"); do
    local h="$P-h$n"
    attach "$h" "10.248.0.$((10 + n))/24" "h$n" "$(v6 "fd00:248::$((10 + n))/64")"
    in_ns "$h" sysctl -qw net.ipv4.ip_forward=1
    [ "$V6" = 0 ] || in_ns "$h" sysctl -qw net.ipv6.conf.all.forwarding=1
    for m in $(seq 1 "$hosts"); do
      [ "$m" = "$n" ] || in_ns "$h" ip route add "10.248.$m.0/24" via "10.248.0.$((10 + m))"
      [ "$m" = "$n" ] || [ "$V6" = 0 ] || in_ns "$h" ip -6 route add "fd00:248:$m::/64" via "fd00:248::$((10 + m))"
    done
    for k in $(seq 1 "$pods"); do
      local pod="$h-p$k" ip="10.248.$n.$((10 + k))"
      ip netns add "$pod"
      in_ns "$pod" ip link set lo up
      ip -n "$h" link add "p$k" type veth peer name eth0 netns "$pod"
      in_ns "$h" ip addr add "10.248.$n.1/32" dev "p$k"
      in_ns "$h" ip link set "p$k" up
      in_ns "$h" ip route add "$ip/32" dev "p$k"
      in_ns "$pod" ip addr add "$ip/32" dev eth0
      in_ns "$pod" ip link set eth0 up
      in_ns "$pod" ip route add "10.248.$n.1" dev eth0
      in_ns "$pod" ip route add default via "10.248.$n.1" dev eth0
      if [ "$V6" = 1 ]; then
        local ip6="fd00:248:$n::$((10 + k))"
        in_ns "$h" ip -6 addr add "fd00:248:$n::1/128" dev "p$k" nodad
        in_ns "$h" ip -6 route add "$ip6/128" dev "p$k"
        in_ns "$pod" ip -6 addr add "$ip6/128" dev eth0 nodad
        in_ns "$pod" ip -6 route add "fd00:248:$n::1" dev eth0
        in_ns "$pod" ip -6 route add default via "fd00:248:$n::1" dev eth0
      fi
      mkdir -p "/etc/netns/$pod"
      printf 'nameserver 10.248.%s.1\noptions ndots:1\n' "$n" > "/etc/netns/$pod/resolv.conf"
    done
  done
  trap - EXIT
  status
}

status() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk -v p="$P-" 'index($1, p) == 1 { print $1 }' | sort); do
    printf '%-14s %s%s\n' "$ns" "$(ip -n "$ns" -4 -o addr show scope global | awk '{ printf "%s=%s ", $2, $4 }')" \
      "$(ip -n "$ns" -6 -o addr show scope global | awk '{ printf "%s=%s ", $2, $4 }')"
  done
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  exec) name="$1"; shift; in_ns "$P-$name" "$@" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
