#!/bin/bash
# Capture GoBGP's OPEN/UPDATEs in throwaway namespaces (removed on exit).
set -eu
P="gv$$"
A="${P}a"; B="${P}b"; WORK=$(mktemp -d)
cleanup() {
  [ -f "$WORK/bird.pid" ] && kill "$(cat "$WORK/bird.pid")" 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add "${P}x" type veth peer name "${P}y"
ip link set "${P}x" netns "$A"; ip link set "${P}y" netns "$B"
ip -n "$A" addr add 10.213.0.1/24 dev "${P}x"; ip -n "$A" addr add fd00:213::1/64 dev "${P}x" nodad
ip -n "$B" addr add 10.213.0.2/24 dev "${P}y"; ip -n "$B" addr add fd00:213::2/64 dev "${P}y" nodad
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set "${P}x" up; ip -n "$B" link set "${P}y" up
cat > "$WORK/gobgpd.toml" <<CONF
[global.config]
  as = 65003
  router-id = "10.213.0.1"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.213.0.2"
    peer-as = 65002
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
  [neighbors.transport.config]
    local-address = "10.213.0.1"
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [neighbors.add-paths.config]
    send-max = 8
    receive = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
CONF
ip netns exec "$A" gobgpd -f "$WORK/gobgpd.toml" --api-hosts 127.0.0.1:50051 -l warn > "$WORK/gobgpd.log" 2>&1 &
echo $! > "$WORK/bird.pid"
for i in $(seq 1 50); do ip netns exec "$A" gobgp -u 127.0.0.1 -p 50051 global >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$A" gobgp -u 127.0.0.1 -p 50051 global rib add 10.244.5.0/26 origin igp med 20 community 65003:7 large-community 65003:1:2 -a ipv4
ip netns exec "$A" gobgp -u 127.0.0.1 -p 50051 global rib add 10.244.6.9/32 origin igp -a ipv4
ip netns exec "$A" gobgp -u 127.0.0.1 -p 50051 global rib add fd00:244:5::/122 nexthop fd00:213::1 -a ipv6
ip netns exec "$B" python3 "$1" 10.213.0.2 "$WORK/capture.txt" 65002 10.213.0.2 &
LPID=$!
wait $LPID
cp "$WORK/capture.txt" "$2"
