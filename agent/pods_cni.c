// SPDX-License-Identifier: Apache-2.0
/*
 * CNI plugin execution for the pod runtime, the way libcni does it: the
 * network configuration from the conf dir (first file by name), each plugin
 * of the list run as <CNI_PATH>/<type> with CNI_* variables and its config on
 * stdin (name and cniVersion of the list injected, prevResult chained), ADD
 * in list order and DEL in reverse order.
 *
 * The plugin may call back into this agent while it runs (sluice-cni
 * registers the endpoint over the agent socket during ADD), so a plugin is a
 * child process whose stdout pipe and pidfd are events on the agent's loop;
 * a timer kills it when it hangs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "pods.h"
#include "sluice/json.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool conf_name(const char *n)
{
	size_t l = strlen(n);

	return (l > 9 && !strcmp(n + l - 9, ".conflist")) ||
	       (l > 5 && !strcmp(n + l - 5, ".conf")) || (l > 5 && !strcmp(n + l - 5, ".json"));
}

static struct json_object *read_json(const char *path, char *err, size_t errlen)
{
	struct sl_buf b = SL_BUF_INIT;
	char chunk[4096], perr[200];
	struct json_object *o = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		pods_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && b.len < (1u << 20))
		sl_buf_append(&b, chunk, (size_t)n);
	close(fd);
	if (!b.oom)
		o = sl_json_parse(b.data ? b.data : "", b.len, perr, sizeof(perr));
	if (!o)
		pods_fmt(err, errlen, "%s: %s", path, b.oom ? "out of memory" : perr);
	sl_buf_fini(&b);
	return o;
}

struct json_object *cni_conflist_load(const char *dir, char *path, size_t pathlen, char *err,
				      size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct json_object *out = NULL;

	errno = ENOENT;
	if (!d) {
		pods_fmt(err, errlen, "no network config: %s: %s", dir, strerror(errno));
		errno = ENOENT;
		return NULL;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !conf_name(e->d_name))
			continue;
		if (n == cap) {
			char **v = realloc(names, (cap = cap ? cap * 2 : 8) * sizeof(*v));
			if (!v)
				break;
			names = v;
		}
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	pods_fmt(err, errlen, "no network config found in %s", dir);
	errno = ENOENT;
	for (size_t i = 0; i < n && !out; i++) {
		struct json_object *o, *plugins;
		pods_fmt(path, pathlen, "%s/%s", dir, names[i]);
		o = read_json(path, err, errlen);
		if (!o || !json_object_is_type(o, json_type_object)) {
			if (o)
				pods_fmt(err, errlen, "%s: not a JSON object", path);
			json_object_put(o);
			errno = EINVAL;
			break;
		}
		plugins = sl_json_get(o, "plugins");
		if (!plugins) {
			/* A single network config: the list of one it stands for. */
			struct json_object *list = json_object_new_object();
			struct json_object *arr = json_object_new_array();
			json_object_object_add(list, "cniVersion",
					       json_object_get(sl_json_get(o, "cniVersion")));
			json_object_object_add(list, "name",
					       json_object_get(sl_json_get(o, "name")));
			json_object_array_add(arr, o);
			json_object_object_add(list, "plugins", arr);
			o = list;
			plugins = arr;
		}
		if (!json_object_is_type(plugins, json_type_array) ||
		    !json_object_array_length(plugins) || !sl_json_get_str(o, "name") ||
		    !sl_json_get_str(o, "cniVersion")) {
			pods_fmt(err, errlen,
				 "%s: name, cniVersion and a non-empty plugins list are "
				 "required",
				 path);
			json_object_put(o);
			errno = EINVAL;
			break;
		}
		for (size_t k = 0; k < json_object_array_length(plugins); k++) {
			const char *t =
				sl_json_get_str(json_object_array_get_idx(plugins, k), "type");
			if (!t || !*t || strchr(t, '/')) {
				pods_fmt(err, errlen,
					 "%s: plugins[%zu].type: required, a file name", path, k);
				json_object_put(o);
				o = NULL;
				errno = EINVAL;
				break;
			}
		}
		out = o;
		if (!o)
			break;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return out;
}

struct json_object *cni_plugin_conf(struct json_object *conflist, size_t idx,
				    struct json_object *prev_result)
{
	struct json_object *plugins = sl_json_get(conflist, "plugins"), *c;

