/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's NetworkPolicy loop: informers for NetworkPolicies, Namespaces and every Pod
 * of the cluster feed libnetpol (netpol/netpol.h) in this node's view (np_set_node); each
 * compile's diff is written into the pinned maps of bpf/include/abi/policy.h in the
 * compiler's make-before-break order (new rule sets, then endpoints, then removals).
 * The enforcement programs (bpf/lib/sl_policy.h) are attached to each pod's host veth by
 * the endpoint socket (endpoint.c), which calls npol_endpoint_add() at CNI ADD so the pod's
 * identity and rule-set entries are in the maps before the pod's first packet.
 *
 * Until all three informers have synced nothing is compiled (a partial view would open
 * what a policy not yet seen closes); the maps of a previous run keep enforcing meanwhile,
 * and the first compile reconciles them (writes everything, then deletes what is no
 * longer wanted). A policy the compiler rejects fails closed for the pods it selects and
 * gets a Warning Event (reason PolicyRejected) naming the field.
 *
 * One instance per process (the agent's); npol_self() gives it to the endpoint socket.
 */
#ifndef SLUICE_AGENT_POLICY_H
#define SLUICE_AGENT_POLICY_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct sl_client;

struct npol_opts {
	struct event_base *base;
	struct sl_client *client;
	const char *pin_root; /* <bpffs>/sluice/<node> */
	const char *node_name;
};

struct npol;

/* Loads the maps (pinned by name under pin_root) and starts the informers. NULL + errno. */
struct npol *npol_open(const struct npol_opts *o);
void npol_close(struct npol *p);
/* The open instance of this process, or NULL. */
struct npol *npol_self(void);

/*
 * CNI ADD of a local pod with address ip: makes sure its endpoint entry (identity and rule
 * sets, from the Pod object as it is now with ip as its address) is in the maps before the
 * caller lets the pod run. Right after a start it waits up to 3 s for the first lists.
 * 0, or negative with why filled (-EAGAIN when the informers still have not synced: the
 * runtime retries the ADD, the pod never runs unenforced).
 */
int npol_endpoint_add(struct npol *p, const char *ns, const char *name, const char *ip, char *why,
		      size_t whylen);
/* CNI DEL: forget the ADD's address (the Pod informer's delete removes the entry). */
void npol_endpoint_del(struct npol *p, const char *ns, const char *name);

/* Prometheus text: verdict counters by reason, compile counters and sizes. */
void npol_metrics_write(struct npol *p, struct evbuffer *out);

/* The counter index's label (allowed_rule, denied_ingress, ...); NULL for unused ones. */
const char *npol_reason_name(unsigned idx);

#endif
