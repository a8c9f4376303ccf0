// SPDX-License-Identifier: Apache-2.0
/*
 * Socket termination on backend removal (agent/sockterm.h,
 * bpf/iter_sock_term.bpf.c), end to end with the socket LB loaded through
 * dp_open() and real sockets:
 *
 *   test process (private mount ns, own bpffs on /sys/fs/bpf)
 *     │ mkdir <cgroup2>/sluice-stterm-<pid>-<n>, pin root .../sluice/st<n>
 *     └─ child: unshare(CLONE_NEWNET) → netns A: lo up, 198.18.10.1-2/32
 *        │ joins the cgroup, dp_open(), sockterm_open()
 *        ├─ grandchild: UDP echo + TCP echo (connections kept open) on
 *        │  198.18.10.{1,2}:8080, answering with their own address
 *        ├─ clients dial ClusterIP 198.18.128.10:80 (no route: only a
 *        │  translated socket reaches anything)
 *        └─ netns B (unshare again, then setns back to A): lo with
 *           198.18.10.1/32 only; a socket connected there is only seen
 *           when B's fd is passed to sockterm_backend_gone()
 *
 * Scenario of kubernetes/kubernetes#125467: a connected UDP socket pinned to
 * a backend that goes away. Before sockterm it keeps reaching the removed
 * backend; after it, its next recv fails with ECONNABORTED and a reconnect
 * reaches the live backend.
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
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "harness.h"
#include "sluice/err.h"
#include "agent/datapath.h"
#include "agent/sockterm.h"

#define VIP	"198.18.128.10"
#define VPORT	80
#define BE_PORT 8080
#define NBE	2
#define BPFFS	"/sys/fs/bpf"
#define MAXCONN 16

static const char *const be_ip[NBE] = {"198.18.10.1", "198.18.10.2"};

static char cg2_root[PATH_MAX / 2];
static int test_seq;

/* --- process-wide setup ------------------------------------------------------------ */

