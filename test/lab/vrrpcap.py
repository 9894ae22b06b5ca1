#!/usr/bin/python3
"""VRRP advert gaps on a lab interface (the bridge rplab0 by default), for the failover benchmark's margin.

Captures IPv4 protocol 112 frames (multicast and, with the interface promiscuous, unicast adverts) until
SIGTERM or --duration-s, then prints one JSON document: per (source address, virtual router id) the number of
adverts, the priorities seen and the largest gaps between consecutive adverts (ms). A backup declares the
master dead after 3 x advert_int + skew without an advert: the largest gap against that is the margin.
Usage (root): python3 test/lab/vrrpcap.py [--interface rplab0] [--duration-s 60]
"""
import argparse
import json
import signal
import socket
import struct
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
SO_TIMESTAMPNS = 35
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interface", default="rplab0")
    ap.add_argument("--duration-s", type=float, default=3600)
    a = ap.parse_args()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.interface, 0))
    mreq = struct.pack("iHH8s", socket.if_nametoindex(a.interface), PACKET_MR_PROMISC, 0, b"")
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    # the kernel's receive time of each frame: a capture process delayed by the load it measures must not
    # turn its own scheduling delay into advert gaps
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(0.2)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    flows = {}
    end = time.monotonic() + a.duration_s
    while not stop[0] and time.monotonic() < end:
        try:
            frame, anc, _flags, _addr = s.recvmsg(2048, 64)
        except socket.timeout:
            continue
        now = None
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                now = sec + nsec / 1e9
        if now is None:
            now = time.time()
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 112:
            continue
        src = socket.inet_ntoa(ip[12:16])
        vrrp = ip[ihl:]
        vrid, prio = vrrp[1], vrrp[2]
        f = flows.setdefault((src, vrid), {"n": 0, "last": None, "gaps": [], "prios": set()})
        # the same advert seen twice (bridge + promiscuous copy) within 1 ms is one advert
        if f["last"] is not None and now - f["last"] < 0.001:
            continue
        if f["last"] is not None:
            f["gaps"].append((now - f["last"]) * 1000)
        f["last"] = now
        f["n"] += 1
        f["prios"].add(prio)
    out = []
    for (src, vrid), f in sorted(flows.items()):
        gaps = sorted(f["gaps"])
        out.append({
            "src": src, "vrid": vrid, "adverts": f["n"], "priorities": sorted(f["prios"]),
            "max_gap_ms": round(gaps[-1], 1) if gaps else None,
            "p99_gap_ms": round(gaps[int(len(gaps) * 0.99) - 1], 1) if len(gaps) >= 100 else None,
            "median_gap_ms": round(gaps[len(gaps) // 2], 1) if gaps else None,
        })
    print(json.dumps({"interface": a.interface, "flows": out}))


if __name__ == "__main__":
    main()
