// SPDX-License-Identifier: Apache-2.0
/*
 * Socket load balancer end to end: bpf/cgroup_sock_lb.bpf.c loaded and
 * programmed through agent/datapath.h, exercised by real sockets.
 *
 *   test process (host netns, private mount ns with its own bpffs)
 *     │ mkdir <cgroup2>/sluice-test-<pid>-<n>, pin root
 *     │ /sys/fs/bpf/sluice-test-<pid>/sluice/t<n>
 *     └─ child: unshare(CLONE_NEWNET) → fresh netns, only lo up with
 *        │       198.18.10.1-3 (backends), 198.18.0.1 (node, local4)
 *        │       and 198.18.0.2 (assigned, not in local4), all /32
 *        │ joins the cgroup, dp_open() attaches the programs to it
 *        ├─ grandchild: TCP + UDP echo servers on 198.18.10.{1,2,3}:8080
 *        │    answering with their own address
 *        └─ checks: clients dial ClusterIP 198.18.128.10:80 (no route
 *           exists to it: only a translated socket can reach anything)
 *
 * Each TEST is one check with its own cgroup, pin root and netns; the
 * parent tears everything down (cgroup.kill, rmdir, dp_cleanup, rmdir)
 * whatever the child did, and checks nothing stays attached. The host has
 * no bpffs on /sys/fs/bpf, so the test mounts one in a private mount
 * namespace of its own. No dummy driver here: addresses live on lo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "harness.h"
#include "sluice/err.h"
#include "agent/datapath.h"

#define VIP	  "198.18.128.10"
#define VIP_EMPTY "198.18.128.11"
#define NODE_IP	  "198.18.0.1" /* in local4 */
#define OTHER_IP  "198.18.0.2" /* assigned to lo, not in local4 */
#define VPORT	  80
#define BE_PORT	  8080
#define NODEPORT  30080
#define NBE	  3
#define BPFFS	  "/sys/fs/bpf"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static const char *const be_ip[NBE] = {"198.18.10.1", "198.18.10.2", "198.18.10.3"};

static char cg2_root[PATH_MAX / 2];
static int test_seq;

/* --- process-wide setup ------------------------------------------------------------ */

/* A private mount namespace with bpffs on /sys/fs/bpf (when the host has
 * none there), and the cgroup2 mount point. Once per process. */
static int env_init(void)
{
	static int done, result;
	if (done)
		return result;
	done = 1;
	result = -1;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		fprintf(stderr, "  private mount ns: %s\n", strerror(errno));
		return result;
	}
	/* The agent's own helpers: the same code paths sluice-agent uses. */
	if (agent_bpffs_ensure(BPFFS)) {
		fprintf(stderr, "  mount bpffs on %s failed\n", BPFFS);
		return result;
	}
	if (agent_cgroup2_root(cg2_root, sizeof(cg2_root))) {
		fprintf(stderr, "  no cgroup2 mount\n");
		return result;
	}
	result = 0;
	return result;
}

/* --- fixture (parent side) ------------------------------------------------------------ */

struct fx {
	char cg[PATH_MAX];
	char bpffs[PATH_MAX / 2];
	char node[32];
	char root[PATH_MAX + 64];
};

/* Child side: everything a scenario needs. */
struct env {
	struct fx *fx;
	struct dp *dp;
	struct dp_opts opts;
	__u32 tcp_id[NBE], udp_id[NBE];
	pid_t server;
};

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static __u32 cg_prog_count(const char *cg, enum bpf_attach_type type)
{
	__u32 cnt = 0;
	int fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return UINT32_MAX;
	if (bpf_prog_query(fd, type, 0, NULL, NULL, &cnt))
		cnt = UINT32_MAX;
	close(fd);
	return cnt;
}

static bool cg_empty(const char *cg)
{
	char path[PATH_MAX + 32], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n <= 0;
}

/* Tears down whatever exists; checks that nothing stays attached or pinned. */
static void fx_teardown(struct fx *f)
{
	char path[PATH_MAX + 32];
	struct stat st;

	snprintf(path, sizeof(path), "%s/cgroup.kill", f->cg);
	write_file(path, "1");
	for (int i = 0; i < 200 && !cg_empty(f->cg); i++)
		usleep(10000);
	ASSERT_OK(dp_cleanup(f->bpffs, f->node), "dp_cleanup");
	ASSERT_EQ(cg_prog_count(f->cg, BPF_CGROUP_INET4_CONNECT), 0, "connect4 detached");
	ASSERT_EQ(cg_prog_count(f->cg, BPF_CGROUP_UDP4_SENDMSG), 0, "sendmsg4 detached");
	ASSERT_TRUE(stat(f->root, &st) && errno == ENOENT, "pin root removed");
	ASSERT_OK(rmdir(f->cg) ? -errno : 0, "cgroup rmdir");
	rmdir(f->bpffs);
}

/* --- servers (grandchild) -------------------------------------------------------------- */

