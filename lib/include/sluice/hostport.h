/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "HOST:PORT" listen/connect flags, split once for every component.
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

#endif
