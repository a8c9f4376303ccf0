/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket termination on backend removal (bpf/iter_sock_term.bpf.c).
 *
 * The socket LB translates a connected socket once, at connect(). When the
 * backend it chose is removed, the socket would keep sending to a dead
 * address: a connected UDP client (a DNS resolver) times out forever
 * (kubernetes/kubernetes#125467, cilium#12859). sockterm_backend_gone()
 * destroys every TCP or UDP socket connected to the removed backend that the
 * socket LB translated (it has a reverse record in sl_sockrev4_v1), with the
 * kernel's bpf_sock_destroy kfunc (>= 6.5):
 *   - UDP: the socket is disconnected and its next recv()/recvfrom() fails
 *     with ECONNABORTED (once); a send() after that fails with EDESTADDRREQ
 *     (it is no longer connected). connect() again picks a live backend.
 *   - TCP: the connection is reset (RST to the backend); the next read/write
 *     fails with ECONNABORTED.
 * Sockets that dialled the backend's address directly are not touched.
 *
 * Policy is the caller's: kube-proxy flushes only UDP conntrack when an
 * endpoint goes, and established TCP flows drain by themselves (killing them
 * on removal was a user complaint against Cilium: cilium#14844, #10217). So
 * the agent should pass UDP backends by default and TCP ones only on an
 * explicit opt-in; both work.
 *
 * Socket iterators see one network namespace: the one current when the
 * iterator instance is created. The call runs once in the caller's netns and
 * once in each netns fd given (pod netns: the agent opens
 * /var/run/netns/<name> or /proc/<pid>/ns/net), switching the calling
 * thread with setns(2) and switching back before it returns.
 *
 * Not thread-safe (one struct per sync loop); needs CAP_SYS_ADMIN (setns,
 * BPF). Errors are negative errno values, logged under "sockterm".
 */
#ifndef SLUICE_AGENT_SOCKTERM_H
#define SLUICE_AGENT_SOCKTERM_H

#include <stddef.h>
#include <linux/types.h>

struct sockterm;

/*
 * Loads the iterators, sharing <pin_root>/sl_sockrev4_v1 (dp_pin_root() of an
 * open datapath) by pinned name. Returns a handle to free with
 * sockterm_close(), or NULL with errno: EINVAL (NULL pin root), ENOENT (no
 * sl_sockrev4_v1 pinned there: dp_open() first), ENOTSUP (the kernel has no
 * bpf_sock_destroy or no socket iterators), or the libbpf/kernel error.
 */
struct sockterm *sockterm_open(const char *pin_root);

/* Detaches the iterators and frees the handle. Accepts NULL. */
void sockterm_close(struct sockterm *st);

/* What one sockterm_backend_gone() call did, summed over the netns walked. */
struct sockterm_stats {
	__u32 matched;	   /* sockets connected to the backend with a reverse record */
	__u32 destroyed;   /* of those, destroyed */
	__u32 failed;	   /* of those, bpf_sock_destroy failed (last error in last_err) */
	int last_err;	   /* negative errno of the last failed destroy, or 0 */
	__u32 netns_done;  /* namespaces walked */
	__u32 netns_fails; /* namespaces skipped: setns or iterator failed (logged) */
};

/* A removed backend. */
struct sockterm_target {
	__be32 addr; /* network order */
	__be16 port; /* network order */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP (others are skipped) */
};

/*
 * Destroys the sockets translated to any of t[0..n): one walk per protocol
 * per netns for the whole list (a sync that removes 100 backends walks the
 * sockets once, not 100 times). Targets of other protocols are skipped.
 * Returns as sockterm_backend_gone(); -EOPNOTSUPP only when no target is TCP
 * or UDP; n == 0 does nothing and returns 0.
 */
int sockterm_backends_gone(struct sockterm *st, const struct sockterm_target *t, size_t n,
			   const int *netns_fds, size_t n_netns, struct sockterm_stats *stats);

/*
 * Destroys the sockets translated to backend addr:port (network order) of
 * protocol proto (IPPROTO_TCP or IPPROTO_UDP) in the caller's netns and in
 * each of netns_fds[0..n_netns) (may be NULL/0; an fd of -1 is skipped).
 * Call it after dp_backend_remove() for the same backend, so no new socket
 * can be translated to it while the walk runs. stats may be NULL.
 *
 * Returns 0 when every namespace was walked (some sockets may still have
 * failed to be destroyed: see stats), -EINVAL (bad arguments), -EOPNOTSUPP
 * (SCTP or another protocol without a socket iterator: nothing to do), or
 * the first error of a namespace that could not be walked (the others are
 * still walked).
 */
int sockterm_backend_gone(struct sockterm *st, __be32 addr, __be16 port, __u8 proto,
			  const int *netns_fds, size_t n_netns, struct sockterm_stats *stats);

#endif
