// SPDX-License-Identifier: Apache-2.0
/*
 * Maglev table generation (see maglev.h). Each backend gets a permutation of
 * the table slots from two hashes of its name (offset, skip); backends take
 * turns claiming their next free preferred slot until the table is full.
 * Turns go in name order, so the result does not depend on input order.
 * Weights use credits: each round a backend earns its weight and places one
 * entry per max_weight credits (Katran's approach), so equal weights reduce
 * to the paper's round robin and shares differ by at most one slot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/maglev.h"
#include "sluice/log.h"

#define MAGLEV_EMPTY UINT32_MAX

bool maglev_is_prime(uint32_t m)
{
	if (m < 2)
		return false;
	if (m % 2 == 0)
		return m == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= m; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

/* FNV-1a 64 then a splitmix64 finalizer keyed by seed: stable across builds and hosts. */
static uint64_t maglev_hash(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h += 0x9e3779b97f4a7c15ULL;
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

static int maglev_cmp(const void *a, const void *b)
{
	const struct maglev_backend *x = *(const struct maglev_backend *const *)a;
	const struct maglev_backend *y = *(const struct maglev_backend *const *)b;

	return strcmp(x->name, y->name);
}

struct maglev_perm {
	uint64_t offset;
	uint64_t skip;
	uint64_t next;	 /* index into this backend's permutation */
	uint64_t credit; /* weight earned, not yet spent on placements */
	uint32_t weight;
	uint32_t id;
};

int maglev_table_build(const struct maglev_backend *be, size_t n, uint32_t m, uint32_t *table)
{
	const struct maglev_backend **order = NULL;
	struct maglev_perm *p = NULL;
	size_t filled = 0;
	uint32_t max_w = 0;
	int err = -EINVAL;

	if (!be || !table || n == 0) {
		pr_err("maglev", "build failed: no backends given");
		return -EINVAL;
	}
	if (!maglev_is_prime(m) || m <= n) {
		pr_err("maglev",
		       "build failed: table size %u must be a prime larger than the %zu backends",
		       m, n);
		return -EINVAL;
	}
	order = calloc(n, sizeof(const struct maglev_backend *));
	p = calloc(n, sizeof(*p));
	if (!order || !p) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!be[i].name) {
			pr_err("maglev", "build failed: backend %zu has no name", i);
			goto out;
		}
		order[i] = &be[i];
		if (be[i].weight > max_w)
			max_w = be[i].weight;
	}
	if (max_w == 0) {
		pr_err("maglev", "build failed: every backend has weight 0");
		goto out;
	}
	qsort(order, n, sizeof(const struct maglev_backend *), maglev_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct maglev_backend *b = order[i];

		if (i > 0 && !strcmp(order[i - 1]->name, b->name)) {
			pr_err("maglev", "build failed: backend name '%s' appears twice", b->name);
			goto out;
		}
		p[i].offset = maglev_hash(b->name, 0x6d61676c65763031ULL) % m;
		p[i].skip = maglev_hash(b->name, 0x736b697076303031ULL) % (m - 1) + 1;
		p[i].weight = b->weight;
		p[i].id = b->id;
	}

	for (uint32_t i = 0; i < m; i++)
		table[i] = MAGLEV_EMPTY;
	while (filled < m) {
		for (size_t i = 0; i < n && filled < m; i++) {
			p[i].credit += p[i].weight;
			while (p[i].credit >= max_w && filled < m) {
				uint64_t c;

				p[i].credit -= max_w;
				do {
					c = (p[i].offset + p[i].next * p[i].skip) % m;
					p[i].next++;
				} while (table[c] != MAGLEV_EMPTY);
				table[c] = p[i].id;
				filled++;
			}
		}
	}
	err = 0;
out:
	free(order);
	free(p);
	return err;
}