static int env_init(void)
{
	static int done, result = -1;
	if (done)
		return result;
	done = 1;
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

struct fx {
	char cg[PATH_MAX];
	char bpffs[PATH_MAX / 2];
	char node[32];
};

struct env {
	struct dp *dp;
	struct sockterm *st;
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

static void fx_teardown(struct fx *f)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/cgroup.kill", f->cg);
	write_file(path, "1");
	for (int i = 0; i < 200 && !cg_empty(f->cg); i++)
		usleep(10000);
	ASSERT_OK(dp_cleanup(f->bpffs, f->node), "dp_cleanup");
	ASSERT_OK(rmdir(f->cg) ? -errno : 0, "cgroup rmdir");
	rmdir(f->bpffs);
}

/* --- servers (grandchild) ------------------------------------------------------------ */

static int sock_bound(int type, const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, ip, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || (type == SOCK_STREAM && listen(fd, 64))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* UDP and TCP echo servers answering every message with their own address;
 * TCP connections stay open until the client closes (or resets) them. */
static void server_run(int ready_fd)
{
	struct pollfd p[2 * NBE + MAXCONN];
	const char *who[2 * NBE + MAXCONN];
	int n = 2 * NBE;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* p[2i]: TCP listener of backend i, p[2i+1]: its UDP socket. */
	for (size_t i = 0; i < NBE; i++) {
		size_t t = 2 * i, u = 2 * i + 1;

		p[t].fd = sock_bound(SOCK_STREAM, be_ip[i], BE_PORT);
		p[u].fd = sock_bound(SOCK_DGRAM, be_ip[i], BE_PORT);
		p[t].events = p[u].events = POLLIN;
		who[t] = who[u] = be_ip[i];
		if (p[t].fd < 0 || p[u].fd < 0)
			_exit(2);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(2);
	close(ready_fd);
	for (;;) {
		if (poll(p, n, -1) < 0)
			_exit(3);
		for (int i = 0; i < n; i++) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			char buf[64];
			ssize_t r;

			if (!p[i].revents)
				continue;
			if (i < 2 * NBE && i % 2 == 0) {
				int c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);

				if (c >= 0 && n < 2 * NBE + MAXCONN) {
					p[n].fd = c;
					p[n].events = POLLIN;
					p[n].revents = 0;
					who[n++] = who[i];
				} else if (c >= 0) {
					close(c);
				}
			} else if (i < 2 * NBE) {
				if (recvfrom(p[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
					     &fl) >= 0)
					sendto(p[i].fd, who[i], strlen(who[i]), 0,
					       (struct sockaddr *)&from, fl);
			} else {
				r = read(p[i].fd, buf, sizeof(buf));
				if (r <= 0 || write(p[i].fd, who[i], strlen(who[i])) < 0) {
					close(p[i].fd);
					p[i] = p[n - 1];
					who[i] = who[n - 1];
					n--;
					i--;
				}
			}
		}
	}
}

/* --- clients ------------------------------------------------------------------------- */

static struct sockaddr_in sin_of(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static int sock_new(int type)
{
	struct timeval tv = {.tv_sec = 2};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static int sock_connect(int fd, const char *ip, int port)
{
	struct sockaddr_in a = sin_of(ip, port);

	return connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0;
}

/* A new socket of type connected to ip:port, or -1. */
static int dial(int type, const char *ip, int port)
{
	int fd = sock_new(type);

	if (fd >= 0 && sock_connect(fd, ip, port)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* One request over a connected socket: the answering backend's index, or
 * -errno of send (first) or recv. */
static int ask(int fd)
{
	char who[64];
	ssize_t n;

	if (send(fd, "ping", 4, MSG_NOSIGNAL) < 0)
		return -errno;
	n = recv(fd, who, sizeof(who) - 1, 0);
	if (n < 0)
		return -errno;
	who[n] = '\0';
	for (int i = 0; i < NBE; i++)
		if (!strcmp(who, be_ip[i]))
			return i;
	return -EPROTO;
}

static int sock_error(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l))
		return -errno;
	return -e;
}

/* --- programming helpers ----------------------------------------------------------- */

static int svc_set(struct env *e, __u8 proto, int which)
{
	__u32 id = proto == IPPROTO_TCP ? e->tcp_id[which] : e->udp_id[which];
	struct dp_svc s = {.key = {.port = htons(VPORT), .proto = proto, .scope = SL_SCOPE_EXT},
			   .flags = SL_SVC_F_CLUSTERIP,
			   .backend_ids = &id,
			   .count = 1};

	inet_pton(AF_INET, VIP, &s.key.addr);
	return dp_svc_upsert(e->dp, &s, NULL);
}

/* The agent's order for a removal: service rewritten without the backend,
 * backend marked GONE, then its sockets terminated. */
static int be_gone(struct env *e, __u8 proto, int gone, const int *nsfd, size_t n,
		   struct sockterm_stats *stats)
{
	struct sockaddr_in a = sin_of(be_ip[gone], BE_PORT);
	int err;

	err = svc_set(e, proto, 1 - gone);
	if (!err)
		err = dp_backend_remove(e->dp, a.sin_addr.s_addr, a.sin_port, proto);
	if (!err)
		err = sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, proto, nsfd, n,
					    stats);
	return err;
}

/* sockrev4 entries naming backend i (any socket). */
static int sockrev_count(struct env *e, int i)
{
	struct sl_sock_rev_key k, next, *prev = NULL;
	struct sockaddr_in a = sin_of(be_ip[i], BE_PORT);
	char path[PATH_MAX + 64];
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/%s", dp_pin_root(e->dp), SL_MAP_SOCK_REV4);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		n += k.backend_addr == a.sin_addr.s_addr && k.backend_port == a.sin_port;
	}
	close(fd);
	return n;
}

/* --- the child -------------------------------------------------------------------- */

typedef void (*scenario_fn)(struct env *e);

static int backends_add(struct env *e)
{
	for (int i = 0; i < NBE; i++) {
		struct sl_backend be = {.port = htons(BE_PORT), .state = SL_BE_ACTIVE};
		int err;

		inet_pton(AF_INET, be_ip[i], &be.addr);
		be.proto = IPPROTO_TCP;
		err = dp_backend_upsert(e->dp, &be, &e->tcp_id[i]);
		if (!err) {
			be.proto = IPPROTO_UDP;
			err = dp_backend_upsert(e->dp, &be, &e->udp_id[i]);
		}
		if (err)
			return err;
	}
	return 0;
}

static void child_main(struct fx *f, scenario_fn fn)
{
	struct dp_opts o = {.bpffs = f->bpffs, .node = f->node, .cgroup = f->cg};
	struct env e = {.server = -1};
	char path[PATH_MAX + 32], pid[32];
	int pfd[2] = {-1, -1};
	char c;

	test_failed_current = 0;
	if (!ASSERT_OK(unshare(CLONE_NEWNET) ? -errno : 0, "unshare netns") ||
	    !ASSERT_OK(system("ip link set lo up && ip addr add 198.18.10.1/32 dev lo && "
			      "ip addr add 198.18.10.2/32 dev lo"),
		       "netns setup"))
		goto out;
	snprintf(path, sizeof(path), "%s/cgroup.procs", f->cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (!ASSERT_OK(write_file(path, pid), "join cgroup"))
		goto out;
	e.dp = dp_open(&o);
	if (!ASSERT_NOT_NULL(e.dp, "dp_open") || !ASSERT_OK(backends_add(&e), "backends"))
		goto out;
	e.st = sockterm_open(dp_pin_root(e.dp));
	if (!ASSERT_NOT_NULL(e.st, "sockterm_open"))
		goto out;
	if (!ASSERT_OK(pipe2(pfd, O_CLOEXEC), "pipe"))
		goto out;
	e.server = fork();
	if (e.server == 0) {
		close(pfd[0]);
		server_run(pfd[1]);
	}
	close(pfd[1]);
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
	sockterm_close(e.st);
	dp_close(e.dp);
	exit(test_failed_current ? 1 : 0);
}

static void fx_run(scenario_fn fn)
{
	struct fx f = {};
	int status = -1;
	pid_t pid, w = 0;

	if (!ASSERT_OK(env_init(), "bpffs/cgroup2 environment"))
		return;
	test_seq++;
	snprintf(f.cg, sizeof(f.cg), "%s/sluice-stterm-%d-%d", cg2_root, getpid(), test_seq);
	snprintf(f.bpffs, sizeof(f.bpffs), "%s/sluice-stterm-%d", BPFFS, getpid());
	snprintf(f.node, sizeof(f.node), "st%d", test_seq);
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

static void sc_udp_connected(struct env *e)
{
	struct sockterm_stats s;
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	int fd = -1, other = -1, direct = -1;
	char buf[8];

	/* other: translated to backend 1 (stays); fd: translated to backend 0
	 * (removed); direct: dialled backend 0's address itself (not ours). */
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 1), "svc -> be1"))
		return;
	other = dial(SOCK_DGRAM, VIP, VPORT);
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 0), "svc -> be0"))
		goto out;
	fd = dial(SOCK_DGRAM, VIP, VPORT);
	direct = dial(SOCK_DGRAM, be_ip[0], BE_PORT);
	if (!ASSERT_TRUE(fd >= 0 && other >= 0 && direct >= 0, "sockets connected"))
		goto out;
	ASSERT_EQ(ask(fd), 0, "fd reaches be0");
	ASSERT_EQ(ask(other), 1, "other reaches be1");
	ASSERT_EQ(ask(direct), 0, "direct reaches be0");
	ASSERT_EQ(sockrev_count(e, 0), 1, "one reverse record names be0");

	/* The bug: with the backend removed from the service and marked GONE,
	 * the connected socket still goes to it. */
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 1), "svc -> be1 only"))
		goto out;
	ASSERT_EQ(ask(fd), 0, "without sockterm: still pinned to the removed backend");

	if (!ASSERT_OK(be_gone(e, IPPROTO_UDP, 0, NULL, 0, &s), "backend gone"))
		goto out;
	ASSERT_EQ(s.matched, 1, "one socket matched");
	ASSERT_EQ(s.destroyed, 1, "one socket destroyed");
	ASSERT_EQ(s.failed, 0, "no destroy failed");
	ASSERT_EQ(s.netns_done, 1, "own netns walked");
	ASSERT_EQ(sockrev_count(e, 0), 0, "its reverse record deleted");

	/* What the client sees: the pending error once, then a disconnected
	 * socket (send without an address). */
	ASSERT_EQ(sock_error(fd), -ECONNABORTED, "SO_ERROR is ECONNABORTED");
	ASSERT_EQ(sock_error(fd), 0, "SO_ERROR reads once");
	ASSERT_EQ(send(fd, "x", 1, 0) < 0 ? -errno : 0, -EDESTADDRREQ,
		  "send on the destroyed socket: EDESTADDRREQ (disconnected)");
	ASSERT_EQ(getpeername(fd, (struct sockaddr *)&peer, &pl) ? -errno : 0, -ENOTCONN,
		  "no peer any more");
	/* Untouched: the socket to the other backend and the direct one. */
	ASSERT_EQ(ask(other), 1, "socket to be1 untouched");
	ASSERT_EQ(ask(direct), 0, "direct socket untouched");
	ASSERT_EQ(recv(direct, buf, sizeof(buf), MSG_DONTWAIT) < 0 ? -errno : 0, -EAGAIN,
		  "direct socket has no pending error");

	/* Recovery: reconnecting picks the live backend. */
	ASSERT_OK(sock_connect(fd, VIP, VPORT), "reconnect");
	ASSERT_EQ(ask(fd), 1, "reconnected socket reaches be1");
