// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for sluice-cni's file-backed IPAM (cni-plugin/cni_ipam.c): allocation order and
 * exclusions, duplicate (containerID, ifname), exhaustion and reuse, release idempotence,
 * legacy id-only files, GC against a valid-attachments list, and no duplicate address under
 * concurrent allocation from threads and from processes.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cni.h"
#include "cni_ipam.h"
#include "harness.h"
#include "sluice/err.h"

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void tmp_rm(const char *dir)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A store in a fresh temp dir for subnet (prefix len given), default range/gateway. */
static int ipam_setup(struct cni_ipam_conf *c, char *dir, const char *subnet)
{
	uint32_t net;
	int prefix;

	/* Zeroed before anything can fail, so no error path leaves it undefined. */
	memset(c, 0, sizeof(*c));
	strcpy(dir, "/tmp/sluice-test-ipam.XXXXXX");
	if (!mkdtemp(dir))
		return errno ? -errno : -EIO;
	if (cni_cidr_parse(subnet, &net, &prefix)) {
		rmdir(dir);
		return -EINVAL;
	}
	c->data_dir = dir;
	c->net = net;
	c->prefix = prefix;
	c->gw = net + 1;
	c->start = net + 1;
	c->end = (net | ~(~0u << (32 - prefix))) - 1;
	return 0;
}

static int count_files(const char *dir, const char *net)
{
	char path[512], cmd[600];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, net);
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^198\\.'", path);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

TEST(ipam_alloc_order_and_exclusions)
{
	struct cni_ipam_conf c;
	char dir[64], a[16];
	uint32_t ip = 0, ip2 = 0;
	int err;

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	err = cni_ipam_alloc(&c, "net1", "c1", "eth0", &ip);
	if (!ASSERT_OK(err, "alloc c1"))
		goto out;
	/* .0 is the network, .1 the gateway: the first pod gets .2 */
	ASSERT_STREQ(cni_ip_str(ip, a), "198.18.64.2", "first address");
	err = cni_ipam_alloc(&c, "net1", "c2", "eth0", &ip2);
	ASSERT_OK(err, "alloc c2");
	ASSERT_STREQ(cni_ip_str(ip2, a), "198.18.64.3", "second address");
	/* The same container on another interface is a different attachment. */
	err = cni_ipam_alloc(&c, "net1", "c1", "eth1", &ip2);
	ASSERT_OK(err, "alloc c1/eth1");
	ASSERT_STREQ(cni_ip_str(ip2, a), "198.18.64.4", "third address");
	/* Separate networks have separate stores. */
	err = cni_ipam_alloc(&c, "net2", "c1", "eth0", &ip2);
	ASSERT_OK(err, "alloc other network");
	ASSERT_STREQ(cni_ip_str(ip2, a), "198.18.64.2", "other network starts fresh");
	ASSERT_ERR(cni_ipam_alloc(&c, "../x", "c9", "eth0", &ip2), "network name with a slash");
out:
	tmp_rm(dir);
}

TEST(ipam_duplicate_find_release)
{
	struct cni_ipam_conf c;
	uint32_t ip = 0, dup = 0, found = 0;
	unsigned n = 9;
	char dir[64];

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	if (!ASSERT_OK(cni_ipam_alloc(&c, "n", "c1", "eth0", &ip), "alloc"))
		goto out;
	ASSERT_EQ(cni_ipam_alloc(&c, "n", "c1", "eth0", &dup), -EEXIST, "duplicate refused");
	ASSERT_EQ(dup, ip, "duplicate names the held address");
	ASSERT_OK(cni_ipam_find(&c, "n", "c1", "eth0", &found), "find");
	ASSERT_EQ(found, ip, "find returns it");
	ASSERT_EQ(cni_ipam_find(&c, "n", "c1", "eth1", &found), -ENOENT, "other ifname");
	ASSERT_OK(cni_ipam_release(&c, "n", "c2", "eth0", &n), "release unknown");
	ASSERT_EQ(n, 0, "nothing released for an unknown id");
	ASSERT_OK(cni_ipam_release(&c, "n", "c1", "eth0", &n), "release");
	ASSERT_EQ(n, 1, "one released");
	ASSERT_OK(cni_ipam_release(&c, "n", "c1", "eth0", &n), "release again");
	ASSERT_EQ(n, 0, "second release is a no-op");
	ASSERT_EQ(cni_ipam_find(&c, "n", "c1", "eth0", &found), -ENOENT, "gone");
	/* Round robin: the freed .2 is not reused at once. */
	ASSERT_OK(cni_ipam_alloc(&c, "n", "c3", "eth0", &found), "alloc after release");
	ASSERT_NEQ(found, ip, "cursor moves on");
out:
	tmp_rm(dir);
}

