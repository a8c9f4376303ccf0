// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level service load balancer (east-west ClusterIP/NodePort traffic).
 *
 * cgroup v2 sock_addr hooks translate a service frontend to a backend once,
 * when the application calls connect() or sendmsg() (unconnected UDP), so the
 * established flow pays nothing per packet. recvmsg() and getpeername()
 * translate the backend address back to the frontend, so the application only
 * ever sees the address it dialled. post_bind4 refuses host-netns binds whose
 * port is taken by a NodePort frontend.
 *
 * Lookup path (see abi/lb.h): svc4 HASH {dst, dport, proto, scope}, then the
 * slots and backends ARRAYs. Refusal reasons and translations are counted per
 * CPU in the counters map. All maps are pinned by name so the agent can
 * restart (or be gone) without traffic noticing.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/lb.h"
#include "lib/sl_svc_maps.h"
#include "lib/sl_cookie.h"
#include "lib/sl_ip4.h"

/* errno values (vmlinux.h carries no uapi macros). */
#define SL_EADDRINUSE	98
#define SL_ECONNREFUSED 111

#define SL_IPPROTO_TCP	6
#define SL_IPPROTO_UDP	17
#define SL_IPPROTO_SCTP 132

/* How many consecutive slots connect() probes when a slot points at a removed
 * backend, before it gives up (the agent rewrites the block shortly after a
 * removal, so this only bridges that window). */
