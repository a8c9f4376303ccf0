/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-cni IPAM: a file-backed address store for one node's pod CIDR, modelled on the
 * reference host-local plugin so an operator can read it with ls and cat.
 *
 * Layout under <dataDir>/<network name>/ (created 0700):
 *   lock              flock(LOCK_EX) around every operation: concurrent plugin processes
 *                     (or threads, each with its own open) never hand out the same address
 *   last_reserved_ip  round-robin cursor, so a released address is not reused at once
 *   198.18.64.7       one file per reserved address: "<containerID>\n<ifname>\n"
 * Reservations are keyed by (containerID, ifname), never by pod name, so a slow DEL of an
 * old sandbox cannot free a new sandbox's address. The network, broadcast and gateway
 * addresses are never handed out.
 *
 * Every function takes the lock itself; all return 0 or a negative errno / -SL_ERR_*.
 */
#ifndef SLUICE_CNI_IPAM_H
#define SLUICE_CNI_IPAM_H

#include <stddef.h>
#include <stdint.h>

#include "cni.h"

/*
 * Reserves a free address for (id, ifname) and stores it (host order) in *ip.
 * -EEXIST when the pair already holds one (*ip then names it), -SL_ERR_EXHAUSTED when the
 * range is full, other negative errno on store I/O failure.
 */
int cni_ipam_alloc(const struct cni_ipam_conf *c, const char *network, const char *id,
		   const char *ifname, uint32_t *ip);

/* Releases every address held by (id, ifname); 0 also when there was none. *n (optional)
 * receives the number released. */
int cni_ipam_release(const struct cni_ipam_conf *c, const char *network, const char *id,
		     const char *ifname, unsigned *n);

/* Looks up the address of (id, ifname): 0, or -ENOENT when there is none. */
int cni_ipam_find(const struct cni_ipam_conf *c, const char *network, const char *id,
		  const char *ifname, uint32_t *ip);

/* Called by cni_ipam_gc() for every released reservation (owner may be "" if unreadable). */
typedef void (*cni_ipam_gc_fn)(const char *id, const char *ifname, uint32_t ip, void *arg);

/*
 * Releases every reservation whose (id, ifname) is not in valid[0..n) (an empty list
 * releases everything, as the spec says). Keeps going past per-file errors and returns the
 * first one. *released (optional) counts what was freed.
 */
int cni_ipam_gc(const struct cni_ipam_conf *c, const char *network,
		const struct cni_attachment *valid, size_t n, cni_ipam_gc_fn fn, void *arg,
		unsigned *released);

/* Counts free addresses (for STATUS). */
int cni_ipam_free_count(const struct cni_ipam_conf *c, const char *network, size_t *n);

#endif
