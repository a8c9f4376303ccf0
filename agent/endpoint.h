/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent side of the CNI endpoint socket (protocol: cni-plugin/cni_agent.h).
 *
 * <state_dir>/agent.sock, 0600, served on the agent's event loop: one JSON request line
 * per connection, one reply line. "add" records the endpoint (pod IP, host veth, container
 * id, pod namespace/name from CNI_ARGS, netns cookie) under <state_dir>/endpoints/ and sets
 * up its datapath state before answering; "del" undoes it (unknown endpoints are fine);
 * "check" verifies the record and the host veth. At start, DELs the plugin queued while the
 * agent was down (<state_dir>/cni-del-queue/del-*.json) are replayed and deleted.
 *
 * Datapath state per endpoint: pods annotated sluice.io/socket-lb: "off" get their netns
 * cookie into the socket LB's opt-out map (sl_sockoff_v1: the cgroup hooks skip them) and
 * tc_pod (bpf/tc_pod.bpf.c) on the host-side veth, which does ClusterIP DNAT + conntrack on
 * the way out of the pod and reverse NAT on replies. Other pods need nothing per endpoint.
 */
#ifndef SLUICE_AGENT_ENDPOINT_H
#define SLUICE_AGENT_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct sl_client;
struct json_object;

#define EP_SOCK_NAME	   "agent.sock"
#define EP_QUEUE_DIR	   "cni-del-queue"
#define EP_STATE_DIR	   "endpoints"
#define EP_ANNOT_SOCKET_LB "sluice.io/socket-lb"
#define EP_MAX_LINE	   65536

struct ep_opts {
	struct event_base *base;
	struct sl_client *client; /* reads the pod's annotations; may be NULL (tests) */
	const char *state_dir;
	const char *pin_root; /* the datapath's pin dir (opt-out map, shared maps) */
	const char *node_name;
	/* BPF host routing (docs/datapath.md): pod-to-pod packets skip the node's stack;
	 * devices (comma list) get the fabric program that delivers into local pods. */
	bool host_routing;
	const char *devices;
};

struct endpoints;

/* Opens the socket, loads the records and replays the DEL queue. NULL + errno. */
struct endpoints *ep_open(const struct ep_opts *o);
void ep_close(struct endpoints *e);
/* Number of recorded endpoints. */
size_t ep_count(const struct endpoints *e);

struct node_route;
/* The cluster's podCIDRs (the node's route set: dst/prefix of each) for host routing:
 * traffic to them may skip the node's stack. Accepts e == NULL; no-op when off. */
void ep_hr_cidrs(struct endpoints *e, const struct node_route *r, size_t n);
/* Removes the fabric program's pinned TCX links under pin_root (detaching them). */
void ep_hr_unpin(const char *pin_root);

/* --- pure parts (unit-tested) ------------------------------------------------------------ */

/* A parsed request line. Strings point into the json the caller keeps. */
struct ep_req {
	const char *op; /* "add", "del", "check" */
	const char *container_id;
	const char *ifname;
	const char *network;
	const char *netns; /* may be NULL */
	const char *ip;	   /* add: required */
	const char *host_ifname;
	int host_ifindex; /* 0 when absent */
	const char *args; /* CNI_ARGS, may be NULL */
};

/* Validates and fills r from a request object. -EINVAL with err naming the problem. */
int ep_req_parse(struct json_object *obj, struct ep_req *r, char *err, size_t errlen);

/* Value of key in CNI_ARGS "K=V;K2=V2" into out. 0, -ENOENT, -ENAMETOOLONG. */
int ep_args_get(const char *args, const char *key, char *out, size_t outlen);

/* The record file name of (network, container id, ifname): stable across restarts. */
void ep_record_name(const char *network, const char *container_id, const char *ifname,
		    char out[32]);

#endif
