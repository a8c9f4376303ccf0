// SPDX-License-Identifier: Apache-2.0
/*
 * Container probes (agent/pods.h), as the kubelet's prober runs them:
 *   - exec: the command inside the container's namespaces and cgroup, exit
 *     0 is success;
 *   - tcpSocket: a TCP connect from the node's netns to the pod IP;
 *   - httpGet: GET from the node's netns, status 200-399 is success.
 * Each probe is a timer on the agent's loop: initialDelaySeconds, then one
 * attempt at a time, periodSeconds after the previous one ended, each bounded
 * by timeoutSeconds. A result is reported only when successThreshold
 * successes or failureThreshold failures in a row change the verdict.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "pods.h"
#include "sluice/log.h"

#define PR "probe"

struct probe {
	struct event_base *base;
	struct probe_spec spec;
	char name[160]; /* "ns/pod/container readiness", for logs */
	/* target, copied */
	char pod_ip[64];
	int ns_pid;
	char *netns, *cgroup;
	char **envp;
	probe_result_fn fn;
	void *arg;
	struct event *tick;    /* next attempt */
	struct event *timeout; /* bounds the attempt in flight */
	struct event *io;      /* socket or pidfd of the attempt in flight */
	int fd;		       /* socket or pidfd, -1 when idle */
	pid_t pid;	       /* exec probe child, or 0 */
	bool connected;	       /* http: request sent, reading the status line */
	char rbuf[512];
	size_t rlen;
	int successes, failures; /* consecutive */
	int verdict;		 /* -1 unknown, 0 failing, 1 succeeding (as last reported) */
};

static void attempt_reset(struct probe *p)
{
	if (p->io)
		event_free(p->io);
	p->io = NULL;
	if (p->timeout)
		event_del(p->timeout);
	if (p->pid > 0) {
		/* Its whole process group: what the command forked goes too. */
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	p->pid = 0;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->connected = false;
	p->rlen = 0;
}

static void schedule(struct probe *p, int seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(p->tick, &tv);
}

/* Counts an attempt's result and schedules the next attempt; reports a
 * changed verdict last, because the callback may stop (free) the probe. */
static void finish(struct probe *p, bool ok, const char *msg)
{
	bool report = false;

	attempt_reset(p);
	if (ok) {
		p->failures = 0;
		p->successes++;
		report = p->verdict != 1 && p->successes >= p->spec.success_threshold;
	} else {
		p->successes = 0;
		p->failures++;
		pr_debug(PR, "'%s': failed: %s", p->name, msg);
		report = p->verdict != 0 && p->failures >= p->spec.failure_threshold;
	}
	schedule(p, p->spec.period_s);
	if (report) {
		p->verdict = ok;
		p->fn(p, ok, msg, p->arg);
	}
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	char msg[128];

	pods_fmt(msg, sizeof(msg), "timed out after %d s", p->spec.timeout_s);
	finish(p, false, msg);
}

static void exec_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	char msg[128];
	int st;

	if (!pods_reap(p->pid, &st))
		return;
	p->pid = 0;
	if (WIFEXITED(st))
		pods_fmt(msg, sizeof(msg), "command exited with status %d", WEXITSTATUS(st));
	else
		pods_fmt(msg, sizeof(msg), "command killed by signal %d", WTERMSIG(st));
	finish(p, WIFEXITED(st) && WEXITSTATUS(st) == 0, msg);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	char msg[200];
	int err = 0;
	socklen_t el = sizeof(err);

	if (!p->connected) {
		struct sl_buf req = SL_BUF_INIT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			pods_fmt(msg, sizeof(msg), "dial tcp %s:%d: %s", p->pod_ip, p->spec.port,
				 strerror(err ? err : errno));
			finish(p, false, msg);
			return;
		}
		if (p->spec.kind == PROBE_TCP) {
			finish(p, true, "connected");
			return;
		}
		sl_buf_printf(&req, "GET %s HTTP/1.1\r\n", p->spec.path);
		bool host_set = false;
		for (size_t i = 0; i < p->spec.n_headers; i++) {
			host_set |= !strcasecmp(p->spec.headers[i].name, "Host");
			sl_buf_printf(&req, "%s: %s\r\n", p->spec.headers[i].name,
				      p->spec.headers[i].value);
		}
		if (!host_set)
			sl_buf_printf(&req, "Host: %s:%d\r\n", p->pod_ip, p->spec.port);
		sl_buf_puts(&req, "User-Agent: kube-probe/1.20\r\nAccept: */*\r\n"
				  "Connection: close\r\n\r\n");
		/* A request line and a few headers fit any socket buffer at once. */
		if (req.oom || send(fd, req.data, req.len, MSG_NOSIGNAL) != (ssize_t)req.len) {
			sl_buf_fini(&req);
			pods_fmt(msg, sizeof(msg), "sending the request failed: %s",
				 strerror(errno));
			finish(p, false, msg);
			return;
		}
		sl_buf_fini(&req);
		p->connected = true;
		event_free(p->io);
		p->io = event_new(p->base, fd, EV_READ | EV_PERSIST, sock_cb, p);
		if (!p->io)
			finish(p, false, "out of memory");
		else
			event_add(p->io, NULL);
		return;
	}
	ssize_t n = recv(fd, p->rbuf + p->rlen, sizeof(p->rbuf) - 1 - p->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		p->rlen += (size_t)n;
	p->rbuf[p->rlen] = '\0';
	if (!strstr(p->rbuf, "\r\n") && n > 0 && p->rlen < sizeof(p->rbuf) - 1)
		return;
	int code = 0;
	if (sscanf(p->rbuf, "HTTP/%*d.%*d %d", &code) != 1) {
		pods_fmt(msg, sizeof(msg), "GET http://%s:%d%s: malformed response", p->pod_ip,
			 p->spec.port, p->spec.path);
		finish(p, false, msg);
		return;
	}
	pods_fmt(msg, sizeof(msg), "HTTP probe failed with statuscode: %d", code);
	finish(p, code >= 200 && code < 400, msg);
}

