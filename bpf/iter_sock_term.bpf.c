// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket termination on backend removal (kubernetes/kubernetes#125467,
 * cilium's bpf_sock_term.c). The socket LB rewrites a connected socket's
 * destination once, at connect(); when that backend goes away the socket
 * keeps talking to a dead address. A connected UDP client (a DNS resolver)
 * never notices: no RST, no ICMP it reads, just timeouts until it happens to
 * make a new socket.
 *
 * These iterators walk every TCP / UDP socket of the network namespace the
 * iterator was created in, and destroy (bpf_sock_destroy: the kernel's
 * sock_diag SOCK_DESTROY path) each socket that is
 *   - connected to one of the removed backends in sl_term_targets
 *     {addr, port, proto} (one walk serves a whole sync's removals), and
 *   - has a socket-LB reverse record {cookie, backend addr, port} in
 *     sl_sockrev4_v1, i.e. the socket LB translated it to that backend. A
 *     socket that dialled the backend's address directly is left alone.
 * The reverse record is deleted with it. User space (agent/sockterm.c) fills
 * the target set, creates one iterator instance per netns and reads it to
 * EOF; the counters below tell it what happened.
 *
 * Destroyed UDP sockets get sk_err = ECONNABORTED and are disconnected; TCP
 * sockets are reset (RST to the peer) and report ECONNABORTED.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/lb.h"
#include "abi/sockterm.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SL_AF_INET     2
#define SL_IPPROTO_TCP 6
#define SL_IPPROTO_UDP 17

/* TCP states (include/net/tcp_states.h; macros, so not in vmlinux.h). */
#define SL_TCP_TIME_WAIT    6
#define SL_TCP_LISTEN	    10
#define SL_TCP_NEW_SYN_RECV 12

/* kfunc (kernel >= 6.5), callable from iter/tcp and iter/udp only. */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* Shared with the socket LB by pin name: the definition must stay identical
 * to bpf/cgroup_sock_lb.bpf.c's, or libbpf refuses to reuse the pinned map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_SOCK_REV);
	__type(key, struct sl_sock_rev_key);
	__type(value, struct sl_sock_rev_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_sockrev4_v1 SEC(".maps");

/* Removed backends of this run, filled by user space (not pinned: it only
 * matters while the agent runs an iterator). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_TERM_MAX_TARGETS);
	__type(key, struct sl_term_key);
	__type(value, __u32);
} sl_term_targets SEC(".maps");

/* Results of the runs since open (user space reads the difference). */
__u64 st_matched;   /* sockets connected to the target with a reverse record */
__u64 st_destroyed; /* bpf_sock_destroy returned 0 */
__u64 st_failed;    /* bpf_sock_destroy returned an error */
__s64 st_last_err;  /* last such error (negative errno) */

static __always_inline void sl_term(struct sock_common *skc, __u8 proto)
{
	struct sl_sock_rev_key rkey = {};
	struct sl_term_key tkey = {};
	int err;

	if (!skc || skc->skc_family != SL_AF_INET || !skc->skc_daddr)
		return;
	tkey.addr = skc->skc_daddr;
	tkey.port = skc->skc_dport;
	tkey.proto = proto;
	if (!bpf_map_lookup_elem(&sl_term_targets, &tkey))
		return;
	rkey.cookie = bpf_get_socket_cookie(skc);
	rkey.backend_addr = skc->skc_daddr;
	rkey.backend_port = skc->skc_dport;
	if (!bpf_map_lookup_elem(&sl_sockrev4_v1, &rkey))
		return;
	__sync_fetch_and_add(&st_matched, 1);
	err = bpf_sock_destroy(skc);
	if (err) {
		__sync_fetch_and_add(&st_failed, 1);
		st_last_err = err;
		return;
	}
	__sync_fetch_and_add(&st_destroyed, 1);
	bpf_map_delete_elem(&sl_sockrev4_v1, &rkey);
}

SEC("iter/tcp")
int sl_iter_tcp_term(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;

	if (!skc)
		return 0;
	/* Listeners have no peer; TIME_WAIT has nothing left to abort and
	 * request sockets are the server side: only full client sockets. */
	if (skc->skc_state == SL_TCP_LISTEN || skc->skc_state == SL_TCP_TIME_WAIT ||
	    skc->skc_state == SL_TCP_NEW_SYN_RECV)
		return 0;
	sl_term(skc, SL_IPPROTO_TCP);
	return 0;
}

SEC("iter/udp")
int sl_iter_udp_term(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;

	if (!udp)
		return 0;
	sl_term(&udp->inet.sk.__sk_common, SL_IPPROTO_UDP);
	return 0;
}
