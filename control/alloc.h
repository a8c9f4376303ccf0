/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocators for Service ClusterIPs (from --service-cidr) and NodePorts (from
 * --node-port-range). Bitmaps in memory; the server rebuilds them at startup
 * from the stored Services (the Services are the durable record, like
 * kube-apiserver's repair loop), marks values at admission time before the
 * write commits, and releases them if the write fails or on delete.
 *
 * IPv4 only for now; the API takes strings so IPv6 can follow. Not
 * thread-safe: owned by the server's event loop.
 */
#ifndef SLUICE_CONTROL_ALLOC_H
#define SLUICE_CONTROL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipalloc;
struct portalloc;

/*
 * cidr like "198.18.128.0/20". The network and broadcast addresses are never
 * handed out. Returns NULL and fills err for a malformed CIDR, a prefix
 * outside /8../30, or IPv6 ("IPv6 service CIDRs are not supported yet").
 */
struct ipalloc *ipalloc_new(const char *cidr, char *err, size_t errlen);
void ipalloc_free(struct ipalloc *a);

/* The n-th usable address (n=1 is the first after the network address); the
 * server gives the `kubernetes` Service index 1. */
int ipalloc_nth(const struct ipalloc *a, uint32_t n, char *out, size_t outlen);

/* Next free address (scanning from a rotating cursor so deleted IPs are not
 * immediately reused). 0 or -SL_ERR_EXHAUSTED. */
int ipalloc_next(struct ipalloc *a, char *out, size_t outlen);
/* Reserve a specific address: 0, -EINVAL (not an IPv4 address), -ERANGE (not in
 * the CIDR or network/broadcast), -EEXIST (in use). */
int ipalloc_take(struct ipalloc *a, const char *ip);
/* Releases; unknown or out-of-range addresses are ignored. */
void ipalloc_release(struct ipalloc *a, const char *ip);
bool ipalloc_in_use(const struct ipalloc *a, const char *ip);
const char *ipalloc_cidr(const struct ipalloc *a);
uint32_t ipalloc_used(const struct ipalloc *a);
uint32_t ipalloc_size(const struct ipalloc *a);

/* "30000-32767"; NULL with err for bad syntax or lo > hi or outside 1..65535. */
struct portalloc *portalloc_new(const char *range, char *err, size_t errlen);
void portalloc_free(struct portalloc *a);
int portalloc_next(struct portalloc *a, int *port); /* 0 or -SL_ERR_EXHAUSTED */
int portalloc_take(struct portalloc *a, int port);  /* 0, -ERANGE, -EEXIST */
void portalloc_release(struct portalloc *a, int port);
bool portalloc_in_use(const struct portalloc *a, int port);
void portalloc_range(const struct portalloc *a, int *lo, int *hi);

#endif