static void attempt_start(struct probe *p)
{
	struct timeval tv = {p->spec.timeout_s, 0};
	char msg[300];

	if (p->spec.kind == PROBE_EXEC) {
		char nsdir[64];
		struct pods_spawn s = {.argv = p->spec.cmd,
				       .envp = p->envp,
				       .netns = p->netns,
				       .ns_pid_dir = nsdir,
				       .cgroup = p->cgroup,
				       .out_fd = -1};
		int pidfd;
		pid_t pid;
		if (p->ns_pid <= 0) {
			finish(p, false, "the container is not running");
			return;
		}
		pods_fmt(nsdir, sizeof(nsdir), "/proc/%d/ns", p->ns_pid);
		pid = pods_spawn(&s, &pidfd, msg, sizeof(msg));
		if (pid < 0) {
			finish(p, false, msg);
			return;
		}
		p->pid = pid;
		p->fd = pidfd;
		p->io = event_new(p->base, pidfd, EV_READ | EV_PERSIST, exec_cb, p);
	} else {
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_port = htons((uint16_t)p->spec.port)};
		const char *host = p->spec.host[0] ? p->spec.host : p->pod_ip;
		if (!host[0] || inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
			pods_fmt(msg, sizeof(msg), "no IPv4 address to probe ('%s')", host);
			finish(p, false, msg);
			return;
		}
		p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p->fd < 0 || (connect(p->fd, (struct sockaddr *)&sin, sizeof(sin)) &&
				  errno != EINPROGRESS)) {
			pods_fmt(msg, sizeof(msg), "dial tcp %s:%d: %s", host, p->spec.port,
				 strerror(errno));
			finish(p, false, msg);
			return;
		}
		p->io = event_new(p->base, p->fd, EV_WRITE, sock_cb, p);
	}
	if (!p->io) {
		finish(p, false, "out of memory");
		return;
	}
	event_add(p->io, NULL);
	evtimer_add(p->timeout, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	attempt_start(arg);
}

static void target_set(struct probe *p, const struct probe_target *t)
{
	pods_fmt(p->pod_ip, sizeof(p->pod_ip), "%s", t->pod_ip ? t->pod_ip : "");
	p->ns_pid = t->ns_pid;
	free(p->netns);
	free(p->cgroup);
	p->netns = t->netns ? strdup(t->netns) : NULL;
	p->cgroup = t->cgroup ? strdup(t->cgroup) : NULL;
	pods_strv_free(p->envp);
	p->envp = NULL;
	if (t->envp) {
		size_t n = 0;
		while (t->envp[n])
			n++;
		p->envp = calloc(n + 1, sizeof(*p->envp));
		for (size_t i = 0; p->envp && i < n; i++)
			p->envp[i] = strdup(t->envp[i]);
	}
}

void probe_retarget(struct probe *p, const struct probe_target *t)
{
	if (p)
		target_set(p, t);
}

struct probe *probe_start(struct event_base *base, struct probe_spec *spec, const char *name,
			  const struct probe_target *t, probe_result_fn fn, void *arg)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->base = base;
	p->spec = *spec;
	memset(spec, 0, sizeof(*spec));
	pods_fmt(p->name, sizeof(p->name), "%s", name);
	p->fn = fn;
	p->arg = arg;
	p->fd = -1;
	p->verdict = -1;
	target_set(p, t);
	p->tick = evtimer_new(base, tick_cb, p);
	p->timeout = evtimer_new(base, timeout_cb, p);
	if (!p->tick || !p->timeout) {
		probe_stop(p);
		errno = ENOMEM;
		return NULL;
	}
	schedule(p, p->spec.initial_delay_s);
	return p;
}

void probe_stop(struct probe *p)
{
	if (!p)
		return;
	attempt_reset(p);
	if (p->tick)
		event_free(p->tick);
	if (p->timeout)
		event_free(p->timeout);
	probe_spec_fini(&p->spec);
	free(p->netns);
	free(p->cgroup);
	pods_strv_free(p->envp);
	free(p);
}