static int sock_bound(int type, const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, ip, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    (type == SOCK_STREAM && listen(fd, 128))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Echo servers answering with their own address; runs until killed. */
static void server_run(int ready_fd)
{
	struct pollfd p[2 * NBE];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0; i < NBE; i++) {
		p[2 * i].fd = sock_bound(SOCK_STREAM, be_ip[i], BE_PORT);
		p[2 * i + 1].fd = sock_bound(SOCK_DGRAM, be_ip[i], BE_PORT);
		p[2 * i].events = p[2 * i + 1].events = POLLIN;
		if (p[2 * i].fd < 0 || p[2 * i + 1].fd < 0)
			_exit(2);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(2);
	close(ready_fd);
	for (;;) {
		if (poll(p, 2 * NBE, -1) < 0)
			_exit(3);
		for (int i = 0; i < 2 * NBE; i++) {
			const char *me = be_ip[i / 2];
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			char buf[64];

			if (!(p[i].revents & POLLIN))
				continue;
			if (i % 2 == 0) {
				int c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);

				if (c >= 0) {
					if (write(c, me, strlen(me)) < 0)
						_exit(4);
					close(c);
				}
			} else if (recvfrom(p[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
					    &fl) >= 0) {
				sendto(p[i].fd, me, strlen(me), 0, (struct sockaddr *)&from, fl);
			}
		}
	}
}

/* --- clients ----------------------------------------------------------------------- */

static struct sockaddr_in sin_of(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static bool sin_is(const struct sockaddr_in *a, const char *ip, int port)
{
	struct sockaddr_in b = sin_of(ip, port);

	return a->sin_addr.s_addr == b.sin_addr.s_addr && a->sin_port == b.sin_port;
}

static void sock_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 2};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Backend index from a server's answer, or -1. */
static int who_idx(const char *who)
{
	for (int i = 0; i < NBE; i++)
		if (!strcmp(who, be_ip[i]))
			return i;
	return -1;
}

/* TCP connect to ip:port; returns the answering backend index (>= 0) or
 * -errno of connect. peer gets getpeername() when not NULL. */
static int tcp_ask(const char *ip, int port, struct sockaddr_in *peer)
{
	struct sockaddr_in a = sin_of(ip, port);
	socklen_t pl = sizeof(*peer);
	char who[64] = "";
	ssize_t n, got = 0;
	int fd, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sock_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (peer && getpeername(fd, (struct sockaddr *)peer, &pl))
		memset(peer, 0, sizeof(*peer));
	while ((n = read(fd, who + got, sizeof(who) - 1 - got)) > 0)
		got += n;
	close(fd);
	who[got] = '\0';
	ret = who_idx(who);
	return ret >= 0 ? ret : -EPROTO;
}

/* One datagram over fd to ip:port (NULL ip: connected send); returns the
 * answering backend index or -errno; from gets the reply's source. */
static int udp_ask(int fd, const char *ip, int port, struct sockaddr_in *from)
{
	struct sockaddr_in a = ip ? sin_of(ip, port) : (struct sockaddr_in){0};
	struct sockaddr_in f;
	socklen_t fl = sizeof(f);
	char who[64];
	ssize_t n;
	int i;

	n = ip ? sendto(fd, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a))
	       : send(fd, "ping", 4, 0);
	if (n < 0)
		return -errno;
	n = recvfrom(fd, who, sizeof(who) - 1, 0, (struct sockaddr *)&f, &fl);
	if (n < 0)
		return -errno;
	who[n] = '\0';
	if (from)
		*from = f;
	i = who_idx(who);
	return i >= 0 ? i : -EPROTO;
}

static int udp_sock(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0)
		sock_timeouts(fd);
	return fd;
}

/* --- programming helpers (child side) ---------------------------------------------- */

static struct sl_svc_key svc_key(const char *ip, int port, __u8 proto, __u8 scope)
{
	struct sl_svc_key k = {.port = htons(port), .proto = proto, .scope = scope};

	if (ip)
		inet_pton(AF_INET, ip, &k.addr);
	return k;
}

/* Frontend ip:port/proto → the backends listed by index in which[0..n). */
static int svc_set(struct env *e, const char *ip, int port, __u8 proto, __u8 scope, __u16 flags,
		   __u32 aff_s, const int *which, int n)
{
	__u32 ids[NBE];
	struct dp_svc s = {.key = svc_key(ip, port, proto, scope),
			   .flags = flags,
			   .affinity_s = aff_s,
			   .backend_ids = ids,
			   .count = (__u16)n};

	for (int i = 0; i < n; i++)
		ids[i] = proto == IPPROTO_TCP ? e->tcp_id[which[i]] : e->udp_id[which[i]];
	return dp_svc_upsert(e->dp, &s, NULL);
}

static const int all3[NBE] = {0, 1, 2};

static int backends_add(struct env *e)
{
	for (int i = 0; i < NBE; i++) {
		struct sl_backend be = {.port = htons(BE_PORT), .state = SL_BE_ACTIVE};
		int err;

		inet_pton(AF_INET, be_ip[i], &be.addr);
		be.proto = IPPROTO_TCP;
		err = dp_backend_upsert(e->dp, &be, &e->tcp_id[i]);
		if (err)
			return err;
		be.proto = IPPROTO_UDP;
		err = dp_backend_upsert(e->dp, &be, &e->udp_id[i]);
		if (err)
			return err;
	}
	return 0;
}

static int backend_remove(struct env *e, int i, __u8 proto)
{
	struct sockaddr_in a = sin_of(be_ip[i], BE_PORT);

	return dp_backend_remove(e->dp, a.sin_addr.s_addr, a.sin_port, proto);
}

static int pinned_svc_get(struct env *e, const struct sl_svc_key *k, struct sl_svc_val *v)
{
	char path[PATH_MAX + 64];
	int fd, err;

	/* Defined on every path, so a failed read never feeds garbage to an assert. */
	memset(v, 0, sizeof(*v));
	snprintf(path, sizeof(path), "%s/%s", dp_pin_root(e->dp), SL_MAP_SVC4);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_lookup_elem(fd, k, v) ? -errno : 0;
	close(fd);
	return err;
}

/* --- the child ---------------------------------------------------------------------- */

typedef void (*scenario_fn)(struct env *e);

static int child_net_setup(void)
{
	if (unshare(CLONE_NEWNET))
		return -errno;
	return system("ip link set lo up && "
		      "ip addr add 198.18.10.1/32 dev lo && ip addr add 198.18.10.2/32 dev lo && "
		      "ip addr add 198.18.10.3/32 dev lo && ip addr add 198.18.0.1/32 dev lo && "
		      "ip addr add 198.18.0.2/32 dev lo")
		       ? -EIO
		       : 0;
}

