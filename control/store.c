// SPDX-License-Identifier: Apache-2.0
/*
 * The backend-independent half of the API server's store (see store.h):
 * option defaults, backend selection, txn validation, the notify eventfd and
 * store_dispatch(), which turns finished batches into events (in revision
 * order) and then completion callbacks, all on the owner's thread.
 *
 * Level-triggered notify fd: the eventfd counter is non-zero exactly while
 * the ready list is non-empty. Producers append and, if the list was empty,
 * write 1; store_dispatch() takes the whole list and reads the counter back
 * to zero, both under the same mutex, so a poller never sees a readable fd
 * with nothing to do, nor an idle fd with work queued.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "store_internal.h"
#include "sluice/err.h"
#include "sluice/log.h"

#define STORE_DEFAULT_RETAIN	10000
#define STORE_DEFAULT_COMPACT_S 60

/* --- kv helpers -------------------------------------------------------------- */

void store_kv_free(struct store_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	free(kv);
}

struct store_kv *store_kv_make(const char *key, size_t key_len, const void *value, size_t value_len,
			       int64_t create_rev, int64_t mod_rev, int64_t version)
{
	struct store_kv *kv = calloc(1, sizeof(*kv));

	if (!kv)
		return NULL;
	kv->key = malloc(key_len + 1);
	if (!kv->key)
		goto fail;
	memcpy(kv->key, key, key_len);
	kv->key[key_len] = '\0';
	if (value) {
		/* Always NUL-terminated so JSON values can be used as strings. */
		kv->value = malloc(value_len + 1);
		if (!kv->value)
			goto fail;
		if (value_len)
			memcpy(kv->value, value, value_len);
		kv->value[value_len] = '\0';
		kv->value_len = value_len;
	}
	kv->create_rev = create_rev;
	kv->mod_rev = mod_rev;
	kv->version = version;
	return kv;
fail:
	store_kv_free(kv);
	errno = ENOMEM;
	return NULL;
}

struct store_kv *store_kv_dup(const struct store_kv *kv)
{
	if (!kv) {
		errno = EINVAL;
		return NULL;
	}
	return store_kv_make(kv->key, strlen(kv->key), kv->value, kv->value_len, kv->create_rev,
			     kv->mod_rev, kv->version);
}

void store_txn_fini(struct store_txn *txn)
{
	if (!txn)
		return;
	store_kv_free(txn->cur);
	txn->cur = NULL;
}

char *store_prefix_end(const char *prefix, bool *oom)
{
	size_t n = strlen(prefix);
	char *end;

	*oom = false;
	/* Drop trailing 0xff bytes: nothing sorts between "a\xff..." and "b". */
	while (n && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (!n)
		return NULL;
	end = strndup(prefix, n);
	if (!end) {
		*oom = true;
		return NULL;
	}
	end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	return end;
}

/* --- batches ----------------------------------------------------------------- */

struct store_batch *store_batch_new(size_t cap)
{
	struct store_batch *b = calloc(1, sizeof(*b) + cap * sizeof(b->res[0]));

	if (b)
		b->cap = cap;
	return b;
}

void store_batch_free(struct store_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		store_kv_free(b->res[i].cur);
		store_kv_free(b->res[i].prev);
	}
	free(b);
}

void store_batch_ready(struct store *s, struct store_batch *b)
{
	uint64_t one = 1;
	bool was_empty;

	/* Counted before queuing: once queued, b belongs to the owner, and a
	 * caller that saw the completion must see it counted. */
	__atomic_add_fetch(&s->st_batches, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->st_txns, b->n, __ATOMIC_RELAXED);
	b->next = NULL;
	pthread_mutex_lock(&s->lock);
	was_empty = s->ready == NULL;
	*s->ready_tail = b;
	s->ready_tail = &b->next;
	if (was_empty && write(s->efd, &one, sizeof(one)) != sizeof(one))
		/* Only EAGAIN at a counter of 2^64-2 is possible; it stays readable. */
		pr_warn("store", "notify eventfd write failed: %s", strerror(errno));
	pthread_mutex_unlock(&s->lock);
}

