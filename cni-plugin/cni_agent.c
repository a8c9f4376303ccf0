// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-cni's client of the node agent's endpoint socket and the DEL replay queue (protocol
 * in cni_agent.h). Every wait is bounded by the caller's timeout: a hung agent turns into a
 * "try again later" for the runtime, never a hung pod start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cni_agent.h"
#include "sluice/json.h"
#include "sluice/log.h"

static int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; 0, -ETIMEDOUT or -errno. */
static int agent_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline - agent_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int agent_connect(const char *sock_path, int64_t deadline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t slen;
	int fd, err;

	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			err = -errno;
			goto fail;
		}
		err = agent_wait(fd, POLLOUT, deadline);
		if (err)
			goto fail;
		slen = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &slen) < 0 || err) {
			err = err > 0 ? -err : -errno;
			goto fail;
		}
	}
	return fd;
fail:
	close(fd);
	return err;
}

int cni_agent_probe(const char *sock_path, int timeout_ms)
{
	int fd = agent_connect(sock_path, agent_now_ms() + timeout_ms);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int cni_agent_call(const char *sock_path, int timeout_ms, const char *req, char *why, size_t whylen)
{
	int64_t deadline = agent_now_ms() + timeout_ms;
	struct json_object *reply = NULL, *ok;
	size_t len = strlen(req), off = 0;
	char buf[4096], perr[128];
	size_t got = 0;
	int fd, err;
	ssize_t n;

	if (why && whylen)
		why[0] = '\0';
	fd = agent_connect(sock_path, deadline);
	if (fd < 0)
		return fd;
	/* req is one line: it must not carry its own newline (the framing). */
	if (memchr(req, '\n', len)) {
		err = -EINVAL;
		goto out;
	}
	while (off < len + 1) {
		const char *p = off < len ? req + off : "\n";

		n = send(fd, p, off < len ? len - off : 1, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				err = agent_wait(fd, POLLOUT, deadline);
				if (err)
					goto out;
				continue;
			}
			err = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	for (;;) {
		if (got == sizeof(buf) - 1) {
			err = -EPROTO;
			goto out;
		}
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				err = agent_wait(fd, POLLIN, deadline);
				if (err)
					goto out;
				continue;
			}
			err = -errno;
			goto out;
		}
		if (n == 0)
			break; /* agent closed: whatever we have is the reply */
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	reply = sl_json_parse(buf, strlen(buf), perr, sizeof(perr));
	ok = sl_json_get(reply, "ok");
	if (!reply || !ok || !json_object_is_type(ok, json_type_boolean)) {
		if (why)
			snprintf(why, whylen, "unreadable agent reply '%.80s'", buf);
		err = -EPROTO;
		goto out;
	}
	if (json_object_get_boolean(ok)) {
		err = 0;
		goto out;
	}
	if (why) {
		const char *e = sl_json_get_str(reply, "error");

		snprintf(why, whylen, "%s", e ? e : "agent refused without a reason");
	}
	err = -EREMOTEIO;
out:
	json_object_put(reply);
	close(fd);
	return err;
}

static int agent_queue_count(const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "del-", 4))
			n++;
	closedir(d);
	return n;
}

int cni_agent_queue(const char *dir, const char *key, const char *req)
{
	char path[4096], tmp[4200];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t len = strlen(req);
	struct stat st;
	const char *p;
	int fd, n, err = 0;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	for (p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/del-%016llx.json", dir,
			     (unsigned long long)h) >= sizeof(path))
		return -ENAMETOOLONG;
	/* A repeated DEL replaces its own entry, so it never counts against the limit. */
	if (stat(path, &st) < 0) {
		n = agent_queue_count(dir);
		if (n < 0)
			return n;
		if (n >= CNI_AGENT_QUEUE_MAX)
			return -ENOSPC;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, req, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		err = errno ? -errno : -EIO;
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}