#define SL_PICK_TRIES 4

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* --- maps (layouts in abi/lb.h; names are the SL_MAP_* strings) ----------
 *
 * The maps shared with tc_nodeport by pin name (svc4, slots, be4, aff4,
 * svcbe4, local4) come from lib/sl_svc_maps.h, defined once; the ones below
 * are the socket LB's own. */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sl_revnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_revnat4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_SOCK_REV);
	__type(key, struct sl_sock_rev_key);
	__type(value, struct sl_sock_rev_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_sockrev4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_lb_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_cfg_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_R_MAX);
	__type(key, __u32);
	__type(value, struct sl_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_counters_v1 SEC(".maps");

/* Network namespaces (pods) that opted out of the socket LB: their service
 * traffic is translated per packet by tc_pod on the pod's host veth, so the
 * hooks must leave it alone (abi/lb.h SL_MAP_SOCK_OFF). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SOCK_OFF);
	__type(key, __u64); /* netns cookie */
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_sockoff_v1 SEC(".maps");

/* --- helpers -------------------------------------------------------------- */

static __always_inline void sl_count(__u32 reason)
{
	struct sl_counter *c = bpf_map_lookup_elem(&sl_counters_v1, &reason);

	/* Per-CPU value: no atomics needed. Socket hooks count events, not bytes. */
	if (c)
		c->packets++;
}

static __always_inline bool sl_ip4_is_local(__be32 addr)
{
	return sl_ip4_is_loopback(addr) || bpf_map_lookup_elem(&sl_local4_v1, &addr);
}

/* Frontend lookup: exact {dst, port, proto, EXT}; on a miss, the NodePort
 * wildcard {0, port, proto, EXT} when dst is an address of this node (only
 * then: a NodePort must not capture traffic to remote hosts). Clients of the
 * socket LB are always on this node, so an EXT entry with LOCAL_INT or
 * LOCAL_EXT sends them to the SCOPE_INT entry (agent/model.h: iTP=Local ->
 * local set; eTP=Local -> the cluster set, kube-proxy's short circuit).
 * Returns NULL for "not a service" and sets *refuse when the service exists
 * but has no usable entry. */
static __always_inline struct sl_svc_val *sl_svc4_lookup(struct sl_svc_key *key, bool *refuse)
{
	struct sl_svc_val *svc;

	svc = bpf_map_lookup_elem(&sl_svc4_v1, key);
	if (!svc && sl_ip4_is_local(key->addr)) {
		/* key keeps addr 0 so the SCOPE_INT lookup below finds the
		 * wildcard's INT entry too. */
		key->addr = 0;
		svc = bpf_map_lookup_elem(&sl_svc4_v1, key);
		if (svc && !(svc->flags & SL_SVC_F_NODEPORT))
			return NULL;
	}
	if (!svc)
		return NULL;
	if (svc->flags & (SL_SVC_F_LOCAL_INT | SL_SVC_F_LOCAL_EXT)) {
		key->scope = SL_SCOPE_INT;
		svc = bpf_map_lookup_elem(&sl_svc4_v1, key);
		/* No INT entry: refuse rather than fall back to the EXT set, which
		 * for iTP=Local would reach remote endpoints. */
		if (!svc)
			*refuse = true;
	}
	return svc;
}

/* Pick a slot: random for TCP (connections are independent), hash of the
 * socket cookie for UDP so every datagram of one socket, connected or not,
 * reaches the same backend. Slots pointing at GONE backends are skipped. */
static __always_inline __u32 sl_slot_pick(const struct sl_svc_val *svc, __u64 cookie, bool udp)
{
	__u32 count = svc->count;
	__u32 idx, i;

	idx = udp ? sl_cookie_hash(cookie) : bpf_get_prandom_u32();
	idx %= count; /* count != 0: checked by the caller */
	/* Bounded loop (SL_PICK_TRIES): accepted by the verifier since 5.3. */
	for (i = 0; i < SL_PICK_TRIES && i < count; i++) {
		__u32 slot = svc->slot_base + idx;
		struct sl_backend *be;
		__u32 *id;

		id = bpf_map_lookup_elem(&sl_slots_v1, &slot);
		if (!id) {
			sl_count(SL_R_SLOT_OOB);
			return 0;
		}
		be = bpf_map_lookup_elem(&sl_be4_v1, id);
		if (*id && be && be->state != SL_BE_GONE)
			return *id;
		idx = idx + 1 == count ? 0 : idx + 1;
	}
	sl_count(SL_R_BACKEND_GONE);
	return 0;
}

/* connect4/sendmsg4: 1 = let the call proceed (translated or not a service),
 * 0 = refuse with the errno set through bpf_set_retval. */
static __always_inline int sl_sock4_xlate(struct bpf_sock_addr *ctx)
{
	struct sl_sock_rev_key rkey = {};
	struct sl_sock_rev_val rval = {};
	struct sl_affinity_key akey = {};
	struct sl_svc_key key = {};
	struct sl_svc_val *svc;
	struct sl_backend *be;
	bool refuse = false;
	__u64 cookie, now = 0;
	__u32 proto = ctx->protocol;
	__u32 id = 0;

	if (proto != SL_IPPROTO_TCP && proto != SL_IPPROTO_UDP && proto != SL_IPPROTO_SCTP)
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	if (bpf_map_lookup_elem(&sl_sockoff_v1, &cookie))
		return 1; /* opted out: tc_pod translates this pod's packets */
	key.addr = ctx->user_ip4;
	key.port = sl_sock_addr_port(ctx->user_port);
	key.proto = proto;
	key.scope = SL_SCOPE_EXT;
	svc = sl_svc4_lookup(&key, &refuse);
	if (!svc && !refuse)
		return 1;
	if (!svc || !svc->count) {
		/* No endpoints: fail the call now rather than let a SYN time out. */
		sl_count(SL_R_NO_BACKEND);
		bpf_set_retval(-SL_ECONNREFUSED);
		return 0;
	}

	cookie = bpf_get_socket_cookie(ctx);
	if (svc->flags & SL_SVC_F_AFFINITY) {
		/* The socket hooks see no source address; the netns cookie stands
		 * for the client (one pod = one netns). */
		akey.client = bpf_get_netns_cookie(ctx);
		akey.svc_id = svc->svc_id;
		now = bpf_ktime_get_ns();
		id = sl_affinity_get(svc, &akey, now);
		if (id)
			sl_count(SL_R_AFFINITY_HIT);
	}
	if (!id)
		id = sl_slot_pick(svc, cookie, proto != SL_IPPROTO_TCP);
	be = id ? bpf_map_lookup_elem(&sl_be4_v1, &id) : NULL;
	if (!be) {
		bpf_set_retval(-SL_ECONNREFUSED);
		return 0;
	}
	if (svc->flags & SL_SVC_F_AFFINITY) {
		struct sl_affinity_val aval = {.last_used_ns = now, .backend_id = id};

		bpf_map_update_elem(&sl_aff4_v1, &akey, &aval, BPF_ANY);
	}

	rkey.cookie = cookie;
	rkey.backend_addr = be->addr;
	rkey.backend_port = be->port;
	rval.vip = ctx->user_ip4; /* the address dialled, also for NodePort */
	rval.vport = key.port;
	rval.svc_id = svc->svc_id;
	rval.backend_id = id;
	if (bpf_map_update_elem(&sl_sockrev4_v1, &rkey, &rval, BPF_ANY))
		sl_count(SL_R_NAT_FAIL); /* replies will show the backend address */

	ctx->user_ip4 = be->addr;
	ctx->user_port = (__u32)be->port;
	sl_count(SL_R_OK);
	return 1;
}

/* recvmsg4/getpeername4: show the frontend instead of the backend. */
static __always_inline void sl_sock4_rev_xlate(struct bpf_sock_addr *ctx)
{
	struct sl_sock_rev_key rkey = {};
	struct sl_sock_rev_val *rval;

	rkey.cookie = bpf_get_socket_cookie(ctx);
	rkey.backend_addr = ctx->user_ip4;
	rkey.backend_port = sl_sock_addr_port(ctx->user_port);
	rval = bpf_map_lookup_elem(&sl_sockrev4_v1, &rkey);
	if (!rval)
		return;
	ctx->user_ip4 = rval->vip;
	ctx->user_port = (__u32)rval->vport;
}

/* --- programs --------------------------------------------------------------- */

SEC("cgroup/connect4")
int sl_connect4(struct bpf_sock_addr *ctx)
{
	return sl_sock4_xlate(ctx);
}

SEC("cgroup/sendmsg4")
int sl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sl_sock4_xlate(ctx);
}