TEST(ipam_exhaustion_and_reuse)
{
	struct cni_ipam_conf c;
	uint32_t ip, seen[8];
	char dir[64], id[16];
	size_t nfree = 99;
	int i, j;

	/* /29: .0 network, .7 broadcast, .1 gateway: 5 pod addresses. */
	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.8/29"), "setup"))
		return;
	ASSERT_OK(cni_ipam_free_count(&c, "n", &nfree), "free count");
	ASSERT_EQ(nfree, 5, "5 free");
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		if (!ASSERT_OK(cni_ipam_alloc(&c, "n", id, "eth0", &seen[i]), "alloc"))
			goto out;
		ASSERT_TRUE(seen[i] > c.net + 1 && seen[i] < c.net + 7, "inside, not gw/bcast");
		for (j = 0; j < i; j++)
			ASSERT_NEQ(seen[i], seen[j], "distinct");
	}
	ASSERT_EQ(cni_ipam_alloc(&c, "n", "c9", "eth0", &ip), -SL_ERR_EXHAUSTED, "exhausted");
	ASSERT_OK(cni_ipam_free_count(&c, "n", &nfree), "free count full");
	ASSERT_EQ(nfree, 0, "0 free");
	ASSERT_OK(cni_ipam_release(&c, "n", "c2", "eth0", NULL), "release c2");
	ASSERT_OK(cni_ipam_alloc(&c, "n", "c9", "eth0", &ip), "alloc after release");
	ASSERT_EQ(ip, seen[2], "gets the freed address");
out:
	tmp_rm(dir);
}

TEST(ipam_range_and_gateway)
{
	struct cni_ipam_conf c;
	uint32_t ip;
	char dir[64], a[16];

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	c.gw = c.net + 11;
	c.start = c.net + 10;
	c.end = c.net + 12;
	ASSERT_OK(cni_ipam_alloc(&c, "n", "a", "eth0", &ip), "a");
	ASSERT_STREQ(cni_ip_str(ip, a), "198.18.64.10", "rangeStart");
	ASSERT_OK(cni_ipam_alloc(&c, "n", "b", "eth0", &ip), "b");
	ASSERT_STREQ(cni_ip_str(ip, a), "198.18.64.12", "gateway skipped");
	ASSERT_EQ(cni_ipam_alloc(&c, "n", "c", "eth0", &ip), -SL_ERR_EXHAUSTED, "range full");
	tmp_rm(dir);
}

TEST(ipam_gc)
{
	struct cni_attachment keep[] = {{"c2", "eth0"}};
	struct cni_ipam_conf c;
	uint32_t ip;
	unsigned n = 0;
	char dir[64], path[128];
	FILE *f;

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	ASSERT_OK(cni_ipam_alloc(&c, "n", "c1", "eth0", &ip), "c1");
	ASSERT_OK(cni_ipam_alloc(&c, "n", "c2", "eth0", &ip), "c2");
	ASSERT_OK(cni_ipam_alloc(&c, "n", "c2", "eth1", &ip), "c2/eth1");
	/* A host-local style legacy file with only the id, and garbage that is not an IP. */
	snprintf(path, sizeof(path), "%s/n/198.18.64.200", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("c7", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/n/notes.txt", dir);
	f = fopen(path, "w");
	if (f)
		fclose(f);
	ASSERT_OK(cni_ipam_gc(&c, "n", keep, 1, NULL, NULL, &n), "gc");
	ASSERT_EQ(n, 3, "c1, c2/eth1 and the legacy file released");
	ASSERT_OK(cni_ipam_find(&c, "n", "c2", "eth0", &ip), "kept one survives");
	ASSERT_EQ(cni_ipam_find(&c, "n", "c1", "eth0", &ip), -ENOENT, "c1 gone");
	ASSERT_EQ(access(path, F_OK), 0, "non-reservation files untouched");
	ASSERT_OK(cni_ipam_gc(&c, "n", NULL, 0, NULL, NULL, &n), "gc empty list");
	ASSERT_EQ(n, 1, "empty list releases everything");
	ASSERT_EQ(count_files(dir, "n"), 0, "store empty");
	tmp_rm(dir);
}

TEST(ipam_legacy_release)
{
	struct cni_ipam_conf c;
	char dir[64], path[128];
	unsigned n = 0;
	FILE *f;

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	ASSERT_OK(cni_ipam_free_count(&c, "n", &(size_t){0}), "create store");
	snprintf(path, sizeof(path), "%s/n/198.18.64.9", dir);
	f = fopen(path, "w");
	if (!ASSERT_NOT_NULL(f, "write legacy"))
		goto out;
	fputs("legacy\r\neth0\r\n", f); /* host-local's CRLF form */
	fclose(f);
	ASSERT_OK(cni_ipam_release(&c, "n", "legacy", "eth0", &n), "release");
	ASSERT_EQ(n, 1, "CRLF owner file matched");
out:
	tmp_rm(dir);
}

#define THREADS	   16
#define PER_THREAD 8

struct alloc_arg {
	struct cni_ipam_conf *c;
	int t;
	uint32_t ips[PER_THREAD];
	int err;
};

static void *alloc_thread(void *p)
{
	struct alloc_arg *a = p;
	char id[32];
	int i, err;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof(id), "t%d-%d", a->t, i);
		err = cni_ipam_alloc(a->c, "n", id, "eth0", &a->ips[i]);
		if (err && !a->err)
			a->err = err;
	}
	return NULL;
}