/* --- open / close ------------------------------------------------------------ */

struct store *store_open(const struct store_opts *opts, char *err, size_t errlen)
{
	const char *name = opts && opts->backend ? opts->backend : "sqlite";
	const struct store_backend *be;
	struct store *s;
	char dummy[1];
	int rc;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!opts) {
		snprintf(err, errlen, "store: no options given");
		errno = EINVAL;
		return NULL;
	}
	if (!strcmp(name, "memory")) {
		be = &store_backend_memory;
	} else if (!strcmp(name, "sqlite")) {
		be = &store_backend_sqlite;
	} else {
		snprintf(err, errlen, "store: unknown backend '%s' (expected 'sqlite' or 'memory')",
			 name);
		errno = EINVAL;
		return NULL;
	}
	if (opts->retain_revisions < 0 || opts->compact_interval_s < 0) {
		snprintf(err, errlen,
			 "store: retain_revisions and compact_interval_s must be >= 0");
		errno = EINVAL;
		return NULL;
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "store: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->be = be;
	s->efd = -1;
	s->retain = opts->retain_revisions ? opts->retain_revisions : STORE_DEFAULT_RETAIN;
	s->compact_interval_s =
		opts->compact_interval_s ? opts->compact_interval_s : STORE_DEFAULT_COMPACT_S;
	s->sync_full = opts->sync_full;
	s->on_event = opts->on_event;
	s->on_event_arg = opts->on_event_arg;
	s->ready_tail = &s->ready;
	pthread_mutex_init(&s->lock, NULL);
	if (opts->data_dir) {
		s->data_dir = strdup(opts->data_dir);
		if (!s->data_dir) {
			snprintf(err, errlen, "store: out of memory");
			rc = -ENOMEM;
			goto fail;
		}
	}
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		rc = -errno;
		snprintf(err, errlen, "store: eventfd failed: %s", strerror(errno));
		goto fail;
	}
	rc = be->open(s, err, errlen);
	if (rc < 0)
		goto fail;
	return s;
fail:
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->lock);
	free(s->data_dir);
	free(s);
	errno = -rc;
	return NULL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->closing, 1, __ATOMIC_SEQ_CST);
	s->be->drain(s);
	/* Every queued txn finished: deliver the last events and completions.
	 * Callbacks that submit now get -ESHUTDOWN. */
	store_dispatch(s);
	s->be->close(s);
	while (s->ready) {
		/* Only if a callback raced in something after the final dispatch,
		 * which drain() prevents; free rather than leak. */
		struct store_batch *b = s->ready;

		s->ready = b->next;
		store_batch_free(b);
	}
	close(s->efd);
	pthread_mutex_destroy(&s->lock);
	free(s->data_dir);
	free(s);
}

/* --- writes ------------------------------------------------------------------ */

int store_submit(struct store *s, struct store_txn *txn)
{
	if (!s || !txn)
		return -EINVAL;
	if (!txn->key || !txn->key[0]) {
		pr_warn("store", "submit rejected: empty key");
		return -EINVAL;
	}
	switch (txn->op) {
	case STORE_CREATE:
	case STORE_UPDATE:
		if (!txn->value && txn->value_len) {
			pr_warn("store", "'%s': submit rejected: NULL value with length %zu",
				txn->key, txn->value_len);
			return -EINVAL;
		}
		break;
	case STORE_DELETE:
		break;
	default:
		pr_warn("store", "'%s': submit rejected: unknown op %d", txn->key, (int)txn->op);
		return -EINVAL;
	}
	if (txn->expect_rev < 0) {
		pr_warn("store", "'%s': submit rejected: negative expect_rev", txn->key);
		return -EINVAL;
	}
	if (__atomic_load_n(&s->closing, __ATOMIC_SEQ_CST))
		return -ESHUTDOWN;
	txn->err = 0;
	txn->rev = 0;
	txn->next = NULL;
	return s->be->submit(s, txn);
}

int store_notify_fd(const struct store *s)
{
	return s ? s->efd : -1;
}