/* recvmsg and getpeername hooks must return 1 (they cannot fail the call). */
SEC("cgroup/recvmsg4")
int sl_recvmsg4(struct bpf_sock_addr *ctx)
{
	sl_sock4_rev_xlate(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int sl_getpeername4(struct bpf_sock_addr *ctx)
{
	sl_sock4_rev_xlate(ctx);
	return 1;
}

/* A host process binding a NodePort's port would shadow the service for
 * traffic the socket LB does not see (and confuse the user): refuse with
 * EADDRINUSE, as if the port were taken. Pod netns binds are not affected.
 * Only wildcard NodePort entries are checked (any local address). */
SEC("cgroup/post_bind4")
int sl_post_bind4(struct bpf_sock *ctx)
{
	struct sl_svc_key key = {};
	struct sl_svc_val *svc;
	struct sl_lb_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&sl_cfg_v1, &zero);
	if (!cfg || !cfg->host_netns_cookie)
		return 1;
	if (bpf_get_netns_cookie(ctx) != cfg->host_netns_cookie)
		return 1;
	key.port = bpf_htons((__u16)ctx->src_port); /* bpf_sock: host order */
	key.proto = ctx->protocol;
	key.scope = SL_SCOPE_EXT;
	svc = bpf_map_lookup_elem(&sl_svc4_v1, &key);
	if (!svc || !(svc->flags & SL_SVC_F_NODEPORT))
		return 1;
	sl_count(SL_R_BIND_NODEPORT);
	bpf_set_retval(-SL_EADDRINUSE);
	return 0;
}
