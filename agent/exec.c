// SPDX-License-Identifier: Apache-2.0
/*
 * Running the netfilter tools the legacy dataplanes drive (iptables-restore,
 * ipset, conntrack): agent/exec.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"

extern char **environ;

int agent_exec(const char *const argv[], const char *in, size_t in_len, struct sl_buf *out,
	       struct sl_buf *err)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl, pipe_only, old;
	size_t off = 0;
	pid_t pid;
	int rc, st;

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		rc = -errno;
		goto close_all;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	/* The agent blocks and ignores signals; the tool gets the defaults. */
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		rc = -rc;
		goto close_all;
	}
	close(pin[0]), close(pout[1]), close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (!in_len)
		close(pin[1]), pin[1] = -1;

	/* A tool that exits early must not kill us with SIGPIPE on the write. */
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
	while (pin[1] >= 0 || pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd pf[3] = {
			{pin[1], POLLOUT, 0}, {pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
		char buf[16384];

		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pin[1] >= 0 && pf[0].revents) {
			ssize_t n = write(pin[1], in + off, in_len - off);

			if (n > 0)
				off += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || off == in_len)
				close(pin[1]), pin[1] = -1;
		}
		for (int i = 1; i < 3; i++) {
			int *fd = i == 1 ? &pout[0] : &perr[0];
			struct sl_buf *b = i == 1 ? out : err;
			ssize_t n;

			if (*fd < 0 || !pf[i].revents)
				continue;
			n = read(*fd, buf, sizeof(buf));
			if (n > 0 && b)
				sl_buf_append(b, buf, (size_t)n);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				close(*fd), *fd = -1;
		}
	}
	{
		struct timespec zero = {0, 0};

		while (sigtimedwait(&pipe_only, NULL, &zero) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
close_all:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	return rc;
}
