/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev consistent-hashing lookup tables (Eisenbud et al., NSDI 2016, 3.4),
 * filled into the sl_maglev_v1 map for services flagged SL_SVC_F_MAGLEV.
 *
 * Pure functions, no state, thread-safe. The table depends only on the set of
 * backend names and weights, never on their order or on the per-node ids
 * stored in it: two nodes that list the same backends in any order, with
 * different backends4 ids, get tables that map every slot to the same
 * backend. Together with a cluster-wide flow-hash seed this makes a flow pick
 * the same backend on every node. Removing one of N backends moves only a
 * small fraction of the other backends' slots (minimal disruption).
 */
#ifndef SLUICE_AGENT_MAGLEV_H
#define SLUICE_AGENT_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct maglev_backend {
	const char *name; /* stable identity, e.g. "10.0.0.7:8080/TCP"; decides its permutation */
	uint32_t id;	  /* value written into the table (the node's backends4 index) */
	uint32_t weight;  /* relative share; 0 = not placed */
};

/* True if m is prime (table sizes must be prime so every skip visits every slot). */
bool maglev_is_prime(uint32_t m);

/*
 * Fills table[0..m-1] with backend ids. m must be a prime larger than n (use
 * SL_MAGLEV_M); names must be non-NULL and distinct; at least one weight must
 * be non-zero. Returns 0, -EINVAL for bad arguments (with a message naming
 * the problem), or -ENOMEM. The caller owns table.
 */
int maglev_table_build(const struct maglev_backend *be, size_t n, uint32_t m, uint32_t *table);

#endif
