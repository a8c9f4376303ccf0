// SPDX-License-Identifier: Apache-2.0
/*
 * Loader and driver of the socket-termination iterators (see sockterm.h).
 * The iterator programs are attached once (one BPF link each, not pinned:
 * they only run when read). Each call puts the removed backends into the
 * object's target set, then per network namespace creates an iterator
 * instance (bpf_iter_create binds it to the calling thread's netns) and reads
 * it to EOF, which runs the program over every socket; then empties the set.
 * The programs count into the mmap'ed .bss, read back for the stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice/log.h"

#include "abi/lb.h"
#include "abi/sockterm.h"
#include "sockterm.h"
#include "iter_sock_term.skel.h"

#define ST_LOG "sockterm"

struct sockterm {
	struct iter_sock_term *skel;
	struct bpf_link *tcp_link;
	struct bpf_link *udp_link;
	char root[PATH_MAX];
};

static void st_fd_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

struct sockterm *sockterm_open(const char *pin_root)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	char path[PATH_MAX + 32];
	struct sockterm *st;
	int err;

	if (!pin_root || !pin_root[0]) {
		pr_err(ST_LOG, "open: a pin root is required");
		errno = EINVAL;
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", pin_root, SL_MAP_SOCK_REV4);
	if (access(path, F_OK)) {
		err = -errno;
		pr_err(ST_LOG, "map '%s': not pinned (%s): open the socket LB (dp_open) first",
		       path, strerror(-err));
		errno = -err;
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		errno = ENOMEM;
		return NULL;
	}
	snprintf(st->root, sizeof(st->root), "%s", pin_root);
	oo.pin_root_path = st->root;
	st->skel = iter_sock_term__open_opts(&oo);
	if (!st->skel) {
		err = -errno;
		pr_err(ST_LOG, "'%s': BPF object open failed: %s", pin_root, strerror(-err));
		goto fail;
	}
	err = iter_sock_term__load(st->skel);
	if (err) {
		pr_err(ST_LOG,
		       "'%s': BPF load failed: %s (needs kernel >= 6.5: iter/tcp, iter/udp and the "
		       "bpf_sock_destroy kfunc)",
		       pin_root, strerror(-err));
		if (err == -EINVAL || err == -ENOENT || err == -ESRCH)
			err = -ENOTSUP;
		goto fail;
	}
	st->tcp_link = bpf_program__attach_iter(st->skel->progs.sl_iter_tcp_term, NULL);
	if (!st->tcp_link) {
		err = -errno;
		pr_err(ST_LOG, "program 'sl_iter_tcp_term': attach failed: %s", strerror(-err));
		goto fail;
	}
	st->udp_link = bpf_program__attach_iter(st->skel->progs.sl_iter_udp_term, NULL);
	if (!st->udp_link) {
		err = -errno;
		pr_err(ST_LOG, "program 'sl_iter_udp_term': attach failed: %s", strerror(-err));
		goto fail;
	}
	return st;
fail:
	sockterm_close(st);
	errno = -err;
	return NULL;
}

void sockterm_close(struct sockterm *st)
{
	if (!st)
		return;
	bpf_link__destroy(st->tcp_link);
	bpf_link__destroy(st->udp_link);
	iter_sock_term__destroy(st->skel);
	free(st);
}

/* Creates an iterator instance in the current netns and runs it to EOF. */
static int st_iter_run(struct bpf_link *link)
{
	char buf[256];
	ssize_t n;
	int fd, err = 0;

	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		return -errno;
	/* The programs print nothing; each read runs them over a batch of
	 * sockets until the walk ends (0). */
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			break;
		}
	}
	close(fd);
	return err;
}

/* Runs the walks (links that are not NULL) in the netns of fd (-1: the
 * current one), switching the calling thread there and back. self is the
 * caller's netns. */
static int st_walk_netns(struct bpf_link *const links[2], int fd, int self, bool *stranded)
{
	int err = 0, err2;

	if (fd >= 0 && setns(fd, CLONE_NEWNET)) {
		err = -errno;
		pr_warn(ST_LOG, "netns fd %d: setns failed: %s", fd, strerror(-err));
		return err;
	}
	for (int i = 0; i < 2 && !err; i++) {
		if (!links[i])
			continue;
		err = st_iter_run(links[i]);
		if (err)
			pr_warn(ST_LOG, "netns fd %d: %s socket walk failed: %s", fd,
				i ? "UDP" : "TCP", strerror(-err));
	}
	if (fd >= 0 && setns(self, CLONE_NEWNET)) {
		/* Staying in a pod netns would be far worse than any failed
		 * walk: say so loudly (the caller's next netns call fails too). */
		err2 = -errno;
		pr_err(ST_LOG, "netns: switching back to the agent's netns failed: %s",
		       strerror(-err2));
		*stranded = true;
		return err2;
	}
	return err;
}

/* One run over at most SL_TERM_MAX_TARGETS targets: fill the set, walk every
 * netns, empty the set. Adds to s; returns the first netns error. */