int store_dispatch(struct store *s)
{
	struct store_batch *list, *b;
	uint64_t cnt;
	int done = 0;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	list = s->ready;
	s->ready = NULL;
	s->ready_tail = &s->ready;
	if (list && read(s->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		pr_warn("store", "notify eventfd read failed: %s", strerror(errno));
	pthread_mutex_unlock(&s->lock);

	/* Batches are queued in commit order and revisions inside a batch are
	 * ascending, so walking the list yields events in revision order. All
	 * events go out before any completion (read-your-writes for whatever
	 * the event callback feeds). */
	for (b = list; b; b = b->next) {
		for (size_t i = 0; i < b->n; i++) {
			struct store_result *r = &b->res[i];
			struct store_event ev;

			if (r->err)
				continue;
			if (s->on_event) {
				ev.type =
					r->txn->op == STORE_DELETE ? STORE_EV_DELETE : STORE_EV_PUT;
				ev.kv = r->cur;
				ev.prev = r->prev;
				ev.hint = r->txn->hint;
				s->on_event(&ev, s->on_event_arg);
			}
			__atomic_store_n(&s->rev, r->rev, __ATOMIC_RELEASE);
		}
	}
	while (list) {
		b = list;
		list = b->next;
		for (size_t i = 0; i < b->n; i++) {
			struct store_result *r = &b->res[i];
			struct store_txn *txn = r->txn;

			/* The previous result (if the txn is being reused) is
			 * freed only now: its bytes may have been the request. */
			store_kv_free(txn->cur);
			txn->cur = r->cur;
			r->cur = NULL;
			txn->err = r->err;
			txn->rev = r->err ? 0 : r->rev;
			store_kv_free(r->prev);
			r->prev = NULL;
			r->txn = NULL;
			done++;
			/* The callback may free txn; it is not touched after. */
			if (txn->done)
				txn->done(txn, txn->done_arg);
		}
		free(b);
	}
	return done;
}

/* --- reads ------------------------------------------------------------------- */

int64_t store_rev(const struct store *s)
{
	return s ? __atomic_load_n(&s->rev, __ATOMIC_ACQUIRE) : 0;
}

int64_t store_compact_rev(const struct store *s)
{
	return s ? __atomic_load_n(&s->compact_rev, __ATOMIC_ACQUIRE) : 0;
}

int store_get(struct store *s, const char *key, struct store_kv **out)
{
	if (!s || !key || !out)
		return -EINVAL;
	*out = NULL;
	return s->be->get(s, key, out);
}

int store_range(struct store *s, const char *prefix, store_kv_fn fn, void *arg, int64_t *rev)
{
	int64_t dummy;

	if (!s || !fn)
		return -EINVAL;
	return s->be->range(s, prefix ? prefix : "", fn, arg, rev ? rev : &dummy);
}

int store_log_read(struct store *s, int64_t after_rev, store_event_fn fn, void *arg)
{
	if (!s || !fn || after_rev < 0)
		return -EINVAL;
	return s->be->log_read(s, after_rev, fn, arg);
}

int store_compact(struct store *s, int64_t rev)
{
	if (!s || rev < 0)
		return -EINVAL;
	if (__atomic_load_n(&s->closing, __ATOMIC_SEQ_CST))
		return -ESHUTDOWN;
	return s->be->compact(s, rev);
}

int store_check(struct store *s, char *err, size_t errlen)
{
	char dummy[1];

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!s) {
		snprintf(err, errlen, "store: no store");
		return -EINVAL;
	}
	return s->be->check(s, err, errlen);
}

void store_stats_get(const struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	st->batches = __atomic_load_n(&s->st_batches, __ATOMIC_RELAXED);
	st->txns = __atomic_load_n(&s->st_txns, __ATOMIC_RELAXED);
	st->failed_batches = __atomic_load_n(&s->st_failed_batches, __ATOMIC_RELAXED);
	st->compactions = __atomic_load_n(&s->st_compactions, __ATOMIC_RELAXED);
}