out:
	if (fd >= 0)
		close(fd);
	if (other >= 0)
		close(other);
	if (direct >= 0)
		close(direct);
}

static void sc_udp_recv_errno(struct env *e)
{
	struct sockterm_stats s;
	char buf[8];
	int fd;

	/* A client blocked in (or next calling) recv gets ECONNABORTED. */
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 0), "svc -> be0"))
		return;
	fd = dial(SOCK_DGRAM, VIP, VPORT);
	if (!ASSERT_TRUE(fd >= 0, "connected") || !ASSERT_EQ(ask(fd), 0, "reaches be0"))
		goto out;
	if (!ASSERT_OK(be_gone(e, IPPROTO_UDP, 0, NULL, 0, &s), "backend gone"))
		goto out;
	ASSERT_EQ(s.destroyed, 1, "destroyed");
	ASSERT_EQ(recv(fd, buf, sizeof(buf), 0) < 0 ? -errno : 0, -ECONNABORTED,
		  "recv: ECONNABORTED");
	/* A new socket (what glibc's resolver does after an error) is fine. */
	close(fd);
	fd = dial(SOCK_DGRAM, VIP, VPORT);
	ASSERT_EQ(ask(fd), 1, "new socket reaches be1");
out:
	if (fd >= 0)
		close(fd);
}