static void child_main(struct fx *f, scenario_fn fn)
{
	struct env e = {.fx = f, .server = -1};
	char path[PATH_MAX + 32], pid[32];
	int pfd[2] = {-1, -1};
	char c;

	test_failed_current = 0;
	if (!ASSERT_OK(child_net_setup(), "netns setup"))
		goto out;
	snprintf(path, sizeof(path), "%s/cgroup.procs", f->cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (!ASSERT_OK(write_file(path, pid), "join cgroup"))
		goto out;
	e.opts.bpffs = f->bpffs;
	e.opts.node = f->node;
	e.opts.cgroup = f->cg;
	e.dp = dp_open(&e.opts);
	if (!ASSERT_NOT_NULL(e.dp, "dp_open"))
		goto out;
	if (!ASSERT_OK(backends_add(&e), "backends"))
		goto out;
	if (!ASSERT_OK(pipe2(pfd, O_CLOEXEC), "pipe"))
		goto out;
	e.server = fork();
	if (e.server == 0) {
		close(pfd[0]);
		server_run(pfd[1]);
	}
	close(pfd[1]);
	pfd[1] = -1;
	if (!ASSERT_TRUE(e.server > 0 && read(pfd[0], &c, 1) == 1, "servers ready"))
		goto out;
	fn(&e);
out:
	if (e.server > 0) {
		kill(e.server, SIGKILL);
		waitpid(e.server, NULL, 0);
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	dp_close(e.dp);
	exit(test_failed_current ? 1 : 0);
}

/* Runs fn in a fresh netns + cgroup + pin root; one TAP line per call. */
static void fx_run(scenario_fn fn)
{
	struct fx f = {};
	int status = -1;
	pid_t pid, w = 0;

	if (!ASSERT_OK(env_init(), "bpffs/cgroup2 environment"))
		return;
	test_seq++;
	snprintf(f.cg, sizeof(f.cg), "%s/sluice-test-%d-%d", cg2_root, getpid(), test_seq);
	snprintf(f.bpffs, sizeof(f.bpffs), "%s/sluice-test-%d", BPFFS, getpid());
	snprintf(f.node, sizeof(f.node), "t%d", test_seq);
	snprintf(f.root, sizeof(f.root), "%s/sluice/%s", f.bpffs, f.node);
	if (!ASSERT_OK(mkdir(f.cg, 0755) ? -errno : 0, "cgroup mkdir"))
		return;
	if (mkdir(f.bpffs, 0700) && errno != EEXIST) {
		ASSERT_OK(-errno, "pin dir mkdir");
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child_main(&f, fn);
	if (!ASSERT_TRUE(pid > 0, "fork"))
		goto out;
	/* Bounded wait: every socket has a 2 s timeout, so 60 s means a hang. */
	for (int i = 0; i < 6000 && (w = waitpid(pid, &status, WNOHANG)) == 0; i++)
		usleep(10000);
	ASSERT_NEQ(w, 0, "child finished within 60 s");
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child checks passed");
out:
	fx_teardown(&f);
}

/* --- scenarios ------------------------------------------------------------------------ */

static void sc_connect_reaches_backend(struct env *e)
{
	int r;

	/* Before programming: the VIP has no route at all. */
	r = tcp_ask(VIP, VPORT, NULL);
	ASSERT_EQ(r, -ENETUNREACH, "VIP unreachable without a service");
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	r = tcp_ask(VIP, VPORT, NULL);
	ASSERT_TRUE(r >= 0 && r < NBE, "connect via VIP reaches a backend");
}

static void sc_getpeername_vip(struct env *e)
{
	struct sockaddr_in peer = {};
	int r;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	r = tcp_ask(VIP, VPORT, &peer);
	ASSERT_TRUE(r >= 0, "connect");
	ASSERT_TRUE(sin_is(&peer, VIP, VPORT), "getpeername shows VIP:80");
}

static void sc_spread(struct env *e)
{
	int hits[NBE] = {0}, bad = 0;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	/* 60 random picks miss one of 3 backends with p = 3 * (2/3)^60 < 1e-10. */
	for (int i = 0; i < 60; i++) {
		int r = tcp_ask(VIP, VPORT, NULL);

		if (r >= 0)
			hits[r]++;
		else
			bad++;
	}
	ASSERT_EQ(bad, 0, "all connects succeed");
	for (int i = 0; i < NBE; i++)
		ASSERT_TRUE(hits[i] > 0, "every backend gets connections");
}

static void sc_udp_unconnected(struct env *e)
{
	struct sockaddr_in from = {};
	int seen[NBE] = {0};
	int fd, first;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_UDP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	fd = udp_sock();
	first = udp_ask(fd, VIP, VPORT, &from);
	ASSERT_TRUE(first >= 0, "sendto VIP gets a reply");
	ASSERT_TRUE(sin_is(&from, VIP, VPORT), "recvfrom source is VIP:80");
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(udp_ask(fd, VIP, VPORT, NULL), first, "same socket, same backend");
	close(fd);
	/* Different sockets hash to different slots: 40 sockets miss one of 3
	 * backends with p = 3 * (2/3)^40 < 1e-6. */
	for (int i = 0; i < 40; i++) {
		int r;

		fd = udp_sock();
		r = udp_ask(fd, VIP, VPORT, NULL);
		close(fd);
		if (ASSERT_TRUE(r >= 0, "reply"))
			seen[r]++;
	}
	for (int i = 0; i < NBE; i++)
		ASSERT_TRUE(seen[i] > 0, "sockets spread over backends");
}

static void sc_udp_connected(struct env *e)
{
	struct sockaddr_in a = sin_of(VIP, VPORT), peer = {}, from = {};
	socklen_t pl = sizeof(peer);
	int fd, first;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_UDP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	fd = udp_sock();
	if (!ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0, "connect"))
		goto out;
	ASSERT_OK(getpeername(fd, (struct sockaddr *)&peer, &pl), "getpeername");
	ASSERT_TRUE(sin_is(&peer, VIP, VPORT), "connected UDP peer is VIP:80");
	first = udp_ask(fd, NULL, 0, &from);
	ASSERT_TRUE(first >= 0, "reply");
	ASSERT_TRUE(sin_is(&from, VIP, VPORT), "reply source is VIP:80");
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(udp_ask(fd, NULL, 0, NULL), first, "keeps one backend");
	/* Re-connecting the same socket hashes the same cookie: same backend. */
	ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0, "reconnect");
	ASSERT_EQ(udp_ask(fd, NULL, 0, NULL), first, "reconnect keeps the backend");
out:
	close(fd);
}

static void sc_no_backends(struct env *e)
{
	struct sockaddr_in a = sin_of(VIP_EMPTY, VPORT);
	struct sl_counter ctr[SL_R_MAX];
	int fd;

	if (!ASSERT_OK(svc_set(e, VIP_EMPTY, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP,
			       0, NULL, 0),
		       "svc upsert tcp") ||
	    !ASSERT_OK(svc_set(e, VIP_EMPTY, VPORT, IPPROTO_UDP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP,
			       0, NULL, 0),
		       "svc upsert udp"))
		return;
	/* Without the refusal this would be ENETUNREACH (no route to the VIP). */
	ASSERT_EQ(tcp_ask(VIP_EMPTY, VPORT, NULL), -ECONNREFUSED, "TCP connect refused");
	fd = udp_sock();
	ASSERT_EQ(sendto(fd, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0,
		  -ECONNREFUSED, "UDP sendto refused");
	close(fd);
	if (ASSERT_OK(dp_counters_read(e->dp, ctr), "counters"))
		ASSERT_EQ(ctr[SL_R_NO_BACKEND].packets, 2, "NO_BACKEND counted twice");
}

static void sc_affinity(struct env *e)
{
	struct sl_counter ctr[SL_R_MAX];
	int first, r, rest[NBE - 1], k = 0, second;
	bool same = true;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT,
			       SL_SVC_F_CLUSTERIP | SL_SVC_F_AFFINITY, 60, all3, NBE),
		       "svc upsert"))
		return;
	first = tcp_ask(VIP, VPORT, NULL);
	if (!ASSERT_TRUE(first >= 0, "first connect"))
		return;
	for (int i = 0; i < 20; i++)
		same &= tcp_ask(VIP, VPORT, NULL) == first;
	ASSERT_TRUE(same, "20 connects stick to the first backend");
	if (ASSERT_OK(dp_counters_read(e->dp, ctr), "counters"))
		ASSERT_EQ(ctr[SL_R_AFFINITY_HIT].packets, 20, "affinity hits counted");

	/* The sticky backend leaves the service: affinity must not follow it. */
	for (int i = 0; i < NBE; i++)
		if (i != first)
			rest[k++] = i;
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT,
			       SL_SVC_F_CLUSTERIP | SL_SVC_F_AFFINITY, 60, rest, NBE - 1),
		       "svc upsert without it"))
		return;
	second = tcp_ask(VIP, VPORT, NULL);
	ASSERT_TRUE(second >= 0 && second != first, "moves off the removed backend");
	same = true;
	for (int i = 0; i < 10; i++) {
		r = tcp_ask(VIP, VPORT, NULL);
		same &= r == second;
	}
	ASSERT_TRUE(same, "sticks to the new backend");
}

