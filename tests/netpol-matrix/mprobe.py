#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""All the probes of one source pod of the reachability matrix, at once (run inside the
pod's netns by tests/integration/netpol_matrix.sh, one exec per source pod and matrix):

    mprobe.py TIMEOUT PROTO/PORT[,PROTO/PORT...] NS/POD=IP...

For every destination and every PROTO/PORT (tcp or udp) one new connection (TCP) or one
datagram exchange (UDP) to the destination's echo-server, all concurrently, each with
TIMEOUT seconds. Prints one line per probe: "NS/POD PROTO/PORT VERDICT [detail]" where
VERDICT is "ok" (answered by the pod that was addressed), "dropped" (no answer: what a
policy drop looks like), "refused" (RST or ICMP port unreachable: nothing listens),
"unreachable", "wrong" (answered by another pod) or "error". Only "ok" and "dropped" are
verdicts a matrix accepts; anything else fails the cell whatever was expected."""
import errno
import socket
import sys
import threading


def probe(name, ip, proto, port, timeout, out, lock):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        s.send(b"matrix\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            if proto == "udp":
                break
        reply = data.decode(errors="replace").strip()
        if not reply:
            v = "error closed without a reply"
        elif ("pod=%s " % name) in reply + " ":
            v = "ok"
        else:
            v = "wrong " + reply
    except socket.timeout:
        v = "dropped"
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:
            v = "refused"
        elif e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            v = "unreachable"
        else:
            v = "error " + str(e)
    finally:
        s.close()
    with lock:
        out.append("%s %s/%d %s" % (name, proto, port, v))


def main():
    try:
        timeout = float(sys.argv[1])
        specs = [(p.split("/")[0], int(p.split("/")[1])) for p in sys.argv[2].split(",")]
        dsts = [a.split("=", 1) for a in sys.argv[3:]]
        if any(p not in ("tcp", "udp") for p, _ in specs) or any(len(d) != 2 for d in dsts):
            raise ValueError
    except (IndexError, ValueError):
        print("usage: mprobe.py TIMEOUT tcp|udp/PORT[,...] NS/POD=IP...", file=sys.stderr)
        return 2
    out, lock, threads = [], threading.Lock(), []
    for name, ip in dsts:
        for proto, port in specs:
            t = threading.Thread(target=probe, args=(name, ip, proto, port, timeout, out, lock))
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    print("\n".join(sorted(out)))
    return 0


sys.exit(main())