static void sc_tcp(struct env *e)
{
	struct sockterm_stats s;
	int fd = -1, other = -1;

	if (!ASSERT_OK(svc_set(e, IPPROTO_TCP, 1), "svc -> be1"))
		return;
	other = dial(SOCK_STREAM, VIP, VPORT);
	if (!ASSERT_OK(svc_set(e, IPPROTO_TCP, 0), "svc -> be0"))
		goto out;
	fd = dial(SOCK_STREAM, VIP, VPORT);
	if (!ASSERT_TRUE(fd >= 0 && other >= 0, "connected"))
		goto out;
	ASSERT_EQ(ask(fd), 0, "fd reaches be0");
	ASSERT_EQ(ask(other), 1, "other reaches be1");
	/* A UDP-only termination must not touch TCP sockets. */
	{
		struct sockaddr_in a = sin_of(be_ip[0], BE_PORT);

		ASSERT_OK(sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, IPPROTO_UDP,
						NULL, 0, &s),
			  "udp walk");
		ASSERT_EQ(s.matched, 0, "udp walk matches no TCP socket");
		ASSERT_EQ(ask(fd), 0, "TCP connection alive after the UDP walk");
	}
	if (!ASSERT_OK(be_gone(e, IPPROTO_TCP, 0, NULL, 0, &s), "backend gone"))
		goto out;
	ASSERT_EQ(s.destroyed, 1, "one connection destroyed");
	ASSERT_EQ(ask(fd), -ECONNABORTED, "next request: ECONNABORTED");
	ASSERT_EQ(ask(other), 1, "connection to be1 untouched");
	close(fd);
	fd = dial(SOCK_STREAM, VIP, VPORT);
	ASSERT_EQ(ask(fd), 1, "new connection reaches be1");