static void sc_backend_removed(struct env *e)
{
	int hits[NBE] = {0}, bad = 0;
	const int two[2] = {0, 1};

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	/* GONE before the service is rewritten: the program skips its slot. */
	if (!ASSERT_OK(backend_remove(e, 2, IPPROTO_TCP), "backend remove"))
		return;
	for (int i = 0; i < 40; i++) {
		int r = tcp_ask(VIP, VPORT, NULL);

		if (r >= 0)
			hits[r]++;
		else
			bad++;
	}
	ASSERT_EQ(bad, 0, "connects still succeed");
	ASSERT_EQ(hits[2], 0, "no new connection to the GONE backend");
	/* Removing an unknown backend is an error, not a crash. */
	ASSERT_EQ(backend_remove(e, 2, IPPROTO_TCP), -SL_ERR_NOTFOUND, "double remove");
	/* And the rewritten service (an id of a removed backend is refused). */
	ASSERT_EQ(
		svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0, all3, NBE),
		-EINVAL, "upsert with a removed backend id refused");
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0, two,
			       2),
		       "svc upsert with 2"))
		return;
	memset(hits, 0, sizeof(hits));
	for (int i = 0; i < 40; i++) {
		int r = tcp_ask(VIP, VPORT, NULL);

		if (r >= 0)
			hits[r]++;
	}
	ASSERT_TRUE(hits[0] > 0 && hits[1] > 0 && hits[2] == 0, "two remaining share the load");
}

