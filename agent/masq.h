/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Masquerade of traffic leaving the cluster (issue 6): a packet from one of this node's pods
 * to an address outside the cluster (not a pod CIDR of any node, not a node address) leaves
 * with the node's address, so the outside world needs no route to pod CIDRs. Policy is
 * evaluated before: the tc programs on the pod's veth see the pod address (tc ingress runs
 * before routing and nftables' postrouting hook).
 *
 * Done with one nftables table in the agent's netns, `ip sluice_masq` (masquerade with
 * conntrack, so replies are un-NATed by the kernel before they reach the veth, where policy
 * matches them as replies of the pod's flow):
 *
 *   set cluster { pod CIDRs of every node, node InternalIPs }
 *   chain post  { nat postrouting srcnat: ip saddr <own podCIDR> ip daddr != @cluster masquerade }
 *
 * Service addresses never appear as destinations: the socket LB and tc_pod translate them
 * before routing. Rewritten atomically (one nft transaction) when the set changes.
 */
#ifndef SLUICE_AGENT_MASQ_H
#define SLUICE_AGENT_MASQ_H

#include <stddef.h>

#include "node.h"
#include "sluice/buf.h"

#define MASQ_TABLE "sluice_masq"

/* The nft script for self's podCIDR among peers (node.h). -EINVAL when self has no usable
 * podCIDR yet (nothing to masquerade). Peers with unusable values are skipped. */
int masq_render(const char *own_cidr, const struct node_peer *peers, size_t n, struct sl_buf *out);

/* Applies the script when it differs from *applied (kept, caller frees). 0 or negative. */
int masq_sync(const char *own_cidr, const struct node_peer *peers, size_t n, char **applied);

/* Removes the table (--cleanup). */
void masq_remove(void);

#endif