out:
	if (fd >= 0)
		close(fd);
	if (other >= 0)
		close(other);
}

/* A socket in another netns is only seen when its netns fd is passed. */
static void sc_other_netns(struct env *e)
{
	struct sockterm_stats s;
	struct stat st0, st1;
	int self, nsb = -1, fd = -1;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!ASSERT_TRUE(self >= 0, "own netns fd") || !ASSERT_OK(fstat(self, &st0), "fstat"))
		return;
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 0), "svc -> be0") ||
	    !ASSERT_OK(unshare(CLONE_NEWNET) ? -errno : 0, "netns B"))
		goto out;
	if (ASSERT_OK(system("ip link set lo up && ip addr add 198.18.10.1/32 dev lo"),
		      "netns B setup")) {
		nsb = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		/* Translated by the same cgroup hooks; B has a route to be0. */
		fd = dial(SOCK_DGRAM, VIP, VPORT);
	}
	if (!ASSERT_OK(setns(self, CLONE_NEWNET) ? -errno : 0, "back to netns A") ||
	    !ASSERT_TRUE(nsb >= 0 && fd >= 0, "socket connected in B"))
		goto out;
	ASSERT_EQ(sockrev_count(e, 0), 1, "translated (reverse record)");

	if (!ASSERT_OK(be_gone(e, IPPROTO_UDP, 0, NULL, 0, &s), "walk own netns only"))
		goto out;
	ASSERT_EQ(s.matched, 0, "socket in B not seen from A");
	ASSERT_EQ(sock_error(fd), 0, "socket in B intact");
	{
		struct sockaddr_in a = sin_of(be_ip[0], BE_PORT);
		int bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int fds[2] = {-1, bad};

		ASSERT_OK(sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, IPPROTO_UDP,
						&nsb, 1, &s),
			  "walk A and B");
		ASSERT_EQ(s.netns_done, 2, "two netns walked");
		ASSERT_EQ(s.destroyed, 1, "socket in B destroyed");
		ASSERT_EQ(sock_error(fd), -ECONNABORTED, "B socket: ECONNABORTED");
		/* -1 entries are skipped; a fd that is no netns fails that netns
		 * only, and the caller stays home. */
		ASSERT_EQ(sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, IPPROTO_UDP,
						fds, 2, &s),
			  -EINVAL, "non-netns fd: setns error returned");
		ASSERT_EQ(s.netns_done, 1, "own netns still walked");
		ASSERT_EQ(s.netns_fails, 1, "bad fd counted");
		if (bad >= 0)
			close(bad);
	}
	ASSERT_TRUE(!stat("/proc/thread-self/ns/net", &st1) && st1.st_ino == st0.st_ino,
		    "caller back in its own netns");
out:
	if (fd >= 0)
		close(fd);
	if (nsb >= 0)
		close(nsb);
	setns(self, CLONE_NEWNET);
	close(self);
}

static struct sockterm_target tgt(int i, __u8 proto)
{
	struct sockaddr_in a = sin_of(be_ip[i], BE_PORT);
	struct sockterm_target t = {.addr = a.sin_addr.s_addr, .port = a.sin_port, .proto = proto};

	return t;
}

/* One call for several removed backends; the protocol is part of the match,
 * and the target set is empty again after the call. */
