/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's node side (docs/lab.md, "sluice-agent additions"), active with --run-pods:
 *
 *   - registers the Node (labels, addresses, capacity, nodeInfo, Ready condition) and
 *     rewrites its status when it changes and at least every NODE_STATUS_S seconds;
 *   - renews the Lease <node> in kube-node-lease every NODE_LEASE_S seconds;
 *   - waits for spec.podCIDR and writes <cni-conf-dir>/10-sluice.conflist (tmp + rename);
 *   - host-gw routes: other nodes' podCIDRs via their InternalIP, and an unreachable route
 *     for its own podCIDR (pods have /32 routes from the CNI plugin, which win);
 *   - serves the CNI endpoint socket (agent/endpoint.h).
 *
 * Everything runs on the agent's event loop. API writes are synchronous requests to the
 * API server (as the agent's Event posts are); the endpoint socket is served by libevent
 * and never waits on anything but its own clients.
 */
#ifndef SLUICE_AGENT_NODE_H
#define SLUICE_AGENT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

struct agent_config;
struct event_base;
struct sl_client;
struct json_object;

#define NODE_LEASE_S	    10
#define NODE_LEASE_DURATION 40
#define NODE_STATUS_S	    60
#define NODE_MAX_PODS	    110
#define NODE_KUBELET_VER    "v1.31.0-sluice"
#define NODE_CONFLIST	    "10-sluice.conflist"
#define NODE_RTPROT	    83 /* rtm_protocol of our routes ("S"); unused by iproute2 */

struct node;

/*
 * Starts the node side on base: resolves the node IP, registers the Node, takes the Lease,
 * opens the endpoint socket (replaying queued DELs) and arms the timers. pin_root is the
 * datapath's pin directory. NULL with errno (reason logged) when it cannot start.
 */
struct node *node_open(const struct agent_config *cfg, struct event_base *base,
		       struct sl_client *client, const char *pin_root);
/* Feeds a Node from the agent's Nodes informer (deleted: the object went away).
 * Accepts n == NULL (node side off). */
void node_observe(struct node *n, struct json_object *obj, bool deleted);
/* The Nodes informer delivered its first full list: routes may now be reconciled (before
 * that, a missing peer could just be one not delivered yet). Accepts n == NULL. */
void node_synced(struct node *n);
void node_close(struct node *n);

/* --cleanup: removes the conflist (if it is ours) and our routes. 0 or negative errno. */
int node_cleanup(const struct agent_config *cfg);

/* --- pure parts (unit-tested) ------------------------------------------------------------ */

/* Facts the Node status is built from. */
struct node_facts {
	const char *name;
	const char *ip;
	const char *kernel;
	const char *os_image;
	const char *arch; /* GOARCH spelling: amd64, arm64, ... */
	unsigned cpus;
	unsigned long long mem_kib;
	const char *now;	 /* RFC 3339 heartbeat time */
	const char *ready_since; /* lastTransitionTime of Ready=True */
};

/* The status merge patch {"status":{...}} for the Node. */
void node_status_patch(const struct node_facts *f, struct sl_buf *out);

/* The metadata.labels object (JSON text) for name, arch and "k=v,k2=v2" extra labels.
 * -EINVAL with err naming the bad entry. */
int node_labels_json(const char *name, const char *arch, const char *extra, struct sl_buf *out,
		     char *err, size_t errlen);

/* The conflist for podCIDR under state_dir. -EINVAL with err for a CIDR that is not an
 * IPv4 network with prefix 8..30, or paths too long for the plugin. */
int node_conflist_render(const char *pod_cidr, const char *state_dir, struct sl_buf *out, char *err,
			 size_t errlen);

/* uname machine to GOARCH ("x86_64" -> "amd64"). */
const char *node_goarch(const char *machine);

/* One route of ours. Addresses host order. */
struct node_route {
	uint32_t dst;
	int prefix;
	uint32_t gw; /* 0 for unreachable */
	bool unreachable;
};

/* A Node as the route logic sees it. */
struct node_peer {
	const char *name;
	const char *pod_cidr; /* NULL when not assigned yet */
	const char *ip;	      /* InternalIP or NULL */
};

/*
 * The routes wanted for self among peers: an unreachable route for self's podCIDR and one
 * via InternalIP per other node with both. Peers with unusable values are skipped.
 * Returns the count written to out (at most max).
 */
size_t node_routes_want(const char *self, const struct node_peer *peers, size_t n,
			struct node_route *out, size_t max);

/* netlink (agent/node_route.c), in the caller's netns */
int node_route_replace(const struct node_route *r);
int node_route_delete(const struct node_route *r);
/* Our routes (rtm_protocol NODE_RTPROT) in the main table; caller frees *out. */
int node_route_dump(struct node_route **out, size_t *n);
/* 1 when ifindex is a veth whose peer lives in another netns (IFLA_LINK_NETNSID), 0 when
 * not, or a negative errno. */
int node_link_veth_peer_remote(int ifindex);

#endif
