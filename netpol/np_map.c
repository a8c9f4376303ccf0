// SPDX-License-Identifier: Apache-2.0
/*
 * A small chained hash table keyed by bytes, for the compiler's object
 * indexes (names, canonical identity keys, rule-set contents, numeric ids).
 * Values are borrowed: the table owns only its key copies. The hash is
 * 64-bit FNV-1a with a final avalanche; it also derives identity, policy
 * and rule-set ids, so it must stay the same across versions that share
 * pinned maps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "np_int.h"

uint64_t np_hash(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	/* FNV-1a's low bits are weak for short keys; mix (splitmix64). */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

static struct np_map_ent *find(const struct np_map *m, const void *key, size_t klen, uint64_t h,
			       struct np_map_ent ***link)
{
	struct np_map_ent **pp;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
		struct np_map_ent *e = *pp;

		if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen)) {
			if (link)
				*link = pp;
			return e;
		}
	}
	return NULL;
}

void *np_map_get(const struct np_map *m, const void *key, size_t klen)
{
	struct np_map_ent *e = find(m, key, klen, np_hash(key, klen, 0), NULL);

	return e ? e->val : NULL;
}

static int grow(struct np_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct np_map_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct np_map_ent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int np_map_put(struct np_map *m, const void *key, size_t klen, void *val)
{
	uint64_t h = np_hash(key, klen, 0);
	struct np_map_ent *e = find(m, key, klen, h, NULL);

	if (e) {
		e->val = val;
		return 0;
	}
	if (m->n + 1 > m->nb && grow(m))
		return -ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	/* +1 so an empty key still gets a distinct allocation. */
	e->key = malloc(klen + 1);
	if (!e->key) {
		free(e);
		return -ENOMEM;
	}
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->hash = h;
	e->val = val;
	e->next = m->b[h & (m->nb - 1)];
	m->b[h & (m->nb - 1)] = e;
	m->n++;
	return 0;
}

void *np_map_del(struct np_map *m, const void *key, size_t klen)
{
	struct np_map_ent **pp = NULL;
	struct np_map_ent *e = find(m, key, klen, np_hash(key, klen, 0), &pp);
	void *val;

	if (!e)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e->key);
	free(e);
	m->n--;
	return val;
}

void np_map_fini(struct np_map *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct np_map_ent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

struct np_map_ent *np_map_next(const struct np_map *m, size_t *bucket, struct np_map_ent *prev)
{
	size_t i;

	if (prev && prev->next)
		return prev->next;
	for (i = prev ? *bucket + 1 : 0; i < m->nb; i++) {
		if (m->b[i]) {
			*bucket = i;
			return m->b[i];
		}
	}
	return NULL;
}
