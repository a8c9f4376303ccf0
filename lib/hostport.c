// SPDX-License-Identifier: Apache-2.0
/* HOST:PORT parsing and listener options shared by the API server, the agent, DNS and tools. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sluice/hostport.h"
#include "sluice/log.h"

int sl_hostport_parse(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (!colon || (size_t)(colon - s) >= hostlen)
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || errno || p < 0 || p > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (int)p;
	return 0;
}

int sl_listener_nodelay(int fd)
{
	int one = 1, err;

	if (!setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return 0;
	err = errno;
	pr_warn("net", "TCP_NODELAY on listening socket %d: %s", fd, strerror(err));
	return -err;
}