TEST(ipam_concurrent_threads)
{
	struct alloc_arg args[THREADS];
	pthread_t th[THREADS];
	struct cni_ipam_conf c;
	static uint8_t seen[256];
	char dir[64];
	int i, j, dups = 0;

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < THREADS; i++) {
		args[i] = (struct alloc_arg){.c = &c, .t = i};
		pthread_create(&th[i], NULL, alloc_thread, &args[i]);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < THREADS; i++) {
		ASSERT_OK(args[i].err, "thread alloc");
		for (j = 0; j < PER_THREAD; j++)
			if (seen[args[i].ips[j] & 0xff]++)
				dups++;
	}
	ASSERT_EQ(dups, 0, "no address handed out twice");
	ASSERT_EQ(count_files(dir, "n"), THREADS * PER_THREAD, "one file per allocation");
	tmp_rm(dir);
}

TEST(ipam_concurrent_processes)
{
	struct cni_ipam_conf c;
	pid_t pids[8];
	char dir[64], id[32];
	uint32_t ip;
	int i, j, st, bad = 0;

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/25"), "setup"))
		return;
	for (i = 0; i < 8; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			int fail = 0;

			for (j = 0; j < 15; j++) {
				snprintf(id, sizeof(id), "p%d-%d", i, j);
				fail |= cni_ipam_alloc(&c, "n", id, "eth0", &ip) != 0;
			}
			_exit(fail);
		}
	}
	for (i = 0; i < 8; i++)
		if (pids[i] < 0 || waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			bad++;
	ASSERT_EQ(bad, 0, "every child allocated 15");
	/* 120 distinct files in a /25 (125 usable) prove no two children shared one. */
	ASSERT_EQ(count_files(dir, "n"), 120, "120 distinct reservations");
	/* 5 left; the 6th allocation must fail cleanly. */
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "last%d", i);
		ASSERT_OK(cni_ipam_alloc(&c, "n", id, "eth0", &ip), "fill");
	}
	ASSERT_EQ(cni_ipam_alloc(&c, "n", "over", "eth0", &ip), -SL_ERR_EXHAUSTED, "full");
	tmp_rm(dir);
}

TEST(ipam_store_unusable)
{
	struct cni_ipam_conf c;
	char dir[64], path[128];
	uint32_t ip;
	FILE *f;

	if (!ASSERT_OK(ipam_setup(&c, dir, "198.18.64.0/24"), "setup"))
		return;
	/* dataDir is a regular file: every operation must fail with an errno, not crash. */
	snprintf(path, sizeof(path), "%s/file", dir);
	f = fopen(path, "w");
	if (f)
		fclose(f);
	c.data_dir = path;
	ASSERT_ERR(cni_ipam_alloc(&c, "n", "c1", "eth0", &ip), "alloc on a file");
	ASSERT_ERR(cni_ipam_release(&c, "n", "c1", "eth0", NULL), "release on a file");
	tmp_rm(dir);
}
