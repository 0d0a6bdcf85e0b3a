#!/usr/bin/env python3
"""Tiny BGP listener used to capture vectors from a real peer.

Accepts one connection on ADDR:179, answers the peer's OPEN with its own
OPEN + KEEPALIVE, then records every message (hex, one per line, prefixed
with its type) until it has seen End-of-RIB for IPv4 and IPv6 or the time
limit passes. Usage: capture_listener.py ADDR OUT_FILE LOCAL_AS ROUTER_ID
"""
import socket
import struct
import sys
import time

addr, out_path, local_as, router_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

caps = b"".join([
    bytes([1, 4, 0, 1, 0, 1]),            # MP IPv4 unicast
    bytes([1, 4, 0, 2, 0, 1]),            # MP IPv6 unicast
    bytes([2, 0]),                        # route refresh
    bytes([65, 4]) + struct.pack("!I", local_as),
    bytes([69, 8, 0, 1, 1, 3, 0, 2, 1, 3]),  # ADD-PATH both ways, v4 + v6
    bytes([64, 2, 0x00, 120]),            # graceful restart, 120 s
])
params = bytes([2, len(caps)]) + caps
body = struct.pack("!BHH4sB", 4, local_as, 90, socket.inet_aton(router_id), len(params)) + params
open_msg = b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 1) + body
keepalive = b"\xff" * 16 + struct.pack("!HB", 19, 4)

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, 179))
srv.listen(1)
srv.settimeout(30)
conn, _ = srv.accept()
conn.settimeout(2)
deadline = time.time() + 20
buf = b""
records = []
sent_open = False
eor = set()
while time.time() < deadline and len(eor) < 2:
    try:
        chunk = conn.recv(65535)
    except socket.timeout:
        continue
    if not chunk:
        break
    buf += chunk
    while len(buf) >= 19:
        length, mtype = struct.unpack("!HB", buf[16:19])
        if len(buf) < length:
            break
        m, buf = buf[:length], buf[length:]
        records.append((mtype, m.hex()))
        if mtype == 1 and not sent_open:
            conn.sendall(open_msg + keepalive)
            sent_open = True
        if mtype == 2:
            if length == 23:
                eor.add("ipv4")
            elif m[23:26] == b"\x80\x0f\x03" and length == 29:
                eor.add("ipv6")
conn.close()
srv.close()
with open(out_path, "w") as f:
    for mtype, hx in records:
        f.write(f"{mtype} {hx}\n")
print(f"captured {len(records)} messages, eor={sorted(eor)}")