static int st_run(struct sockterm *st, const struct sockterm_target *t, size_t n,
		  const int *netns_fds, size_t n_netns, int self, struct sockterm_stats *s,
		  bool *stranded)
{
	int map_fd = bpf_map__fd(st->skel->maps.sl_term_targets);
	struct bpf_link *links[2] = {NULL, NULL};
	int err = 0, first_err = 0;
	size_t added = 0;
	__u32 zero = 0;

	for (size_t i = 0; i < n; i++) {
		struct sl_term_key k = {.addr = t[i].addr, .port = t[i].port, .proto = t[i].proto};

		if (t[i].proto != IPPROTO_TCP && t[i].proto != IPPROTO_UDP)
			continue; /* counted by the caller */
		if (bpf_map_update_elem(map_fd, &k, &zero, BPF_ANY)) {
			err = -errno;
			pr_err(ST_LOG, "map 'sl_term_targets': update failed: %s", strerror(-err));
			goto out;
		}
		added++;
		links[t[i].proto == IPPROTO_UDP] =
			t[i].proto == IPPROTO_UDP ? st->udp_link : st->tcp_link;
	}
	if (!added)
		goto out;
	for (size_t i = 0; i <= n_netns; i++) {
		int fd = i ? netns_fds[i - 1] : -1;

		if (i && fd < 0)
			continue;
		err = st_walk_netns(links, fd, self, stranded);
		if (!err) {
			s->netns_done++;
			continue;
		}
		s->netns_fails++;
		if (!first_err)
			first_err = err;
		/* Could not get back home: walk nothing more from the wrong netns. */
		if (*stranded)
			break;
	}
	err = first_err;
out:
	/* Empty the set: a stale target would match on the next run. */
	for (size_t i = 0; i < n; i++) {
		struct sl_term_key k = {.addr = t[i].addr, .port = t[i].port, .proto = t[i].proto};

		bpf_map_delete_elem(map_fd, &k);
	}
	return err;
}

int sockterm_backends_gone(struct sockterm *st, const struct sockterm_target *t, size_t n,
			   const int *netns_fds, size_t n_netns, struct sockterm_stats *stats)
{
	struct sockterm_stats s = {};
	size_t supported = 0;
	__u64 m0, d0, f0;
	int self = -1, err = 0, first_err = 0;
	bool stranded = false;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st || (n && !t) || (n_netns && !netns_fds))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].addr || !t[i].port) {
			pr_err(ST_LOG, "backend %zu of %zu: address and port are required", i, n);
			return -EINVAL;
		}
		supported += t[i].proto == IPPROTO_TCP || t[i].proto == IPPROTO_UDP;
	}
	if (n && !supported) {
		pr_debug(ST_LOG, "%zu backends: no socket iterator for their protocol", n);
		return -EOPNOTSUPP;
	}
	if (!n)
		return 0;
	if (n_netns) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0) {
			err = -errno;
			pr_err(ST_LOG, "netns: opening the agent's own netns failed: %s",
			       strerror(-err));
			return err;
		}
	}
	m0 = st->skel->bss->st_matched;
	d0 = st->skel->bss->st_destroyed;
	f0 = st->skel->bss->st_failed;
	st->skel->bss->st_last_err = 0;
	for (size_t off = 0; off < n && !stranded; off += SL_TERM_MAX_TARGETS) {
		size_t len = n - off < SL_TERM_MAX_TARGETS ? n - off : SL_TERM_MAX_TARGETS;
		struct sockterm_stats part = {};

		err = st_run(st, t + off, len, netns_fds, n_netns, self, &part, &stranded);
		if (err && !first_err)
			first_err = err;
		/* Namespaces count once, however many runs the list took. */
		s.netns_done = part.netns_done;
		s.netns_fails = part.netns_fails > s.netns_fails ? part.netns_fails : s.netns_fails;
	}
	s.matched = (__u32)(st->skel->bss->st_matched - m0);
	s.destroyed = (__u32)(st->skel->bss->st_destroyed - d0);
	s.failed = (__u32)(st->skel->bss->st_failed - f0);
	s.last_err = (int)st->skel->bss->st_last_err;
	st_fd_close(self);
	if (s.matched) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &t[0].addr, a, sizeof(a));
		pr_info(ST_LOG,
			"%zu removed backend(s) (first %s:%u): destroyed %u of %u sockets "
			"translated "
			"to them (%u netns)",
			n, a, ntohs(t[0].port), s.destroyed, s.matched, s.netns_done);
	}
	if (s.failed)
		pr_warn(ST_LOG, "%u sockets could not be destroyed: %s", s.failed,
			strerror(-s.last_err));
	if (stats)
		*stats = s;
	return first_err;
}

int sockterm_backend_gone(struct sockterm *st, __be32 addr, __be16 port, __u8 proto,
			  const int *netns_fds, size_t n_netns, struct sockterm_stats *stats)
{
	struct sockterm_target t = {.addr = addr, .port = port, .proto = proto};

	return sockterm_backends_gone(st, &t, 1, netns_fds, n_netns, stats);
}