	if (!plugins || idx >= json_object_array_length(plugins)) {
		errno = EINVAL;
		return NULL;
	}
	c = sl_json_clone(json_object_array_get_idx(plugins, idx));
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	json_object_object_add(c, "name", json_object_get(sl_json_get(conflist, "name")));
	json_object_object_add(c, "cniVersion",
			       json_object_get(sl_json_get(conflist, "cniVersion")));
	if (prev_result)
		json_object_object_add(c, "prevResult", sl_json_clone(prev_result));
	return c;
}

int cni_result_ipv4(const struct json_object *result, char *out, size_t outlen)
{
	struct json_object *ips = sl_json_get(result, "ips");

	for (size_t i = 0;
	     ips && json_object_is_type(ips, json_type_array) && i < json_object_array_length(ips);
	     i++) {
		const char *a = sl_json_get_str(json_object_array_get_idx(ips, i), "address");
		const char *slash = a ? strchr(a, '/') : NULL;
		if (!a || strchr(a, ':'))
			continue;
		pods_fmt(out, outlen, "%.*s", (int)(slash ? (size_t)(slash - a) : strlen(a)), a);
		return 0;
	}
	return -ENOENT;
}

/* --- the job --------------------------------------------------------------------- */

struct cni_job {
	struct event_base *base;
	char *command, *container_id, *netns, *ifname, *bin_dir, *args;
	struct json_object *conflist;
	struct json_object *prev; /* ADD: result so far; DEL: the ADD result */
	size_t n_plugins, step;	  /* plugins run so far */
	unsigned timeout_ms;
	pid_t pid;
	int pidfd, out_fd;
	struct event *out_ev, *exit_ev, *timer;
	struct event *fail_ev; /* reports a failure to start from the loop */
	struct sl_buf out;
	bool out_eof, exited;
	int status;
	char first_err[512]; /* DEL goes on past a failing plugin; the first error wins */
	cni_done_fn done;
	void *arg;
};

static void job_free(struct cni_job *j)
{
	if (!j)
		return;
	if (j->out_ev)
		event_free(j->out_ev);
	if (j->exit_ev)
		event_free(j->exit_ev);
	if (j->timer)
		event_free(j->timer);
	if (j->fail_ev)
		event_free(j->fail_ev);
	if (j->pid > 0) {
		kill(j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
	}
	if (j->pidfd >= 0)
		close(j->pidfd);
	if (j->out_fd >= 0)
		close(j->out_fd);
	sl_buf_fini(&j->out);
	json_object_put(j->conflist);
	json_object_put(j->prev);
	free(j->command);
	free(j->container_id);
	free(j->netns);
	free(j->ifname);
	free(j->bin_dir);
	free(j->args);
	free(j);
}

void cni_job_cancel(struct cni_job *j)
{
	job_free(j);
}

static void job_finish(struct cni_job *j, int rc, const char *err)
{
	cni_done_fn done = j->done;
	void *arg = j->arg;
	struct json_object *res = rc ? NULL : json_object_get(j->prev);
	char msg[600];

	/* err may live in the job. */
	pods_fmt(msg, sizeof(msg), "%s", err ? err : "");
	job_free(j);
	done(rc, res, rc ? msg : NULL, arg);
	json_object_put(res);
}

static int step_start(struct cni_job *j);
static void fail_cb(evutil_socket_t fd, short what, void *arg);

/* Plugin idx for the current step (ADD forward, DEL backward). */
static size_t step_plugin(const struct cni_job *j)
{
	return strcmp(j->command, "DEL") ? j->step : j->n_plugins - 1 - j->step;
}

/* Releases the finished step's process, pipe and events. */
static void step_reset(struct cni_job *j)
{
	if (j->out_ev)
		event_free(j->out_ev);
	if (j->exit_ev)
		event_free(j->exit_ev);
	j->out_ev = j->exit_ev = NULL;
	if (j->pidfd >= 0)
		close(j->pidfd);
	if (j->out_fd >= 0)
		close(j->out_fd);
	j->pidfd = j->out_fd = -1;
	if (j->timer)
		event_del(j->timer);
}

/* Starts the next step, or finishes the job when none is left. */
static void job_next(struct cni_job *j)
{
	int rc;

	step_reset(j);
	rc = j->step < j->n_plugins ? step_start(j) : 1;
	if (rc < 0)
		job_finish(j, -EIO, j->first_err);
	else if (rc > 0)
		job_finish(j, j->first_err[0] ? -EIO : 0, j->first_err[0] ? j->first_err : NULL);
}

static void step_done(struct cni_job *j)
{
	struct json_object *plugin =
		json_object_array_get_idx(sl_json_get(j->conflist, "plugins"), step_plugin(j));
	const char *type = sl_json_get_str(plugin, "type");
	char err[600];
	bool ok = WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0;
	struct json_object *o = NULL;

	if (j->out.len)
		o = sl_json_parse(j->out.data, j->out.len, NULL, 0);
	if (!ok) {
		/* The spec's error object: {"code","msg","details"}. */
		const char *msg = sl_json_get_str(o, "msg"), *det = sl_json_get_str(o, "details");
		if (msg)
			pods_fmt(err, sizeof(err), "plugin %s %s: %s%s%s", type, j->command, msg,
				 det && *det ? ": " : "", det && *det ? det : "");
		else if (WIFSIGNALED(j->status))
			pods_fmt(err, sizeof(err), "plugin %s %s: killed by signal %d%s", type,
				 j->command, WTERMSIG(j->status),
				 WTERMSIG(j->status) == SIGKILL ? " (timed out)" : "");
		else
			pods_fmt(err, sizeof(err), "plugin %s %s: exit status %d: %.200s", type,
				 j->command, WEXITSTATUS(j->status),
				 j->out.len ? j->out.data : "no output");
		json_object_put(o);
		if (!j->first_err[0])
			pods_fmt(j->first_err, sizeof(j->first_err), "%s", err);
		if (strcmp(j->command, "DEL")) {
			job_finish(j, -EIO, j->first_err);
			return;
		}
		/* DEL must clean up as much as it can: go on with the others. */
	} else if (!strcmp(j->command, "ADD")) {
		if (!o || !json_object_is_type(o, json_type_object)) {
			pods_fmt(j->first_err, sizeof(j->first_err),
				 "plugin %s ADD: the result is not a JSON object", type);
			json_object_put(o);
			job_finish(j, -EIO, j->first_err);
			return;
		}
		json_object_put(j->prev);
		j->prev = o;
	} else {
		json_object_put(o);
	}
	j->step++;
	job_next(j);
}

static void maybe_done(struct cni_job *j)
{
	if (j->out_eof && j->exited)
		step_done(j);
}

static void out_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cni_job *j = arg;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0) {
		/* A result is a few KiB; a runaway plugin does not get to fill memory. */
		if (j->out.len < (1u << 20))
			sl_buf_append(&j->out, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	event_del(j->out_ev);
	j->out_eof = true;
	maybe_done(j);
}

static void exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cni_job *j = arg;

	if (!pods_reap(j->pid, &j->status))
		return;
	j->pid = -1;
	j->exited = true;
	event_del(j->exit_ev);
	maybe_done(j);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cni_job *j = arg;

	/* The exit event reports it as killed; the pipe closes with it. */
	if (j->pid > 0)
		kill(j->pid, SIGKILL);
}

