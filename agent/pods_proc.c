// SPDX-License-Identifier: Apache-2.0
/*
 * Namespaces, cgroups and processes for the pod runtime (agent/pods.h).
 *
 * A pod's network namespace is a named netns (a file under /run/netns with
 * the namespace bind-mounted on it, as `ip netns add` makes), so the CNI
 * plugins, `ip netns exec` and the lab tools all find it by path. Each
 * container process is forked from the agent and, before exec: joins its
 * cgroup, the pod netns, a new mount namespace in which the pod's resolv.conf,
 * hosts and hostname are bind-mounted over /etc, and a new UTS namespace with
 * the pod's hostname. Exec probes join the namespaces of the container's
 * process instead, as `kubectl exec` would.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pods.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Loopback up in the calling thread's netns, as runtimes do for a sandbox:
 * a pod talks to itself over 127.0.0.1. */
static int lo_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		rc = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr))
		rc = -errno;
	close(fd);
	return rc;
}

int pods_netns_create(const char *path)
{
	char dir[PATH_MAX], *slash;
	int self = -1, fd, rc = 0;

	pods_fmt(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
	}
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	/* A network namespace is per thread: this thread enters a new one just
	 * long enough to pin it on the file, then returns to the node's. */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		rc = -errno;
		unlink(path);
		return rc;
	}
	if (unshare(CLONE_NEWNET)) {
		rc = -errno;
	} else {
		rc = lo_up();
		if (!rc && mount("/proc/thread-self/ns/net", path, NULL, MS_BIND, NULL))
			rc = -errno;
		if (setns(self, CLONE_NEWNET)) {
			/* Cannot happen with the rights we just used; staying in the pod
			 * netns would misroute everything the agent does afterwards. */
			abort();
		}
	}
	close(self);
	if (rc)
		unlink(path);
	return rc;
}

int pods_netns_remove(const char *path)
{
	if (umount2(path, MNT_DETACH) && errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int cgroup_rmdir_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		pods_fmt(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		int r = cgroup_rmdir_tree(sub);
		if (r && !rc)
			rc = r;
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

int pods_cgroup_destroy(const char *dir)
{
	char kill_path[PATH_MAX];
	struct stat st;

	if (stat(dir, &st))
		return errno == ENOENT ? 0 : -errno;
	pods_fmt(kill_path, sizeof(kill_path), "%s/cgroup.kill", dir);
	/* cgroup.kill takes the whole subtree, including processes that forked
	 * away from the container's process group. */
	write_file(kill_path, "1");
	return cgroup_rmdir_tree(dir);
}

int pods_rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		pods_fmt(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR) {
			int r = pods_rm_tree(sub);
			if (r)
				rc = r;
		} else if (unlink(sub) && errno != ENOENT)
			rc = -errno;
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT)
		rc = -errno;
	return rc;
}

/* In the child: reports "step: error" to the parent and exits. */
static void __attribute__((noreturn)) child_fail(int efd, const char *step, int err)
{
	char msg[512];
	pods_fmt(msg, sizeof(msg), "%s: %s", step, strerror(err));
	if (write(efd, msg, strlen(msg)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(127);
}

static int join_ns(const char *dir, const char *name, int type)
{
	char p[PATH_MAX];
	int fd, rc = 0;

	pods_fmt(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, type))
		rc = -errno;
	close(fd);
	return rc;
}

/* Bind-mounts pod_dir/name over /etc/name inside the new mount namespace. A
 * missing /etc/name (no host hosts file) is skipped: nothing to cover. */
static int bind_etc(const char *pod_dir, const char *name)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;

	pods_fmt(src, sizeof(src), "%s/%s", pod_dir, name);
	pods_fmt(dst, sizeof(dst), "/etc/%s", name);
	if (stat(src, &st) || stat(dst, &st))
		return 0;
	return mount(src, dst, NULL, MS_BIND, NULL) ? -errno : 0;
}

static void __attribute__((noreturn)) child_run(const struct pods_spawn *s, int efd)
{
	char procs[PATH_MAX];
	sigset_t none;
	int rc, fd;

	/* The agent blocks and ignores signals (SIGPIPE) that a container must
	 * see with their defaults; ignored dispositions survive exec. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	/* Its own process group, so a stop signal reaches what the shell forked. */
	setsid();
	pods_fmt(procs, sizeof(procs), "%s/cgroup.procs", s->cgroup);
	rc = write_file(procs, "0");
	if (rc)
		child_fail(efd, "entering the cgroup", -rc);
	if (s->netns) {
		fd = open(s->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET))
			child_fail(efd, "joining the pod netns", errno);
		close(fd);
	}
	if (s->ns_pid_dir) {
		rc = join_ns(s->ns_pid_dir, "mnt", CLONE_NEWNS);
		if (!rc)
			rc = join_ns(s->ns_pid_dir, "uts", CLONE_NEWUTS);
		if (rc)
			child_fail(efd, "joining the container's namespaces", -rc);
	} else {
		if (unshare(CLONE_NEWNS | CLONE_NEWUTS))
			child_fail(efd, "creating mount and UTS namespaces", errno);
		/* Private first, so the /etc mounts never propagate to the node. */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			child_fail(efd, "making / private", errno);
		if (s->pod_dir) {
			static const char *const files[] = {"resolv.conf", "hosts", "hostname"};
			for (int i = 0; i < 3; i++) {
				rc = bind_etc(s->pod_dir, files[i]);
				if (rc)
					child_fail(efd, "bind-mounting the pod's /etc files", -rc);
			}
		}
		if (s->hostname && sethostname(s->hostname, strlen(s->hostname)))
			child_fail(efd, "setting the hostname", errno);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 0) < 0)
		child_fail(efd, "opening /dev/null", errno);
	if (s->out_fd >= 0)
		fd = s->out_fd;
	else
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		child_fail(efd, "redirecting output", errno);
	if (s->workdir && *s->workdir && chdir(s->workdir))
		child_fail(efd, "workingDir", errno);
	else if ((!s->workdir || !*s->workdir) && chdir("/"))
		child_fail(efd, "chdir /", errno);
	/* Nothing of the agent's (API sockets, maps, pipes) leaks into the pod;
	 * the error pipe closes on a successful exec, which is the parent's
	 * signal that it happened. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	environ = (char **)s->envp;
	/* PATH lookup uses the container's PATH (environ now). */
	execvp(s->argv[0], s->argv);
	child_fail(efd, s->argv[0], errno);
}

pid_t pods_spawn(const struct pods_spawn *s, int *pidfd, char *err, size_t errlen)
{
	int ep[2];
	char msg[512];
	ssize_t n;
	pid_t pid;
	int st;

	*pidfd = -1;
	if (pipe2(ep, O_CLOEXEC)) {
		pods_fmt(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(ep[0]);
		close(ep[1]);
		pods_fmt(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (!pid) {
		close(ep[0]);
		child_run(s, ep[1]);
	}
	close(ep[1]);
	/* Everything before exec is a handful of syscalls: waiting for the pipe
	 * to close costs microseconds and tells exec success from failure. */
	do
		n = read(ep[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n > 0) {
		msg[n] = '\0';
		pods_fmt(err, errlen, "%s", msg);
		waitpid(pid, &st, 0);
		return -ENOEXEC;
	}
	*pidfd = pidfd_open(pid, 0);
	if (*pidfd < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		pods_fmt(err, errlen, "pidfd_open: %s", strerror(e));
		return -e;
	}
	fcntl(*pidfd, F_SETFD, FD_CLOEXEC);
	return pid;
}