static void sc_slot_flip(struct env *e)
{
	struct sl_svc_key k = svc_key(VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT);
	struct sl_svc_val v1, v2, v3;
	const int one[1] = {1};
	struct dp_fill fill;
	bool all = true;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert 3") ||
	    !ASSERT_OK(pinned_svc_get(e, &k, &v1), "read svc 1"))
		return;
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0, one,
			       1),
		       "svc upsert 1") ||
	    !ASSERT_OK(pinned_svc_get(e, &k, &v2), "read svc 2"))
		return;
	ASSERT_EQ(v2.svc_id, v1.svc_id, "svc id kept across updates");
	ASSERT_EQ(v2.count, 1, "new count");
	ASSERT_TRUE(v2.slot_base >= v1.slot_base + 3 || v2.slot_base + 1 <= v1.slot_base,
		    "new block does not overlap the live one");
	for (int i = 0; i < 20; i++)
		all &= tcp_ask(VIP, VPORT, NULL) == 1;
	ASSERT_TRUE(all, "all connections go to the single backend");
	/* After the grace period the first block is free again (first fit). */
	usleep(20000);
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert 3 again") ||
	    !ASSERT_OK(pinned_svc_get(e, &k, &v3), "read svc 3"))
		return;
	ASSERT_EQ(v3.slot_base, v1.slot_base, "old block reused after grace");
	if (ASSERT_OK(dp_fill_read(e->dp, &fill), "fill")) {
		ASSERT_EQ(fill.services, 1, "one svc4 entry");
		ASSERT_EQ(fill.svc_ids, 1, "one svc id");
		ASSERT_EQ(fill.backends, 2 * NBE, "backends (TCP+UDP)");
		ASSERT_EQ(fill.slots, 3 + 1, "live block + block in grace");
		ASSERT_EQ(fill.svc_be, 0, "no membership pairs without affinity");
	}
	/* Affinity hits are validated against svcbe4: pairs for its backends. */
	if (ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT,
			      SL_SVC_F_CLUSTERIP | SL_SVC_F_AFFINITY, 10, all3, NBE),
		      "svc upsert with affinity") &&
	    ASSERT_OK(dp_fill_read(e->dp, &fill), "fill with affinity"))
		ASSERT_EQ(fill.svc_be, NBE, "membership pairs with affinity");
	ASSERT_OK(dp_svc_delete(e->dp, &k), "svc delete");
	ASSERT_EQ(tcp_ask(VIP, VPORT, NULL), -ENETUNREACH, "deleted service no longer translated");
	ASSERT_EQ(dp_svc_delete(e->dp, &k), -SL_ERR_NOTFOUND, "double delete");
	if (ASSERT_OK(dp_fill_read(e->dp, &fill), "fill after delete")) {
		ASSERT_EQ(fill.services, 0, "no svc4 entry");
		ASSERT_EQ(fill.svc_ids, 0, "svc id released");
		ASSERT_EQ(fill.svc_be, 0, "membership pairs removed");
	}
}

static void sc_nodeport(struct env *e)
{
	struct sockaddr_in peer = {};
	__be32 local;
	int r;

	inet_pton(AF_INET, NODE_IP, &local);
	if (!ASSERT_OK(dp_local_addrs_set(e->dp, &local, 1), "local addrs") ||
	    !ASSERT_OK(svc_set(e, NULL, NODEPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_NODEPORT, 0,
			       all3, NBE),
		       "nodeport upsert"))
		return;
	r = tcp_ask("127.0.0.1", NODEPORT, &peer);
	ASSERT_TRUE(r >= 0, "loopback:nodePort reaches a backend");
	ASSERT_TRUE(sin_is(&peer, "127.0.0.1", NODEPORT), "peer shows 127.0.0.1:nodePort");
	r = tcp_ask(NODE_IP, NODEPORT, &peer);
	ASSERT_TRUE(r >= 0, "node address:nodePort reaches a backend");
	ASSERT_TRUE(sin_is(&peer, NODE_IP, NODEPORT), "peer shows node address");
	/* Assigned but not in local4: not translated, nothing listens there. */
	ASSERT_EQ(tcp_ask(OTHER_IP, NODEPORT, NULL), -ECONNREFUSED, "non-local address untouched");
	/* A frontend without NODEPORT is never matched as a wildcard. */
	ASSERT_EQ(dp_local_addrs_set(e->dp, NULL, 0), 0, "local addrs cleared");
	ASSERT_EQ(tcp_ask(NODE_IP, NODEPORT, NULL), -ECONNREFUSED, "cleared address untouched");
	ASSERT_TRUE(tcp_ask("127.0.0.1", NODEPORT, NULL) >= 0, "loopback always local");
}

static void sc_post_bind(struct env *e)
{
	__u64 cookie = 0;
	socklen_t cl = sizeof(cookie);
	int fd, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK(getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &cl), "netns cookie"))
		goto out;
	close(fd);
	fd = -1;
	if (!ASSERT_OK(svc_set(e, NULL, NODEPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_NODEPORT, 0,
			       all3, NBE),
		       "nodeport upsert") ||
	    !ASSERT_OK(dp_host_netns_set(e->dp, cookie), "host netns"))
		goto out;
	fd = sock_bound(SOCK_STREAM, "0.0.0.0", NODEPORT);
	err = fd < 0 ? -errno : 0;
	ASSERT_EQ(err, -EADDRINUSE, "host bind on a NodePort refused");
	if (fd >= 0)
		close(fd);
	fd = sock_bound(SOCK_STREAM, "0.0.0.0", NODEPORT + 1);
	ASSERT_TRUE(fd >= 0, "other port binds");
	if (fd >= 0)
		close(fd);
	/* Not the host netns (cookie differs): allowed. */
	ASSERT_OK(dp_host_netns_set(e->dp, cookie + 1), "other host netns");
	fd = sock_bound(SOCK_STREAM, "0.0.0.0", NODEPORT);
	ASSERT_TRUE(fd >= 0, "pod netns bind allowed");
out:
	if (fd >= 0)
		close(fd);
}