static char *env_kv(const char *k, const char *v)
{
	char *s = malloc(strlen(k) + strlen(v ? v : "") + 2);

	if (s)
		sprintf(s, "%s=%s", k, v ? v : "");
	return s;
}

/* Starts the plugin of the current step: 0 started, 1 nothing left to run,
 * -1 failed (first_err says why). */
static int step_start(struct cni_job *j)
{
	struct json_object *conf;
	struct json_object *plugin;
	const char *type, *cs;
	char path[PATH_MAX];
	char *envp[10] = {0};
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	size_t len;
	pid_t pid;

	for (;;) {
		plugin = json_object_array_get_idx(sl_json_get(j->conflist, "plugins"),
						   step_plugin(j));
		type = sl_json_get_str(plugin, "type");
		pods_fmt(path, sizeof(path), "%s/%s", j->bin_dir, type);
		if (!access(path, X_OK))
			break;
		if (!j->first_err[0])
			pods_fmt(j->first_err, sizeof(j->first_err), "plugin %s: %s: %s", type,
				 path, strerror(errno));
		if (strcmp(j->command, "DEL"))
			return -1;
		/* DEL: a missing plugin cannot undo anything; the rest still run. */
		if (++j->step == j->n_plugins)
			return 1;
	}
	conf = cni_plugin_conf(j->conflist, step_plugin(j), j->prev);
	if (!conf) {
		pods_fmt(j->first_err, sizeof(j->first_err), "plugin %s: building its config: %s",
			 type, strerror(errno));
		return -1;
	}
	envp[0] = env_kv("CNI_COMMAND", j->command);
	envp[1] = env_kv("CNI_CONTAINERID", j->container_id);
	envp[2] = env_kv("CNI_NETNS", j->netns);
	envp[3] = env_kv("CNI_IFNAME", j->ifname);
	envp[4] = env_kv("CNI_PATH", j->bin_dir);
	envp[5] = env_kv("CNI_ARGS", j->args);
	envp[6] = env_kv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	for (int i = 0; i < 7; i++)
		if (!envp[i]) {
			pods_fmt(j->first_err, sizeof(j->first_err), "out of memory");
			goto fail;
		}
	cs = sl_json_str(conf, &len);
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC | O_NONBLOCK)) {
		pods_fmt(j->first_err, sizeof(j->first_err), "pipe: %s", strerror(errno));
		goto fail;
	}
	/* The config is a few KiB, well under the pipe's buffer: written before
	 * the fork, it never blocks the loop. */
	fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	if (write(in[1], cs, len) != (ssize_t)len) {
		pods_fmt(j->first_err, sizeof(j->first_err), "plugin %s: config too large", type);
		goto fail;
	}
	close(in[1]);
	in[1] = -1;
	pid = fork();
	if (pid < 0) {
		pods_fmt(j->first_err, sizeof(j->first_err), "fork: %s", strerror(errno));
		goto fail;
	}
	if (!pid) {
		sigset_t none;
		char *argv[] = {path, NULL};
		int devnull = open("/dev/null", O_WRONLY);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		/* A plugin's stderr is its log; what failed comes back as error JSON. */
		if (devnull >= 0)
			dup2(devnull, 2);
		execve(path, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	j->pid = pid;
	j->out_fd = out[0];
	j->pidfd = pidfd_open(pid, 0);
	if (j->pidfd >= 0)
		fcntl(j->pidfd, F_SETFD, FD_CLOEXEC);
	sl_buf_reset(&j->out);
	j->out_eof = j->exited = false;
	j->out_ev = event_new(j->base, j->out_fd, EV_READ | EV_PERSIST, out_cb, j);
	j->exit_ev = j->pidfd >= 0 ? event_new(j->base, j->pidfd, EV_READ | EV_PERSIST, exit_cb, j)
				   : NULL;
	json_object_put(conf);
	for (int i = 0; i < 7; i++)
		free(envp[i]);
	if (!j->out_ev || !j->exit_ev) {
		pods_fmt(j->first_err, sizeof(j->first_err), "plugin %s: out of memory", type);
		return -1;
	}
	{
		struct timeval tv = {j->timeout_ms / 1000, (j->timeout_ms % 1000) * 1000};
		event_add(j->out_ev, NULL);
		event_add(j->exit_ev, NULL);
		event_add(j->timer, &tv);
	}
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	for (int i = 0; i < 7; i++)
		free(envp[i]);
	json_object_put(conf);
	return -1;
}

/* A job that could not start still reports through done, from the loop, so
 * callers have one completion path. */
static void fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cni_job *j = arg;

	job_finish(j, -EIO, j->first_err[0] ? j->first_err : "starting the plugin failed");
}

