#!/bin/bash
# Capture BIRD's OPEN/UPDATEs in throwaway namespaces (removed on exit).
set -eu
P="bv$$"
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
cat > "$WORK/bird.conf" <<CONF
router id 10.213.0.1;
protocol device {}
protocol static s4 { ipv4; route 10.244.1.0/26 blackhole; route 10.244.2.5/32 blackhole; route 10.244.3.0/26 blackhole; }
protocol static s6 { ipv6; route fd00:244:1::/122 blackhole; }
filter out4 { bgp_community.add((65001,100)); bgp_large_community.add((65001,1,2)); bgp_med = 50; accept; }
protocol bgp peer {
  local 10.213.0.1 as 65001;
  neighbor 10.213.0.2 as 65002;
  hold time 90;
  graceful restart on;
  ipv4 { import none; export filter out4; add paths tx; };
  ipv6 { import none; export all; next hop address fd00:213::1; };
}
CONF
ip netns exec "$B" python3 "$1" 10.213.0.2 "$WORK/capture.txt" 65002 10.213.0.2 &
LPID=$!
# give the listener its socket before BIRD connects (BIRD retries anyway)
for i in $(seq 1 50); do ip netns exec "$B" ss -ltn | grep -q ':179' && break; sleep 0.1; done
ip netns exec "$A" bird -c "$WORK/bird.conf" -s "$WORK/bird.ctl" -P "$WORK/bird.pid"
wait $LPID
cp "$WORK/capture.txt" "$2"
