/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "HOST:PORT" listen/connect flags, split once for every component, and the
 * option every request/reply listener sets.
 */
#ifndef SLUICE_HOSTPORT_H
#define SLUICE_HOSTPORT_H

#include <stddef.h>

/*
 * Splits s at its last ':' into host (copied into host[hostlen]) and a port
 * in 0..65535. Returns 0, or -EINVAL for a missing ':', an empty or
 * non-numeric port, a port out of range, or a host too long for the buffer.
 */
int sl_hostport_parse(const char *s, char *host, size_t hostlen, int *port);

/*
 * Turns Nagle off on a listening TCP socket; the sockets it accepts inherit
 * it. Every server here writes a whole reply at once, and with Nagle on the
 * reply's last partial segment (or the next pipelined reply) waited for the
 * client's ACK of the data before it: a client that delays its ACKs (Linux:
 * up to 40 ms) stalled one API list page in five. Returns 0, or -errno after
 * a warning in the log (the server still works, only slower).
 */
int sl_listener_nodelay(int fd);

#endif
