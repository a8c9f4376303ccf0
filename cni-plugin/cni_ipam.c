// SPDX-License-Identifier: Apache-2.0
/*
 * File-backed IPAM for sluice-cni (layout and rules in cni_ipam.h). Each operation opens the
 * store, takes an exclusive flock on its lock file, works, and closes: flock locks belong to
 * the open file description, so two threads of one process that each open the lock exclude
 * each other as two processes do.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni_ipam.h"
#include "sluice/err.h"
#include "sluice/log.h"

#define IPAM_LOCK   "lock"
#define IPAM_CURSOR "last_reserved_ip"

/* An open, locked store. */
struct ipam_store {
	int dir_fd;  /* O_DIRECTORY fd of <dataDir>/<network> */
	int lock_fd; /* holds LOCK_EX until ipam_close() */
};

static void ipam_close(struct ipam_store *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* drops the flock */
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	s->lock_fd = s->dir_fd = -1;
}

/* mkdir -p with 0700 for every component we create. */
static int ipam_mkdirs(const char *path)
{
	char tmp[4096];
	size_t len = strlen(path);
	char *p;

	if (len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int ipam_open(const struct cni_ipam_conf *c, const char *network, struct ipam_store *s)
{
	char path[4096];
	int err;

	s->dir_fd = s->lock_fd = -1;
	if (!network || !network[0] || strchr(network, '/') || !strcmp(network, ".") ||
	    !strcmp(network, ".."))
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->data_dir, network) >= sizeof(path))
		return -ENAMETOOLONG;
	err = ipam_mkdirs(path);
	if (err) {
		pr_err("cni", "ipam store '%s': create failed: %s", path, sl_strerror(err));
		return err;
	}
	s->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		err = -errno;
		goto fail;
	}
	s->lock_fd = openat(s->dir_fd, IPAM_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		err = -errno;
		goto fail;
	}
	while (flock(s->lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			err = -errno;
			goto fail;
		}
	}
	return 0;
fail:
	pr_err("cni", "ipam store '%s': open failed: %s", path, sl_strerror(err));
	ipam_close(s);
	return err;
}

/* Bounded copy; an over-long owner is truncated (it then matches nobody and GC frees it). */
static void ipam_copy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Reads a reservation file: "<id>\n<ifname>\n" (host-local's "\r\n" tolerated; an id-only
 * file has ifname ""). Returns 0 or negative errno. */
static int ipam_read_owner(int dir_fd, const char *name, char *id, size_t idlen, char *ifn,
			   size_t ifnlen)
{
	char buf[1200];
	ssize_t n;
	char *nl;
	int fd;

	id[0] = ifn[0] = '\0';
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	nl = strpbrk(buf, "\r\n");
	if (nl) {
		char *rest = nl + strspn(nl, "\r\n");

		*nl = '\0';
		rest[strcspn(rest, "\r\n")] = '\0';
		ipam_copy(ifn, ifnlen, rest);
	}
	ipam_copy(id, idlen, buf);
	return 0;
}

/* Whether a directory entry names a reservation; fills *ip. */
static bool ipam_entry_ip(const char *name, uint32_t *ip)
{
	if (!strcmp(name, IPAM_LOCK) || !strncmp(name, IPAM_CURSOR, strlen(IPAM_CURSOR)))
		return false;
	return cni_ip_parse(name, ip) == 0;
}

/*
 * Walks the reservations; fn returns 0 to continue, 1 to stop (match found), <0 on error.
 * Returns fn's stop value (1), 0 after a full walk, or a negative errno.
 */
