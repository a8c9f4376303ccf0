#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One probe of the recipe suite, run inside a pod's netns: a single new connection
(TCP) or datagram exchange (UDP) to an echo-server, or one DNS query.

    probe.py tcp|udp|http IP PORT [TIMEOUT]
    probe.py dns  SERVER NAME udp|tcp [TIMEOUT]

Prints exactly one word, then details: "ok <reply>", "dropped" (no answer within the
timeout: what a policy drop looks like), "refused" (RST or ICMP port unreachable: the
packet got through but nothing listens), "unreachable" (ICMP host/net unreachable or no
route) or "error <what>". A denied probe must say "dropped", so a server that is not up
(refused) or a broken network (unreachable, error) never passes as enforcement."""
import errno
import random
import socket
import struct
import sys


def classify(e):
    if isinstance(e, socket.timeout):
        return "dropped"
    if e.errno == errno.ECONNREFUSED:
        return "refused"
    if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "error " + str(e)


def stream(proto, ip, port, timeout):
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        if proto == "http":
            s.sendall(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n")
        else:
            s.send(b"hi\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            if proto == "udp" or (proto == "tcp" and data.endswith(b"\n")):
                break
        if not data:
            return "error connection closed without a reply"
        # HTTP: the body is the last line; echo: the one line.
        return "ok " + data.decode(errors="replace").strip().splitlines()[-1]
    except OSError as e:
        return classify(e)
    finally:
        s.close()


def dns(server, name, transport, timeout):
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)  # A, IN
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    try:
        s.connect((server, 53))
        if transport == "udp":
            s.send(q)
            r = s.recv(4096)
        else:
            s.sendall(struct.pack("!H", len(q)) + q)
            r = b""
            while len(r) < 2 or len(r) < 2 + struct.unpack("!H", r[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    break
                r += chunk
            r = r[2:]
        if len(r) < 12 or struct.unpack("!H", r[:2])[0] != qid:
            return "error malformed DNS reply"
        rcode = r[3] & 0xF
        ancount = struct.unpack("!H", r[6:8])[0]
        return "ok rcode=%d answers=%d" % (rcode, ancount)
    except OSError as e:
        return classify(e)
    finally:
        s.close()


def main():
    a = sys.argv[1:]
    try:
        if a[0] == "dns":
            print(dns(a[1], a[2], a[3], float(a[4]) if len(a) > 4 else 1.5))
        elif a[0] in ("tcp", "udp", "http"):
            print(stream(a[0], a[1], int(a[2]), float(a[3]) if len(a) > 3 else 1.5))
        else:
            raise IndexError
    except (IndexError, ValueError):
        print("error usage: probe.py tcp|udp|http IP PORT [TIMEOUT] | dns SERVER NAME udp|tcp [TIMEOUT]")
        return 2
    return 0


sys.exit(main())
