// SPDX-License-Identifier: Apache-2.0
/*
 * The "memory" store backend, for tests and throw-away clusters: current keys
 * in a sorted array of kv pointers (binary search; store_range walks it in key
 * order), history in an array of log entries indexed by revision. Writes are
 * applied synchronously inside store_submit() but, like the sqlite backend,
 * complete only through store_dispatch(), so code written against one backend
 * behaves the same on the other. History is trimmed as it is written, keeping
 * retain_revisions revisions.
 *
 * One mutex guards everything, so reads may come from any thread. Reads copy
 * what they return and call the caller's function without the lock held, so a
 * callback may submit or read again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "sluice/err.h"
#include "sluice/log.h"

struct mem_log {
	int64_t rev;
	bool deleted;
	struct store_kv *kv;   /* new state; for a delete the last value, mod_rev = rev */
	struct store_kv *prev; /* state before; NULL on create */
};

struct mem {
	pthread_mutex_t lock;
	struct store_kv **cur; /* sorted by key (strcmp) */
	size_t ncur, capcur;
	struct mem_log *log; /* log[head..tail) hold revisions compact_rev+1 .. rev */
	size_t head, tail, caplog;
	int64_t rev; /* last applied revision */
	int64_t compact_rev;
	bool draining;
};

/* First index whose key is >= key. */
static size_t mem_lower_bound(const struct mem *m, const char *key)
{
	size_t lo = 0, hi = m->ncur;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(m->cur[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int mem_reserve(struct mem *m)
{
	if (m->ncur == m->capcur) {
		size_t cap = m->capcur ? m->capcur * 2 : 64;
		struct store_kv **p = realloc(m->cur, cap * sizeof(struct store_kv *));

		if (!p)
			return -ENOMEM;
		m->cur = p;
		m->capcur = cap;
	}
	if (m->tail == m->caplog) {
		size_t live = m->tail - m->head;

		if (m->head >= m->caplog / 2 && m->head) {
			/* Mostly trimmed: slide down instead of growing. */
			memmove(m->log, m->log + m->head, live * sizeof(*m->log));
		} else {
			size_t cap = m->caplog ? m->caplog * 2 : 64;
			struct mem_log *p = realloc(m->log, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			m->log = p;
			m->caplog = cap;
			if (!m->head)
				return 0;
			memmove(m->log, m->log + m->head, live * sizeof(*m->log));
		}
		m->head = 0;
		m->tail = live;
	}
	return 0;
}

static void mem_trim(struct store *s, struct mem *m, int64_t upto)
{
	if (upto <= m->compact_rev)
		return;
	while (m->head < m->tail && m->log[m->head].rev <= upto) {
		store_kv_free(m->log[m->head].kv);
		store_kv_free(m->log[m->head].prev);
		m->head++;
	}
	m->compact_rev = upto;
	__atomic_store_n(&s->compact_rev, upto, __ATOMIC_RELEASE);
	__atomic_add_fetch(&s->st_compactions, 1, __ATOMIC_RELAXED);
}

/*
 * Evaluates and applies one txn under m->lock, filling r. Allocation happens
 * before anything changes, so an -ENOMEM leaves the store as it was.
 */
static void mem_apply(struct store *s, struct mem *m, struct store_txn *txn, struct store_result *r)
{
	size_t i = mem_lower_bound(m, txn->key);
	struct store_kv *old = i < m->ncur && !strcmp(m->cur[i]->key, txn->key) ? m->cur[i] : NULL;
	struct store_kv *nkv = NULL, *logkv = NULL, *logprev = NULL, *res = NULL, *prev = NULL;
	int64_t rev = m->rev + 1;

	if (txn->op == STORE_CREATE && old) {
		r->err = -SL_ERR_EXISTS;
		goto report_cur;
	}
	if (txn->op != STORE_CREATE && !old) {
		r->err = -SL_ERR_NOTFOUND;
		return;
	}
	if (txn->op != STORE_CREATE && txn->expect_rev && txn->expect_rev != old->mod_rev) {
		r->err = -SL_ERR_CONFLICT;
		goto report_cur;
	}
	if (mem_reserve(m))
		goto nomem;

	if (txn->op == STORE_DELETE) {
		/* The deleted state: last value, stamped with the delete rev. */
		res = store_kv_dup(old);
		logkv = store_kv_dup(old);
		logprev = store_kv_dup(old);
		if (!res || !logkv || !logprev)
			goto nomem;
		res->mod_rev = logkv->mod_rev = rev;
		prev = old; /* moves out of the current table into the result */
		memmove(&m->cur[i], &m->cur[i + 1], (m->ncur - i - 1) * sizeof(struct store_kv *));
		m->ncur--;
	} else {
		const char *v = txn->value ? txn->value : "";

		nkv = store_kv_make(txn->key, strlen(txn->key), v, txn->value_len,
				    old ? old->create_rev : rev, rev, old ? old->version + 1 : 1);
		res = store_kv_dup(nkv);
		logkv = store_kv_dup(nkv);
		logprev = old ? store_kv_dup(old) : NULL;
		if (!nkv || !res || !logkv || (old && !logprev))
			goto nomem;
		if (old) {
			prev = old;
			m->cur[i] = nkv;
		} else {
			memmove(&m->cur[i + 1], &m->cur[i],
				(m->ncur - i) * sizeof(struct store_kv *));
			m->cur[i] = nkv;
			m->ncur++;
		}
	}
	m->log[m->tail++] = (struct mem_log){
		.rev = rev,
		.deleted = txn->op == STORE_DELETE,
		.kv = logkv,
		.prev = logprev,
	};
	m->rev = rev;
	r->err = 0;
	r->rev = rev;
	r->cur = res;
	r->prev = prev;
	if (m->rev - m->compact_rev > s->retain)
		mem_trim(s, m, m->rev - s->retain);
	return;

report_cur:
	r->cur = store_kv_dup(old);
	if (!r->cur)
		r->err = -ENOMEM;
	return;
nomem:
	store_kv_free(nkv);
	store_kv_free(res);
	store_kv_free(logkv);
	store_kv_free(logprev);
	r->err = -ENOMEM;
}

static int mem_submit(struct store *s, struct store_txn *txn)
{
	struct mem *m = s->priv;
	struct store_batch *b = store_batch_new(1);

	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	if (m->draining) {
		pthread_mutex_unlock(&m->lock);
		free(b);
		return -ESHUTDOWN;
	}
	b->res[0].txn = txn;
	b->n = 1;
	mem_apply(s, m, txn, &b->res[0]);
	/* Queued under the lock so batches reach dispatch in revision order
	 * even with submitters on several threads. */
	store_batch_ready(s, b);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_open(struct store *s, char *err, size_t errlen)
{
	struct mem *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errlen, "store: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	s->priv = m;
	return 0;
}

static void mem_drain(struct store *s)
{
	struct mem *m = s->priv;

	pthread_mutex_lock(&m->lock);
	m->draining = true;
	pthread_mutex_unlock(&m->lock);
}

static void mem_close(struct store *s)
{
	struct mem *m = s->priv;

	for (size_t i = 0; i < m->ncur; i++)
		store_kv_free(m->cur[i]);
	for (size_t i = m->head; i < m->tail; i++) {
		store_kv_free(m->log[i].kv);
		store_kv_free(m->log[i].prev);
	}
	free(m->cur);
	free(m->log);
	pthread_mutex_destroy(&m->lock);
	free(m);
	s->priv = NULL;
}

static int mem_get(struct store *s, const char *key, struct store_kv **out)
{
	struct mem *m = s->priv;
	size_t i;
	int err = -SL_ERR_NOTFOUND;

	pthread_mutex_lock(&m->lock);
	i = mem_lower_bound(m, key);
	if (i < m->ncur && !strcmp(m->cur[i]->key, key)) {
		*out = store_kv_dup(m->cur[i]);
		err = *out ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

static void kv_array_free(struct store_kv **a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_kv_free(a[i]);
	free(a);
}

static int mem_range(struct store *s, const char *prefix, store_kv_fn fn, void *arg, int64_t *rev)
{
	struct mem *m = s->priv;
	size_t plen = strlen(prefix), first, n = 0, i;
	struct store_kv **snap = NULL;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	first = mem_lower_bound(m, prefix);
	for (i = first; i < m->ncur && !strncmp(m->cur[i]->key, prefix, plen); i++)
		;
	if (i > first) {
		snap = calloc(i - first, sizeof(struct store_kv *));
		if (!snap)
			err = -ENOMEM;
		for (n = 0; snap && first + n < i; n++) {
			snap[n] = store_kv_dup(m->cur[first + n]);
			if (!snap[n]) {
				err = -ENOMEM;
				break;
			}
		}
	}
	*rev = m->rev;
	pthread_mutex_unlock(&m->lock);

	for (i = 0; !err && i < n; i++)
		err = fn(snap[i], arg);
	kv_array_free(snap, n);
	return err;
}

static int mem_log_read(struct store *s, int64_t after_rev, store_event_fn fn, void *arg)
{
	struct mem *m = s->priv;
	struct mem_log *snap = NULL;
	size_t n = 0, i, from;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	if (after_rev < m->compact_rev) {
		pthread_mutex_unlock(&m->lock);
		return -SL_ERR_COMPACTED;
	}
	/* log[head] holds compact_rev + 1: revisions are contiguous. */
	from = m->head + (size_t)(after_rev - m->compact_rev);
	if (from < m->tail) {
		snap = calloc(m->tail - from, sizeof(*snap));
		if (!snap)
			err = -ENOMEM;
		for (i = from; snap && i < m->tail; i++, n++) {
			snap[n].rev = m->log[i].rev;
			snap[n].deleted = m->log[i].deleted;
			snap[n].kv = store_kv_dup(m->log[i].kv);
			snap[n].prev = m->log[i].prev ? store_kv_dup(m->log[i].prev) : NULL;
			if (!snap[n].kv || (m->log[i].prev && !snap[n].prev)) {
				n++;
				err = -ENOMEM;
				break;
			}
		}
	}
	pthread_mutex_unlock(&m->lock);

	for (i = 0; !err && i < n; i++) {
		struct store_event ev = {
			.type = snap[i].deleted ? STORE_EV_DELETE : STORE_EV_PUT,
			.kv = snap[i].kv,
			.prev = snap[i].prev,
		};

		fn(&ev, arg);
	}
	for (i = 0; i < n; i++) {
		store_kv_free(snap[i].kv);
		store_kv_free(snap[i].prev);
	}
	free(snap);
	return err;
}

static int mem_compact(struct store *s, int64_t rev)
{
	struct mem *m = s->priv;
	int err = 0;

	pthread_mutex_lock(&m->lock);
	if (rev > m->rev)
		err = -SL_ERR_FUTURE;
	else
		mem_trim(s, m, rev);
	pthread_mutex_unlock(&m->lock);
	return err;
}

static int mem_check(struct store *s, char *err, size_t errlen)
{
	struct mem *m = s->priv;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 1; i < m->ncur && !rc; i++) {
		if (strcmp(m->cur[i - 1]->key, m->cur[i]->key) >= 0) {
			snprintf(err, errlen, "store: keys out of order at '%s'", m->cur[i]->key);
			rc = -EUCLEAN;
		}
	}
	for (size_t i = m->head; i < m->tail && !rc; i++) {
		if (m->log[i].rev != m->compact_rev + 1 + (int64_t)(i - m->head)) {
			snprintf(err, errlen, "store: log revision %" PRId64 " out of sequence",
				 m->log[i].rev);
			rc = -EUCLEAN;
		}
	}
	if (!rc && m->compact_rev + (int64_t)(m->tail - m->head) != m->rev) {
		snprintf(err, errlen, "store: log ends before revision %" PRId64, m->rev);
		rc = -EUCLEAN;
	}
	for (size_t i = 0; i < m->ncur && !rc; i++) {
		const struct store_kv *kv = m->cur[i];
		const struct mem_log *l;

		if (kv->mod_rev > m->rev || kv->create_rev > kv->mod_rev || kv->version < 1) {
			snprintf(err, errlen, "store: '%s': bad revisions", kv->key);
			rc = -EUCLEAN;
			break;
		}
		if (kv->mod_rev <= m->compact_rev)
			continue;
		l = &m->log[m->head + (size_t)(kv->mod_rev - m->compact_rev - 1)];
		if (l->deleted || strcmp(l->kv->key, kv->key) ||
		    l->kv->value_len != kv->value_len ||
		    memcmp(l->kv->value, kv->value, kv->value_len)) {
			snprintf(err, errlen, "store: '%s': current value differs from log",
				 kv->key);
			rc = -EUCLEAN;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

const struct store_backend store_backend_memory = {
	.name = "memory",
	.open = mem_open,
	.submit = mem_submit,
	.drain = mem_drain,
	.close = mem_close,
	.get = mem_get,
	.range = mem_range,
	.log_read = mem_log_read,
	.compact = mem_compact,
	.check = mem_check,
};