static void sc_traffic_policy_local(struct env *e)
{
	const int local[1] = {2};

	/* iTP=Local: EXT carries LOCAL_INT, the INT entry lists local backends. */
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT,
			       SL_SVC_F_CLUSTERIP | SL_SVC_F_LOCAL_INT, 0, all3, NBE),
		       "ext upsert"))
		return;
	ASSERT_EQ(tcp_ask(VIP, VPORT, NULL), -ECONNREFUSED, "no INT entry: refused");
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_INT,
			       SL_SVC_F_CLUSTERIP | SL_SVC_F_LOCAL_INT, 0, local, 1),
		       "int upsert"))
		return;
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(tcp_ask(VIP, VPORT, NULL), 2, "only the local backend");
}

static void sc_restart(struct env *e)
{
	struct sl_svc_key k1 = svc_key(VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT);
	struct sl_svc_key k2 = svc_key(VIP_EMPTY, VPORT, IPPROTO_TCP, SL_SCOPE_EXT);
	struct sl_svc_val v1, v2;
	struct sockaddr_in a = sin_of(be_ip[1], BE_PORT);
	__u32 id = 0;

	/* A fresh pin root: the load created the maps (the agent skips the
	 * reconciliation walk after a clean first sync only then). */
	ASSERT_TRUE(dp_maps_created(e->dp), "first open created the maps");
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	/* Agent gone: programs and maps stay (fail static). */
	dp_close(e->dp);
	e->dp = NULL;
	ASSERT_TRUE(tcp_ask(VIP, VPORT, NULL) >= 0, "traffic flows with no agent");
	e->dp = dp_open(&e->opts);
	if (!ASSERT_NOT_NULL(e->dp, "dp_open again"))
		return;
	ASSERT_FALSE(dp_maps_created(e->dp), "second open adopted the maps");
	ASSERT_EQ(cg_prog_count(e->fx->cg, BPF_CGROUP_INET4_CONNECT), 1,
		  "pinned link adopted, not duplicated");
	ASSERT_TRUE(tcp_ask(VIP, VPORT, NULL) >= 0, "traffic flows after restart");
	ASSERT_OK(dp_backend_id(e->dp, a.sin_addr.s_addr, a.sin_port, IPPROTO_TCP, &id),
		  "backend id restored");
	ASSERT_EQ(id, e->tcp_id[1], "same backend id");
	ASSERT_OK(svc_set(e, VIP_EMPTY, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			  all3, NBE),
		  "new svc after restart");
	if (ASSERT_OK(pinned_svc_get(e, &k1, &v1), "svc 1") &&
	    ASSERT_OK(pinned_svc_get(e, &k2, &v2), "svc 2")) {
		ASSERT_NEQ(v1.svc_id, v2.svc_id, "svc ids restored (no reuse)");
		ASSERT_TRUE(v2.slot_base >= v1.slot_base + v1.count ||
				    v2.slot_base + v2.count <= v1.slot_base,
			    "slot allocator restored (no overlap)");
	}
	ASSERT_TRUE(tcp_ask(VIP_EMPTY, VPORT, NULL) >= 0, "new service works");
}

static void sc_bpftool_dump(struct env *e)
{
	char cmd[PATH_MAX + 128], buf[4096];
	size_t n;
	FILE *p;

	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "svc upsert"))
		return;
	snprintf(cmd, sizeof(cmd), "bpftool map dump pinned %s/%s 2>&1", dp_pin_root(e->dp),
		 SL_MAP_SVC4);
	p = popen(cmd, "r");
	if (!ASSERT_NOT_NULL(p, "popen bpftool"))
		return;
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	ASSERT_OK(pclose(p), "bpftool exit status");
	ASSERT_NOT_NULL(strstr(buf, "\"svc_id\""), "dump names svc_id");
	ASSERT_NOT_NULL(strstr(buf, "\"slot_base\""), "dump names slot_base");
	ASSERT_NOT_NULL(strstr(buf, "\"scope\""), "dump names key field scope");
	ASSERT_NOT_NULL(strstr(buf, "\"affinity_s\""), "dump names affinity_s");
}

static void sc_bad_input(struct env *e)
{
	struct sl_backend be = {.port = htons(1), .proto = IPPROTO_TCP, .state = SL_BE_ACTIVE};
	struct dp_svc s = {.key = svc_key(NULL, VPORT, IPPROTO_TCP, SL_SCOPE_EXT)};
	struct dp_opts o = e->opts;
	__u32 bogus = 99999;

	ASSERT_EQ(dp_backend_upsert(e->dp, &be, NULL), -EINVAL, "backend without address");
	s.flags = SL_SVC_F_CLUSTERIP;
	ASSERT_EQ(dp_svc_upsert(e->dp, &s, NULL), -EINVAL, "addr 0 without NODEPORT");
	s.key = svc_key(VIP, VPORT, 1 /* ICMP */, SL_SCOPE_EXT);
	ASSERT_EQ(dp_svc_upsert(e->dp, &s, NULL), -EINVAL, "bad protocol");
	s.key = svc_key(VIP, VPORT, IPPROTO_TCP, 7);
	ASSERT_EQ(dp_svc_upsert(e->dp, &s, NULL), -EINVAL, "bad scope");
	s.key = svc_key(VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT);
	s.backend_ids = &bogus;
	s.count = 1;
	ASSERT_EQ(dp_svc_upsert(e->dp, &s, NULL), -EINVAL, "unknown backend id");
	s.count = SL_MAX_SLOTS_PER_SVC + 1;
	ASSERT_EQ(dp_svc_upsert(e->dp, &s, NULL), -EINVAL, "too many backends");
	o.node = "../escape";
	errno = 0;
	ASSERT_NULL(dp_open(&o), "node name with a slash");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	o.node = e->opts.node;
	o.bpffs = "/proc";
	ASSERT_NULL(dp_open(&o), "bpffs that is not bpffs");
	ASSERT_EQ(errno, ENOTSUP, "ENOTSUP");
	ASSERT_EQ(dp_cleanup(NULL, ""), -EINVAL, "cleanup with empty node");
	ASSERT_OK(dp_cleanup(e->opts.bpffs, "no-such-node"), "cleanup of an absent node");
	dp_close(NULL);
}