static void sc_batch(struct env *e)
{
	struct sockterm_target t[3] = {tgt(0, IPPROTO_TCP), tgt(1, IPPROTO_UDP),
				       tgt(0, IPPROTO_SCTP)};
	struct sockterm_target only_udp0 = tgt(0, IPPROTO_UDP);
	int udp0 = -1, udp1 = -1, tcp0 = -1, udp1b = -1;
	struct sockterm_stats s;

	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 1), "udp svc -> be1"))
		return;
	udp1 = dial(SOCK_DGRAM, VIP, VPORT);
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 0), "udp svc -> be0") ||
	    !ASSERT_OK(svc_set(e, IPPROTO_TCP, 0), "tcp svc -> be0"))
		goto out;
	udp0 = dial(SOCK_DGRAM, VIP, VPORT);
	tcp0 = dial(SOCK_STREAM, VIP, VPORT);
	if (!ASSERT_EQ(ask(udp0), 0, "udp0 -> be0") || !ASSERT_EQ(ask(udp1), 1, "udp1 -> be1") ||
	    !ASSERT_EQ(ask(tcp0), 0, "tcp0 -> be0"))
		goto out;

	ASSERT_OK(sockterm_backends_gone(e->st, t, 3, NULL, 0, &s), "batch of 3 (one SCTP)");
	ASSERT_EQ(s.matched, 2, "two sockets matched");
	ASSERT_EQ(s.destroyed, 2, "two destroyed");
	ASSERT_EQ(ask(tcp0), -ECONNABORTED, "TCP to be0 aborted");
	ASSERT_EQ(sock_error(udp1), -ECONNABORTED, "UDP to be1 aborted");
	ASSERT_EQ(ask(udp0), 0, "UDP to be0 untouched (only TCP be0 was removed)");

	/* The set was emptied: a later call for UDP be0 alone leaves a fresh
	 * UDP socket to be1 alone. */
	if (!ASSERT_OK(svc_set(e, IPPROTO_UDP, 1), "udp svc -> be1 again"))
		goto out;
	udp1b = dial(SOCK_DGRAM, VIP, VPORT);
	ASSERT_EQ(ask(udp1b), 1, "udp1b -> be1");
	ASSERT_OK(sockterm_backends_gone(e->st, &only_udp0, 1, NULL, 0, &s), "UDP be0 alone");
	ASSERT_EQ(s.destroyed, 1, "only udp0 destroyed");
	ASSERT_EQ(sock_error(udp0), -ECONNABORTED, "udp0 aborted");
	ASSERT_EQ(ask(udp1b), 1, "udp1b untouched: no stale target");
	ASSERT_EQ(sockterm_backends_gone(e->st, &t[2], 1, NULL, 0, &s), -EOPNOTSUPP,
		  "SCTP only: nothing to walk");
	ASSERT_OK(sockterm_backends_gone(e->st, NULL, 0, NULL, 0, &s), "empty list");
out:
	for (int i = 0; i < 4; i++) {
		int fd = i == 0 ? udp0 : i == 1 ? udp1 : i == 2 ? tcp0 : udp1b;

		if (fd >= 0)
			close(fd);
	}
}

static void sc_bad_input(struct env *e)
{
	struct sockaddr_in a = sin_of(be_ip[0], BE_PORT);
	struct sockterm_stats s;

	errno = 0;
	ASSERT_NULL(sockterm_open(NULL), "NULL pin root");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	ASSERT_NULL(sockterm_open("/nonexistent/sluice/x"), "pin root without sockrev");
	ASSERT_EQ(errno, ENOENT, "ENOENT");
	ASSERT_EQ(sockterm_backend_gone(NULL, a.sin_addr.s_addr, a.sin_port, IPPROTO_UDP, NULL, 0,
					&s),
		  -EINVAL, "NULL handle");
	ASSERT_EQ(sockterm_backend_gone(e->st, 0, a.sin_port, IPPROTO_UDP, NULL, 0, &s), -EINVAL,
		  "address 0");
	ASSERT_EQ(sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, IPPROTO_UDP, NULL, 2,
					&s),
		  -EINVAL, "netns count without fds");
	ASSERT_EQ(sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, IPPROTO_SCTP, NULL, 0,
					NULL),
		  -EOPNOTSUPP, "SCTP has no socket iterator");
	ASSERT_OK(sockterm_backend_gone(e->st, a.sin_addr.s_addr, a.sin_port, IPPROTO_TCP, NULL, 0,
					NULL),
		  "no matching socket, NULL stats");
	sockterm_close(NULL);
}

TEST(udp_connected_socket_destroyed_and_reconnects)
{
	fx_run(sc_udp_connected);
}

TEST(udp_recv_gets_econnaborted)
{
	fx_run(sc_udp_recv_errno);
}

TEST(tcp_connection_aborted_others_untouched)
{
	fx_run(sc_tcp);
}

TEST(other_netns_walked_only_when_given)
{
	fx_run(sc_other_netns);
}

TEST(batch_matches_protocol_and_empties_set)
{
	fx_run(sc_batch);
}

TEST(sockterm_bad_input)
{
	fx_run(sc_bad_input);
}
