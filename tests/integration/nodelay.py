#!/usr/bin/env python3
# Usage: nodelay.py PID PORT
#
# Prints "listener=N conn=N": TCP_NODELAY as process PID has it on its
# listening socket(s) for 127.0.0.1:PORT (the lowest, when SO_REUSEPORT gives
# it several) and on the connection it accepted from this script. -1 means no
# such socket was found.
#
# Read from the server itself: each of its descriptors is copied with
# pidfd_getfd(2) (syscall 438 on every architecture) and asked. A reply whose
# tail waits for the client's delayed ACK (Nagle) costs ~40 ms on Linux, and a
# test that timed it would be flaky; the socket option is the cause, so the
# test reads it.
import ctypes, os, socket, sys, time

pid, port = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438

c = socket.create_connection(("127.0.0.1", port), timeout=5)
me = c.getsockname()[1]
pidfd = os.pidfd_open(pid)
listener, conn = -1, -1
for _ in range(50):  # the server accepts when its loop gets to it
    listener, conn = -1, -1
    for name in os.listdir("/proc/%d/fd" % pid):
        fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(name), 0)
        if fd < 0:
            continue
        try:
            s = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            continue
        try:
            if s.type != socket.SOCK_STREAM or s.family != socket.AF_INET:
                continue
            nd = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            nd = 1 if nd else 0
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                if s.getsockname()[1] == port:
                    listener = nd if listener < 0 else min(listener, nd)
            else:
                try:
                    if s.getpeername()[1] == me and s.getsockname()[1] == port:
                        conn = nd
                except OSError:
                    pass
        finally:
            s.close()
    if conn >= 0:
        break
    time.sleep(0.05)
os.close(pidfd)
c.close()
print("listener=%d conn=%d" % (listener, conn))
