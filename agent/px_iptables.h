/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The iptables dataplane's pure parts (agent/px_iptables.c), exposed for the
 * unit tests: rendering a sync into iptables-restore text without touching
 * the kernel, and the chain-name hashes kube-proxy uses. The agent itself only
 * uses pxy_iptables_ops (agent/proxier.h).
 */
#ifndef SLUICE_AGENT_PX_IPTABLES_H
#define SLUICE_AGENT_PX_IPTABLES_H

#include <stdbool.h>
#include <stddef.h>

#include "proxier.h"
#include "sluice/buf.h"

struct lbi;

/*
 * kube-proxy's servicePortChainName: prefix ("KUBE-SVC-", "KUBE-SVL-",
 * "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-") + the first 16 characters of
 * base32(sha256(svc_port_name + proto [+ endpoint])), where svc_port_name is
 * "ns/name" or "ns/name:port", proto "tcp"/"udp"/"sctp" and endpoint "ip:port"
 * (endpoint chains only, else NULL). out holds at least 32 bytes.
 */
void pxy_ipt_chain_name(char *out, const char *prefix, const char *svc_port_name, const char *proto,
			const char *endpoint);

/*
 * A backend handle without the kernel checks of open() (no binary lookup, no
 * sysctl read): for rendering in tests. NULL with errno.
 */
struct pxy *pxy_ipt_new(const struct pxy_cfg *cfg);

/*
 * Renders one sync of l into out (appended): the iptables-restore input that
 * takes the tables from the last rendered state to l's (partial unless full),
 * and records l's state as the new last one. save, when not NULL, is
 * `iptables-save` text (full syncs, which follow a restart or a failure):
 * KUBE-{SVC,SVL,EXT,FW,SEP}-* chains in its nat table that the new state does
 * not use are deleted, and kube-proxy's jumps from the built-in chains that it
 * lacks are inserted. Returns 0, -ENOMEM (the next render is then full).
 */
int pxy_ipt_render(struct pxy *p, const struct lbi *l, bool full, const char *save,
		   struct sl_buf *out);

/*
 * The conntrack deletions the last render queued (UDP endpoints that went
 * away, UDP frontends that got their first endpoint), one `conntrack` argv
 * per line, arguments separated by spaces. sync() runs them after the
 * restore succeeded.
 */
void pxy_ipt_conntrack_pending(const struct pxy *p, struct sl_buf *out);

#endif