/* --- batched creation (dp_svc_upsert_many) ----------------------------------------- */

#define MANY_N 150 /* above the size dp_svc_upsert_many batches at */

/* Frontend i of set s: 198.18.(64 + s).(i + 1):80/TCP; odd i have affinity;
 * 1-3 backends, rotating, so blocks differ in size and content. */
static struct dp_svc many_svc(struct env *e, int s, int i, __u32 *ids)
{
	char ip[32];
	int n = 1 + i % 3;

	snprintf(ip, sizeof(ip), "198.18.%d.%d", 64 + s, i + 1);
	for (int k = 0; k < n; k++)
		ids[k] = e->tcp_id[(i + k) % NBE];
	return (struct dp_svc){
		.key = svc_key(ip, VPORT, IPPROTO_TCP, SL_SCOPE_EXT),
		.flags = (__u16)(SL_SVC_F_CLUSTERIP | (i % 2 ? SL_SVC_F_AFFINITY : 0)),
		.affinity_s = i % 2 ? 30 : 0,
		.backend_ids = ids,
		.count = (__u16)n};
}

struct many_fds {
	int svc, slots, revnat, svcbe;
};

static int many_fd(struct env *e, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dp_pin_root(e->dp), name);
	return bpf_obj_get(path);
}

/* What a frontend's entry programs, whatever ids and block it was given:
 * count, flags, affinity, the block's backends in order, whether revnat4
 * names the frontend, and how many of its backends have a membership pair. */
struct fe_shape {
	__u16 count, flags;
	__u32 aff_s;
	__u32 ids[NBE];
	int revnat_ok; /* not bool: no padding, so memcmp compares values */
	int pairs;
};

static int fe_shape_read(const struct many_fds *m, const struct sl_svc_key *k, struct fe_shape *out)
{
	struct sl_svc_val v;
	struct sl_revnat rn;
	__u32 zero;

	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(m->svc, k, &v))
		return -errno;
	if (v.count > NBE)
		return -E2BIG;
	out->count = v.count;
	out->flags = v.flags;
	out->aff_s = v.affinity_s;
	for (__u32 i = 0; i < v.count; i++) {
		__u32 slot = v.slot_base + i;
		struct sl_svc_be_key mk = {.svc_id = v.svc_id};

		if (bpf_map_lookup_elem(m->slots, &slot, &out->ids[i]))
			return -errno;
		mk.backend_id = out->ids[i];
		out->pairs += !bpf_map_lookup_elem(m->svcbe, &mk, &zero);
	}
	out->revnat_ok = !bpf_map_lookup_elem(m->revnat, &v.svc_id, &rn) && rn.addr == k->addr &&
			 rn.port == k->port && rn.proto == k->proto;
	return 0;
}

/* A batch of new frontends programs the maps exactly as one dp_svc_upsert
 * each would; frontends that exist, repeat a new one in the other scope or
 * are invalid are left to the per-entry path; the batch serves traffic and
 * deletes like any entry. */