struct cni_job *cni_job_start(struct event_base *base, const struct cni_req *req, cni_done_fn done,
			      void *arg)
{
	struct cni_job *j = calloc(1, sizeof(*j));
	struct json_object *plugins = sl_json_get(req->conflist, "plugins");
	int rc;

	if (!j)
		return NULL;
	j->base = base;
	j->pid = -1;
	j->pidfd = j->out_fd = -1;
	j->done = done;
	j->arg = arg;
	j->timeout_ms = req->timeout_ms ? req->timeout_ms : 60000;
	j->command = strdup(req->command);
	j->container_id = strdup(req->container_id);
	j->netns = strdup(req->netns ? req->netns : "");
	j->ifname = strdup(req->ifname ? req->ifname : "eth0");
	j->bin_dir = strdup(req->bin_dir);
	j->args = strdup(req->args ? req->args : "");
	j->conflist = json_object_get(req->conflist);
	j->prev = req->prev_result ? sl_json_clone(req->prev_result) : NULL;
	j->n_plugins = plugins ? json_object_array_length(plugins) : 0;
	j->timer = evtimer_new(base, timeout_cb, j);
	j->fail_ev = evtimer_new(base, fail_cb, j);
	if (!j->command || !j->container_id || !j->netns || !j->ifname || !j->bin_dir || !j->args ||
	    !j->timer || !j->fail_ev || !j->n_plugins) {
		errno = j->n_plugins ? ENOMEM : EINVAL;
		job_free(j);
		return NULL;
	}
	rc = step_start(j);
	if (rc) {
		struct timeval now = {0, 0};
		evtimer_add(j->fail_ev, &now);
	}
	return j;
}