static int ipam_walk(struct ipam_store *s,
		     int (*fn)(struct ipam_store *s, const char *name, uint32_t ip, const char *id,
			       const char *ifn, void *arg),
		     void *arg)
{
	char id[1100], ifn[64];
	struct dirent *de;
	int fd, ret = 0;
	DIR *d;

	fd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((de = readdir(d))) {
		uint32_t ip;

		if (!ipam_entry_ip(de->d_name, &ip))
			continue;
		if (ipam_read_owner(s->dir_fd, de->d_name, id, sizeof(id), ifn, sizeof(ifn)))
			continue; /* vanished or unreadable: not ours to judge here */
		ret = fn(s, de->d_name, ip, id, ifn, arg);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

struct ipam_match {
	const char *id, *ifname;
	uint32_t ip;
	unsigned released;
	int err;
};

static bool ipam_owner_is(const char *id, const char *ifn, const char *want_id,
			  const char *want_ifn)
{
	/* An id-only (legacy) file matches any ifname of that container. */
	return !strcmp(id, want_id) && (!ifn[0] || !strcmp(ifn, want_ifn));
}

static int ipam_find_cb(struct ipam_store *s, const char *name, uint32_t ip, const char *id,
			const char *ifn, void *arg)
{
	struct ipam_match *m = arg;

	if (!ipam_owner_is(id, ifn, m->id, m->ifname))
		return 0;
	m->ip = ip;
	return 1;
}

static int ipam_release_cb(struct ipam_store *s, const char *name, uint32_t ip, const char *id,
			   const char *ifn, void *arg)
{
	struct ipam_match *m = arg;

	if (!ipam_owner_is(id, ifn, m->id, m->ifname))
		return 0;
	if (unlinkat(s->dir_fd, name, 0) && errno != ENOENT) {
		if (!m->err)
			m->err = -errno;
		return 0;
	}
	m->released++;
	return 0;
}

static uint32_t ipam_cursor_read(struct ipam_store *s)
{
	char buf[32] = "";
	uint32_t ip = 0;
	ssize_t n;
	int fd;

	fd = openat(s->dir_fd, IPAM_CURSOR, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n ")] = '\0';
	if (cni_ip_parse(buf, &ip))
		return 0;
	return ip;
}

static void ipam_cursor_write(struct ipam_store *s, uint32_t ip)
{
	char buf[INET_ADDRSTRLEN];
	int fd;

	fd = openat(s->dir_fd, IPAM_CURSOR, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return; /* the cursor is a hint; losing it only changes which address is next */
	cni_ip_str(ip, buf);
	if (write(fd, buf, strlen(buf)) < 0)
		pr_debug("cni", "ipam cursor: write failed: %s", strerror(errno));
	close(fd);
}

/* Creates the reservation file with O_EXCL; -EEXIST when the address is taken. */
static int ipam_reserve(struct ipam_store *s, uint32_t ip, const char *id, const char *ifname)
{
	char name[INET_ADDRSTRLEN], body[1200];
	int fd, len, err = 0;

	cni_ip_str(ip, name);
	len = snprintf(body, sizeof(body), "%s\n%s\n", id, ifname);
	if (len < 0 || (size_t)len >= sizeof(body))
		return -ENAMETOOLONG;
	fd = openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, body, len) != len)
		err = errno ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	if (err)
		unlinkat(s->dir_fd, name, 0); /* a half-written file must not hold the address */
	return err;
}

int cni_ipam_alloc(const struct cni_ipam_conf *c, const char *network, const char *id,
		   const char *ifname, uint32_t *ip)
{
	struct ipam_match m = {.id = id, .ifname = ifname};
	struct ipam_store s;
	uint32_t span, cur, i, cand;
	int err;

	err = ipam_open(c, network, &s);
	if (err)
		return err;
	err = ipam_walk(&s, ipam_find_cb, &m);
	if (err == 1) {
		*ip = m.ip;
		err = -EEXIST;
		goto out;
	}
	if (err < 0)
		goto out;
	span = c->end - c->start + 1;
	cur = ipam_cursor_read(&s);
	if (cur < c->start || cur > c->end)
		cur = c->end; /* next candidate is then c->start */
	err = -SL_ERR_EXHAUSTED;
	for (i = 1; i <= span; i++) {
		cand = c->start + (cur - c->start + i) % span;
		if (cand == c->gw)
			continue;
		err = ipam_reserve(&s, cand, id, ifname);
		if (err == -EEXIST) {
			err = -SL_ERR_EXHAUSTED;
			continue;
		}
		if (err)
			goto out;
		ipam_cursor_write(&s, cand);
		*ip = cand;
		goto out;
	}
out:
	ipam_close(&s);
	return err;
}

int cni_ipam_release(const struct cni_ipam_conf *c, const char *network, const char *id,
		     const char *ifname, unsigned *n)
{
	struct ipam_match m = {.id = id, .ifname = ifname};
	struct ipam_store s;
	int err;

	if (n)
		*n = 0;
	err = ipam_open(c, network, &s);
	if (err)
		return err;
	err = ipam_walk(&s, ipam_release_cb, &m);
	ipam_close(&s);
	if (n)
		*n = m.released;
	return err < 0 ? err : m.err;
}

int cni_ipam_find(const struct cni_ipam_conf *c, const char *network, const char *id,
		  const char *ifname, uint32_t *ip)
{
	struct ipam_match m = {.id = id, .ifname = ifname};
	struct ipam_store s;
	int err;

	err = ipam_open(c, network, &s);
	if (err)
		return err;
	err = ipam_walk(&s, ipam_find_cb, &m);
	ipam_close(&s);
	if (err == 1) {
		*ip = m.ip;
		return 0;
	}
	return err < 0 ? err : -ENOENT;
}

struct ipam_gc {
	const struct cni_attachment *valid;
	size_t n;
	cni_ipam_gc_fn fn;
	void *arg;
	unsigned released;
	int err;
};

static int ipam_gc_cb(struct ipam_store *s, const char *name, uint32_t ip, const char *id,
		      const char *ifn, void *arg)
{
	struct ipam_gc *g = arg;
	size_t i;

	for (i = 0; i < g->n; i++)
		if (ipam_owner_is(id, ifn, g->valid[i].container_id, g->valid[i].ifname))
			return 0;
	if (unlinkat(s->dir_fd, name, 0) && errno != ENOENT) {
		if (!g->err)
			g->err = -errno;
		return 0;
	}
	g->released++;
	if (g->fn)
		g->fn(id, ifn, ip, g->arg);
	return 0;
}

int cni_ipam_gc(const struct cni_ipam_conf *c, const char *network,
		const struct cni_attachment *valid, size_t n, cni_ipam_gc_fn fn, void *arg,
		unsigned *released)
{
	struct ipam_gc g = {.valid = valid, .n = n, .fn = fn, .arg = arg};
	struct ipam_store s;
	int err;

	if (released)
		*released = 0;
	err = ipam_open(c, network, &s);
	if (err)
		return err;
	err = ipam_walk(&s, ipam_gc_cb, &g);
	ipam_close(&s);
	if (released)
		*released = g.released;
	return err < 0 ? err : g.err;
}

static int ipam_count_cb(struct ipam_store *s, const char *name, uint32_t ip, const char *id,
			 const char *ifn, void *arg)
{
	const struct cni_ipam_conf *c = ((void **)arg)[0];
	size_t *used = ((void **)arg)[1];

	if (ip >= c->start && ip <= c->end && ip != c->gw)
		(*used)++;
	return 0;
}

int cni_ipam_free_count(const struct cni_ipam_conf *c, const char *network, size_t *n)
{
	size_t used = 0, total = (size_t)(c->end - c->start) + 1;
	void *arg[2] = {(void *)c, &used};
	struct ipam_store s;
	int err;

	err = ipam_open(c, network, &s);
	if (err)
		return err;
	err = ipam_walk(&s, ipam_count_cb, arg);
	ipam_close(&s);
	if (err < 0)
		return err;
	if (c->gw >= c->start && c->gw <= c->end)
		total--;
	*n = total > used ? total - used : 0;
	return 0;
}