static void sc_many(struct env *e)
{
	static struct dp_svc svcs[MANY_N + 3];
	static __u32 ids[MANY_N + 3][NBE];
	static bool done[MANY_N + 3];
	struct many_fds m = {many_fd(e, SL_MAP_SVC4), many_fd(e, SL_MAP_SLOTS),
			     many_fd(e, SL_MAP_REVNAT4), many_fd(e, SL_MAP_SVC_BE4)};
	int bad_shape = 0, not_done = 0, want_pairs = 0;
	struct dp_fill fill;

	if (!ASSERT_TRUE(m.svc >= 0 && m.slots >= 0 && m.revnat >= 0 && m.svcbe >= 0,
			 "open pinned maps"))
		goto out;
	/* One existing frontend: the batch must read svc4 to find it. */
	if (!ASSERT_OK(svc_set(e, VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT, SL_SVC_F_CLUSTERIP, 0,
			       all3, NBE),
		       "existing frontend"))
		goto out;
	for (int i = 0; i < MANY_N; i++)
		svcs[i] = many_svc(e, 0, i, ids[i]);
	svcs[MANY_N] = many_svc(e, 0, 0, ids[MANY_N]);
	svcs[MANY_N].key = svc_key(VIP, VPORT, IPPROTO_TCP, SL_SCOPE_EXT); /* exists */
	svcs[MANY_N + 1] = many_svc(e, 0, 1, ids[MANY_N + 1]);
	svcs[MANY_N + 1].key.scope = SL_SCOPE_INT; /* second scope of a new one */
	svcs[MANY_N + 2] = many_svc(e, 0, 2, ids[MANY_N + 2]);
	svcs[MANY_N + 2].key.port = 0; /* invalid */
	if (!ASSERT_OK(dp_svc_upsert_many(e->dp, svcs, MANY_N + 3, done), "upsert_many"))
		goto out;
	for (int i = 0; i < MANY_N; i++)
		not_done += !done[i];
	ASSERT_EQ(not_done, 0, "every new frontend written by the batch");
	ASSERT_FALSE(done[MANY_N], "existing frontend left to dp_svc_upsert");
	ASSERT_FALSE(done[MANY_N + 1], "second scope left to dp_svc_upsert");
	ASSERT_FALSE(done[MANY_N + 2], "invalid frontend left to dp_svc_upsert");
	/* The same frontends one by one, on other addresses. */
	for (int i = 0; i < MANY_N; i++) {
		__u32 rids[NBE];
		struct dp_svc s = many_svc(e, 1, i, rids);

		if (!ASSERT_OK(dp_svc_upsert(e->dp, &s, NULL), "per-entry upsert"))
			goto out;
	}
	for (int i = 0; i < MANY_N; i++) {
		__u32 rids[NBE];
		struct dp_svc s = many_svc(e, 1, i, rids);
		struct fe_shape a, b;

		if (fe_shape_read(&m, &svcs[i].key, &a) || fe_shape_read(&m, &s.key, &b) ||
		    memcmp(&a, &b, sizeof(a)) || !a.revnat_ok || a.count != s.count ||
		    memcmp(a.ids, rids, s.count * sizeof(__u32)) ||
		    a.pairs != (i % 2 ? a.count : 0))
			bad_shape++;
		want_pairs += i % 2 ? 2 * s.count : 0;
	}
	ASSERT_EQ(bad_shape, 0, "batched entries equal per-entry ones (block, revnat, pairs)");
	/* Traffic: frontend 0 has one backend, tcp_id[0]. */
	ASSERT_EQ(tcp_ask("198.18.64.1", VPORT, NULL), 0, "batched frontend translated");
	if (ASSERT_OK(dp_fill_read(e->dp, &fill), "fill")) {
		ASSERT_EQ(fill.services, 1 + 2 * MANY_N, "svc4 entries");
		ASSERT_EQ(fill.svc_ids, 1 + 2 * MANY_N, "svc ids");
		ASSERT_EQ(fill.svc_be, want_pairs, "pairs for affinity frontends only");
	}
	/* A restart: reopen (adopting the pinned maps) and ask for the same
	 * frontends. Entries that already say it are left alone (same block),
	 * a changed one is left to dp_svc_upsert. */
	{
		static struct sl_svc_val before[MANY_N], after[MANY_N];
		int moved = 0, skipped = 0;

		for (int i = 0; i < MANY_N; i++)
			bpf_map_lookup_elem(m.svc, &svcs[i].key, &before[i]);
		dp_close(e->dp);
		e->dp = dp_open(&e->opts);
		if (!ASSERT_NOT_NULL(e->dp, "reopen"))
			goto out;
		svcs[2].count = 1; /* changed: 3 backends -> 1 */
		if (!ASSERT_OK(dp_svc_upsert_many(e->dp, svcs, MANY_N + 3, done), "again"))
			goto out;
		for (int i = 0; i < MANY_N; i++) {
			bpf_map_lookup_elem(m.svc, &svcs[i].key, &after[i]);
			if (i != 2) {
				skipped += !done[i];
				moved += memcmp(&before[i], &after[i], sizeof(before[i])) != 0;
			}
		}
		ASSERT_EQ(skipped, 0, "unchanged entries in place");
		ASSERT_EQ(moved, 0, "unchanged entries not rewritten");
		ASSERT_FALSE(done[2], "changed entry left to dp_svc_upsert");
		ASSERT_FALSE(done[MANY_N], "existing frontend that differs left to dp_svc_upsert");
		ASSERT_FALSE(done[MANY_N + 1], "new second scope left to dp_svc_upsert");
		if (!ASSERT_OK(dp_svc_upsert(e->dp, &svcs[2], NULL), "changed entry"))
			goto out;
		bpf_map_lookup_elem(m.svc, &svcs[2].key, &after[2]);
		ASSERT_EQ(after[2].count, 1, "changed entry written");
	}
	for (int i = 0; i < MANY_N; i++) {
		__u32 rids[NBE];
		struct dp_svc s = many_svc(e, 1, i, rids);

		if (!ASSERT_OK(dp_svc_delete(e->dp, &svcs[i].key), "delete batched") ||
		    !ASSERT_OK(dp_svc_delete(e->dp, &s.key), "delete per-entry"))
			goto out;
	}
	if (ASSERT_OK(dp_fill_read(e->dp, &fill), "fill after delete")) {
		ASSERT_EQ(fill.services, 1, "only the first frontend left");
		ASSERT_EQ(fill.svc_ids, 1, "ids released");
		ASSERT_EQ(fill.svc_be, 0, "pairs removed");
	}
out:
	close(m.svc);
	close(m.slots);
	close(m.revnat);
	close(m.svcbe);
}

/* --- tests (one fixture each) --------------------------------------------------------- */

TEST(connect_via_vip_reaches_backend)
{
	fx_run(sc_connect_reaches_backend);
}

TEST(getpeername_returns_vip)
{
	fx_run(sc_getpeername_vip);
}

TEST(connects_spread_over_backends)
{
	fx_run(sc_spread);
}

TEST(udp_sendto_reply_from_vip)
{
	fx_run(sc_udp_unconnected);
}

TEST(udp_connected_keeps_backend)
{
	fx_run(sc_udp_connected);
}

TEST(no_backends_econnrefused)
{
	fx_run(sc_no_backends);
}

TEST(affinity_sticks_and_follows_removal)
{
	fx_run(sc_affinity);
}

TEST(removed_backend_gets_no_new_connections)
{
	fx_run(sc_backend_removed);
}

TEST(slot_block_flip_and_delete)
{
	fx_run(sc_slot_flip);
}

TEST(batched_frontends_equal_per_entry)
{
	fx_run(sc_many);
}

TEST(nodeport_on_local_addresses)
{
	fx_run(sc_nodeport);
}

TEST(post_bind_refuses_nodeport_port)
{
	fx_run(sc_post_bind);
}

TEST(internal_traffic_policy_local)
{
	fx_run(sc_traffic_policy_local);
}

TEST(restart_adopts_pinned_state)
{
	fx_run(sc_restart);
}

TEST(bpftool_dump_named_fields)
{
	fx_run(sc_bpftool_dump);
}

TEST(bad_input_rejected)
{
	fx_run(sc_bad_input);
}
