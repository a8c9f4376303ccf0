// SPDX-License-Identifier: Apache-2.0
/*
 * The pod runtime's lifecycle (agent/pods.h): the Pod informer for this
 * node, one state machine per pod, container processes and their restarts,
 * probes' verdicts, graceful deletion, and status through pods/status.
 *
 * A pod's sandbox lives in <state_dir>/pods/<uid>/: sandbox.json (namespace,
 * name, netns, the CNI config used and ADD's result, written before anything
 * is created outside the directory), resolv.conf, hosts, hostname and one
 * <container>.log per container. Whatever the agent finds there at start
 * was left by a previous run and is torn down with exactly that config.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "pods.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/informer.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define PD		"pods"
#define NETNS_DIR	"/run/netns"
#define CNI_TIMEOUT_MS	60000
#define NET_RETRY_S	1
#define SANDBOX_RETRY_S 5

enum pod_state {
	PS_WAIT_NET, /* no network config yet, or waiting to retry sandbox creation */
	PS_CNI_ADD,  /* netns made, plugins running */
	PS_RUNNING,  /* containers run (or ran to completion) */
	PS_STOPPING, /* containers were told to stop; grace timer armed */
	PS_TEARDOWN, /* plugins' DEL running, then netns/cgroup/dir removal */
	PS_DONE,     /* nothing left on the node; waiting for the API to forget it */
};

enum ctr_state { CS_WAITING, CS_RUNNING, CS_TERMINATED };

struct term {
	bool set;
	int exit_code;
	int signal;
	char reason[32];
	time_t started, finished;
	char id[160];
};

struct ctr {
	struct pod *pod;
	char name[254];
	struct json_object *spec; /* borrowed from pod->spec_obj */
	char cgroup[PATH_MAX];
	enum ctr_state state;
	char reason[64];   /* waiting reason */
	char message[512]; /* waiting message */
	pid_t pid;	   /* running process (group leader), 0 when none */
	int pidfd;
	struct event *exit_ev;
	time_t started_at;
	struct term term; /* state.terminated */
	struct term last; /* lastState.terminated */
	unsigned restarts;
	unsigned crashes; /* for the back-off; reset after 10 min of running */
	bool ready, started;
	bool liveness_kill; /* the current stop was asked by the liveness probe */
	struct event *restart_ev;
	struct event *kill_ev; /* liveness stop: SIGKILL after the grace period */
	struct probe *rp, *lp, *sp;
	char **envp;
};

struct pod {
	struct pods *pm;
	char uid[128], ns[254], name[254];
	struct json_object *obj;      /* latest object from the API; NULL when gone */
	struct json_object *spec_obj; /* the object the running sandbox was made from */
	enum pod_state st;
	bool leftover;	    /* found on disk at start, from a previous run */
	bool delete_api;    /* graceful deletion: DELETE with grace 0 when stopped */
	bool restart_after; /* make a fresh sandbox once the teardown is done */
	bool host_net;	    /* spec.hostNetwork: the node's netns, no CNI */
	char ip[64];
	char dir[PATH_MAX], netns[PATH_MAX], cgroup[PATH_MAX];
	struct ctr *ctrs;
	size_t n_ctrs;
	struct cni_job *cni;
	struct json_object *cni_conf, *cni_result;
	struct event *timer; /* WAIT_NET retry, stop grace, teardown retry */
	time_t start_time;
	struct json_object *conds;
	char *last_status; /* serialised status last written */
	char reason[64], message[512];
	char *reported; /* last Event reason posted for the pod, to post once */
};

struct pods {
	struct event_base *base;
	struct sl_client *client;
	const struct agent_config *cfg;
	char pods_dir[PATH_MAX]; /* <state_dir>/pods */
	char cg_pods[PATH_MAX];	 /* <cgroup_root>/pods */
	char host_ip[64];
	struct sl_informer *inf;
	struct event *inf_ev;
	struct pod **v;
	size_t n;
	struct event *status_ev;
	bool status_pending;
};

static void pod_advance(struct pod *p);
static void pod_teardown(struct pod *p);
static void ctr_start(struct ctr *c);
static void status_dirty(struct pods *pm);

/* --- small helpers ----------------------------------------------------------------- */

static const char *pod_str(struct json_object *obj, const char *a, const char *b)
{
	return sl_json_get_str(sl_json_get(obj, a), b);
}

static int write_text(const char *dir, const char *name, const char *text, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, rc = 0;

	pods_fmt(path, sizeof(path), "%s/%s", dir, name);
	pods_fmt(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		rc = -EIO;
	close(fd);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static struct json_object *read_json_file(const char *dir, const char *name)
{
	char path[PATH_MAX], buf[65536];
	ssize_t n;
	int fd;

	pods_fmt(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 ? sl_json_parse(buf, (size_t)n, NULL, 0) : NULL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	pods_fmt(tmp, sizeof(tmp), "%s", path);
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(tmp, mode) && errno != EEXIST ? -errno : 0;
}

static void now_str(char *out, size_t len)
{
	pods_rfc3339(time(NULL), out, len);
}

static const char *restart_policy(const struct pod *p)
{
	const char *rp = pod_str(p->spec_obj ? p->spec_obj : p->obj, "spec", "restartPolicy");

	return rp ? rp : "Always";
}

static int grace_seconds(const struct pod *p)
{
	int64_t g = 30;

	if (p->obj &&
	    sl_json_get_int(sl_json_get(p->obj, "metadata"), "deletionGracePeriodSeconds", &g))
		return g < 0 ? 0 : (int)g;
	if (sl_json_get_int(sl_json_get(p->spec_obj ? p->spec_obj : p->obj, "spec"),
			    "terminationGracePeriodSeconds", &g))
		return g < 0 ? 0 : (int)(g > 3600 ? 3600 : g);
	return 30;
}

static void timer_in(struct event *ev, int seconds)
{
	struct timeval tv = {seconds, 0};

	evtimer_add(ev, &tv);
}

/* --- Events ---------------------------------------------------------------------- */

/* Posts an Event on the pod (client-go recorder naming), once per reason in a
 * row, so a pod waiting for the network does not flood the API. */
static void pod_event(struct pod *p, const char *type, const char *reason, const char *msg,
		      bool once)
{
	struct pods *pm = p->pm;
	struct sl_buf b = SL_BUF_INIT;
	struct sl_client_resp resp = {0};
	char path[600], ts[32];
	struct timespec t;

	if (once && p->reported && !strcmp(p->reported, reason))
		return;
	free(p->reported);
	p->reported = strdup(reason);
	clock_gettime(CLOCK_REALTIME, &t);
	now_str(ts, sizeof(ts));
	sl_buf_puts(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":");
	{
		char name[400];
		pods_fmt(name, sizeof(name), "%s.%llx", p->name,
			 (unsigned long long)t.tv_sec * 1000000000ull +
				 (unsigned long long)t.tv_nsec);
		sl_buf_json_str(&b, name);
	}
	sl_buf_puts(&b, ",\"namespace\":");
	sl_buf_json_str(&b, p->ns);
	sl_buf_puts(&b,
		    "},\"involvedObject\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"namespace\":");
	sl_buf_json_str(&b, p->ns);
	sl_buf_puts(&b, ",\"name\":");
	sl_buf_json_str(&b, p->name);
	sl_buf_puts(&b, ",\"uid\":");
	sl_buf_json_str(&b, p->uid);
	sl_buf_puts(&b, "},\"reason\":");
	sl_buf_json_str(&b, reason);
	sl_buf_puts(&b, ",\"message\":");
	sl_buf_json_str(&b, msg);
	sl_buf_printf(&b,
		      ",\"type\":\"%s\",\"count\":1,\"firstTimestamp\":\"%s\",\"lastTimestamp\":"
		      "\"%s\",\"source\":{\"component\":\"kubelet\",\"host\":",
		      type, ts, ts);
	sl_buf_json_str(&b, pm->cfg->node_name);
	sl_buf_puts(&b, "}}");
	pods_fmt(path, sizeof(path), "/api/v1/namespaces/%s/events", p->ns);
	if (!b.oom &&
	    (sl_client_request(pm->client, "POST", path, b.data, b.len, NULL, NULL, &resp) ||
	     resp.status >= 300))
		pr_debug(PD, "pod '%s/%s': posting event %s failed: %ld %s", p->ns, p->name, reason,
			 resp.status, resp.err);
	sl_client_resp_fini(&resp);
	sl_buf_fini(&b);
}

/* --- status --------------------------------------------------------------------- */

static void term_json(struct json_object *parent, const char *key, const struct term *t)
{
	struct json_object *o = json_object_new_object(), *x = json_object_new_object();
	char ts[32];

	sl_json_set_int(x, "exitCode", t->exit_code);
	if (t->signal)
		sl_json_set_int(x, "signal", t->signal);
	sl_json_set_str(x, "reason", t->reason);
	pods_rfc3339(t->started, ts, sizeof(ts));
	sl_json_set_str(x, "startedAt", ts);
	pods_rfc3339(t->finished, ts, sizeof(ts));
	sl_json_set_str(x, "finishedAt", ts);
	sl_json_set_str(x, "containerID", t->id);
	json_object_object_add(o, "terminated", x);
	json_object_object_add(parent, key, o);
}

static void ctr_id(const struct ctr *c, char *out, size_t len)
{
	pods_fmt(out, len, "sluice://%s/%s/%u", c->pod->uid, c->name, c->restarts);
}

static const char *pod_phase(const struct pod *p)
{
	struct pods_ctr_phase *v = calloc(p->n_ctrs + 1, sizeof(*v));
	const char *phase;

	if (!v)
		return "Unknown";
	for (size_t i = 0; i < p->n_ctrs; i++) {
		const struct ctr *c = &p->ctrs[i];
		v[i].state = c->state == CS_RUNNING	 ? PODS_CTR_RUNNING
			     : c->state == CS_TERMINATED ? PODS_CTR_TERMINATED
							 : PODS_CTR_WAITING;
		v[i].exit_code = c->term.exit_code;
		v[i].restarting = c->restarts || c->term.set || c->last.set;
	}
	phase = pods_phase(p->st >= PS_RUNNING, v, p->n_ctrs);
	free(v);
	return phase;
}

static struct json_object *pod_status(struct pod *p)
{
	struct json_object *st = json_object_new_object(), *cs = json_object_new_array();
	char ts[32];
	bool all_ready = p->n_ctrs > 0 && p->st == PS_RUNNING;

	if (!st || !cs) {
		json_object_put(st);
		json_object_put(cs);
		return NULL;
	}
	sl_json_set_str(st, "phase", pod_phase(p));
	if (p->reason[0] && p->st < PS_RUNNING) {
		sl_json_set_str(st, "reason", p->reason);
		sl_json_set_str(st, "message", p->message);
	}
	if (p->pm->host_ip[0]) {
		struct json_object *a = json_object_new_array(), *e = json_object_new_object();
		sl_json_set_str(st, "hostIP", p->pm->host_ip);
		sl_json_set_str(e, "ip", p->pm->host_ip);
		json_object_array_add(a, e);
		json_object_object_add(st, "hostIPs", a);
	}
	if (p->ip[0]) {
		struct json_object *a = json_object_new_array(), *e = json_object_new_object();
		sl_json_set_str(st, "podIP", p->ip);
		sl_json_set_str(e, "ip", p->ip);
		json_object_array_add(a, e);
		json_object_object_add(st, "podIPs", a);
	}
	pods_rfc3339(p->start_time, ts, sizeof(ts));
	sl_json_set_str(st, "startTime", ts);
	sl_json_set_str(st, "qosClass", "BestEffort");
	for (size_t i = 0; i < p->n_ctrs; i++) {
		struct ctr *c = &p->ctrs[i];
		struct json_object *o = json_object_new_object(), *state = json_object_new_object();
		const char *image = sl_json_get_str(c->spec, "image");
		char id[200];

		all_ready &= c->ready;
		sl_json_set_str(o, "name", c->name);
		sl_json_set_str(o, "image", image ? image : "");
		sl_json_set_str(o, "imageID", "");
		json_object_object_add(o, "ready", json_object_new_boolean(c->ready));
		json_object_object_add(o, "started", json_object_new_boolean(c->started));
		sl_json_set_int(o, "restartCount", c->restarts);
		if (c->state == CS_RUNNING) {
			struct json_object *r = json_object_new_object();
			ctr_id(c, id, sizeof(id));
			sl_json_set_str(o, "containerID", id);
			pods_rfc3339(c->started_at, ts, sizeof(ts));
			sl_json_set_str(r, "startedAt", ts);
			json_object_object_add(state, "running", r);
			json_object_object_add(o, "state", state);
		} else if (c->state == CS_TERMINATED) {
			sl_json_set_str(o, "containerID", c->term.id);
			json_object_put(state);
			term_json(o, "state", &c->term);
		} else {
			struct json_object *w = json_object_new_object();
			sl_json_set_str(w, "reason",
					c->reason[0] ? c->reason : "ContainerCreating");
			if (c->message[0])
				sl_json_set_str(w, "message", c->message);
			json_object_object_add(state, "waiting", w);
			json_object_object_add(o, "state", state);
		}
		if (c->last.set)
			term_json(o, "lastState", &c->last);
		else
			json_object_object_add(o, "lastState", json_object_new_object());
		json_object_array_add(cs, o);
	}
	json_object_object_add(st, "containerStatuses", cs);
	if (!p->conds)
		p->conds = json_object_new_array();
	if (p->conds) {
		now_str(ts, sizeof(ts));
		pods_cond_set(p->conds, "Initialized", true, NULL, ts);
		pods_cond_set(p->conds, "Ready", all_ready, all_ready ? NULL : "ContainersNotReady",
			      ts);
		pods_cond_set(p->conds, "ContainersReady", all_ready,
			      all_ready ? NULL : "ContainersNotReady", ts);
		pods_cond_set(p->conds, "PodScheduled", true, NULL, ts);
		json_object_object_add(st, "conditions", sl_json_clone(p->conds));
	}
	return st;
}

/* PATCH (merge) of pods/<name>/status: the main resource ignores status. */
static int status_patch(struct pod *p, const char *patch, char *err, size_t errlen)
{
	char *base = sl_client_path(&SL_GVR_PODS, p->ns, p->name, NULL);
	struct sl_client_resp resp = {0};
	char path[1200];
	int rc;

	if (!base) {
		pods_fmt(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pods_fmt(path, sizeof(path), "%s/status", base);
	free(base);
	rc = sl_client_request(p->pm->client, "PATCH", path, patch, strlen(patch),
			       "application/merge-patch+json", NULL, &resp);
	if (!rc && resp.status >= 300)
		rc = sl_client_status_err(resp.status, NULL);
	if (rc)
		pods_fmt(err, errlen, "%ld %s", resp.status, resp.err);
	sl_client_resp_fini(&resp);
	return rc;
}

/* Writes the pod's status when it differs from what was last written.
 * Returns false when a write failed (to be retried). */
static bool pod_status_sync(struct pod *p)
{
	struct json_object *st, *patch;
	const char *s;
	char err[256];
	int rc;

	if (!p->obj || p->st == PS_DONE || p->st == PS_TEARDOWN)
		return true;
	st = pod_status(p);
	if (!st)
		return false;
	s = sl_json_str(st, NULL);
	if (p->last_status && !strcmp(p->last_status, s)) {
		json_object_put(st);
		return true;
	}
	patch = json_object_new_object();
	json_object_object_add(patch, "status", json_object_get(st));
	rc = status_patch(p, sl_json_str(patch, NULL), err, sizeof(err));
	if (rc) {
		pr_warn(PD, "pod '%s/%s': writing status failed: %s", p->ns, p->name, err);
		/* A vanished pod is handled by its DELETED event; anything else is
		 * retried. */
		if (rc == -SL_ERR_NOTFOUND)
			rc = 0;
	} else {
		free(p->last_status);
		p->last_status = strdup(s);
	}
	json_object_put(patch);
	json_object_put(st);
	return rc == 0;
}

static void status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pods *pm = arg;
	bool ok = true;

	pm->status_pending = false;
	for (size_t i = 0; i < pm->n; i++)
		ok &= pod_status_sync(pm->v[i]);
	if (!ok) {
		/* The API was unreachable or refused: try again in a second. */
		struct timeval tv = {1, 0};
		pm->status_pending = true;
		evtimer_add(pm->status_ev, &tv);
	}
}

/* Status writes are batched: every change in one loop iteration is one write
 * per pod. */
static void status_dirty(struct pods *pm)
{
	struct timeval tv = {0, 0};

	if (pm->status_pending)
		return;
	pm->status_pending = true;
	evtimer_add(pm->status_ev, &tv);
}

/* --- pods list ------------------------------------------------------------------- */

static struct pod *pod_find(struct pods *pm, const char *uid)
{
	for (size_t i = 0; i < pm->n; i++)
		if (!strcmp(pm->v[i]->uid, uid))
			return pm->v[i];
	return NULL;
}

static void probes_stop(struct ctr *c)
{
	probe_stop(c->rp);
	probe_stop(c->lp);
	probe_stop(c->sp);
	c->rp = c->lp = c->sp = NULL;
}

static void ctrs_free(struct pod *p)
{
	for (size_t i = 0; i < p->n_ctrs; i++) {
		struct ctr *c = &p->ctrs[i];
		probes_stop(c);
		if (c->exit_ev)
			event_free(c->exit_ev);
		if (c->restart_ev)
			event_free(c->restart_ev);
		if (c->kill_ev)
			event_free(c->kill_ev);
		if (c->pidfd >= 0)
			close(c->pidfd);
		pods_strv_free(c->envp);
	}
	free(p->ctrs);
	p->ctrs = NULL;
	p->n_ctrs = 0;
}

static void pod_free(struct pod *p)
{
	struct pods *pm = p->pm;

	for (size_t i = 0; i < pm->n; i++) {
		if (pm->v[i] == p) {
			pm->v[i] = pm->v[--pm->n];
			break;
		}
	}
	cni_job_cancel(p->cni);
	ctrs_free(p);
	if (p->timer)
		event_free(p->timer);
	json_object_put(p->obj);
	json_object_put(p->spec_obj);
	json_object_put(p->cni_conf);
	json_object_put(p->cni_result);
	json_object_put(p->conds);
	free(p->last_status);
	free(p->reported);
	free(p);
}

static void pod_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct pod *pod_new(struct pods *pm, const char *uid, const char *ns, const char *name)
{
	struct pod *p = calloc(1, sizeof(*p));
	struct pod **v = realloc(pm->v, (pm->n + 1) * sizeof(*v));

	if (v)
		pm->v = v;
	if (!p || !v) {
		free(p);
		return NULL;
	}
	p->pm = pm;
	pods_fmt(p->uid, sizeof(p->uid), "%s", uid);
	pods_fmt(p->ns, sizeof(p->ns), "%s", ns);
	pods_fmt(p->name, sizeof(p->name), "%s", name);
	pods_fmt(p->dir, sizeof(p->dir), "%s/%s", pm->pods_dir, uid);
	pods_fmt(p->netns, sizeof(p->netns), NETNS_DIR "/sl-%s", uid);
	pods_fmt(p->cgroup, sizeof(p->cgroup), "%s/%s", pm->cg_pods, uid);
	/* startTime: when this node's runtime first saw the pod, as kubelet does. */
	p->start_time = time(NULL);
	p->timer = evtimer_new(pm->base, pod_timer_cb, p);
	if (!p->timer) {
		free(p);
		return NULL;
	}
	pm->v[pm->n++] = p;
	return p;
}

/* --- containers ------------------------------------------------------------------ */

static void ctr_exit_cb(evutil_socket_t fd, short what, void *arg);
static void ctr_restart_cb(evutil_socket_t fd, short what, void *arg);
static void ctr_kill_cb(evutil_socket_t fd, short what, void *arg);
static void probe_cb(struct probe *pr, bool ok, const char *msg, void *arg);

static int ctrs_init(struct pod *p)
{
	struct json_object *cs = sl_json_get(sl_json_get(p->spec_obj, "spec"), "containers");
	struct json_object *prev = sl_json_get(sl_json_get(p->obj, "status"), "containerStatuses");
	size_t n =
		cs && json_object_is_type(cs, json_type_array) ? json_object_array_length(cs) : 0;

	if (!n) {
		pods_fmt(p->message, sizeof(p->message), "spec.containers: required");
		return -EINVAL;
	}
	p->ctrs = calloc(n, sizeof(*p->ctrs));
	if (!p->ctrs)
		return -ENOMEM;
	p->n_ctrs = n;
	for (size_t i = 0; i < n; i++) {
		struct ctr *c = &p->ctrs[i];
		const char *name;
		c->pod = p;
		c->pidfd = -1;
		c->spec = json_object_array_get_idx(cs, i);
		name = sl_json_get_str(c->spec, "name");
		if (!name || !*name || strchr(name, '/') || name[0] == '.') {
			pods_fmt(p->message, sizeof(p->message),
				 "spec.containers[%zu].name: required, a DNS label", i);
			return -EINVAL;
		}
		pods_fmt(c->name, sizeof(c->name), "%s", name);
		pods_fmt(c->cgroup, sizeof(c->cgroup), "%s/%s", p->cgroup, name);
		c->restart_ev = evtimer_new(p->pm->base, ctr_restart_cb, c);
		c->kill_ev = evtimer_new(p->pm->base, ctr_kill_cb, c);
		if (!c->restart_ev || !c->kill_ev)
			return -ENOMEM;
		/* A container that ran under a previous agent was restarted by this
		 * one: its count goes on from the API's. */
		for (size_t k = 0; prev && k < json_object_array_length(prev); k++) {
			struct json_object *o = json_object_array_get_idx(prev, k);
			int64_t rc;
			if (!strcmp(sl_json_get_str(o, "name") ? sl_json_get_str(o, "name") : "",
				    name) &&
			    sl_json_get_str(o, "containerID") &&
			    sl_json_get_int(o, "restartCount", &rc))
				c->restarts = (unsigned)rc + 1;
		}
	}
	return 0;
}

/* The containers of the pod as the API has it, once: restart counts and
 * back-off survive a sandbox re-creation. */
static int pod_ctrs_ensure(struct pod *p)
{
	int rc;

	if (p->n_ctrs)
		return 0;
	json_object_put(p->spec_obj);
	p->spec_obj = json_object_get(p->obj);
	rc = ctrs_init(p);
	if (rc)
		ctrs_free(p);
	return rc;
}

static void probe_target_of(struct ctr *c, struct probe_target *t)
{
	*t = (struct probe_target){.pod_ip = c->pod->ip,
				   .ns_pid = c->pid,
				   .netns = c->pod->host_net ? NULL : c->pod->netns,
				   .cgroup = c->cgroup,
				   .envp = c->envp};
}

static struct probe *probe_make(struct ctr *c, const char *key, const char *role)
{
	struct json_object *pj = sl_json_get(c->spec, key);
	struct probe_spec spec;
	struct probe_target t;
	struct probe *pr;
	char err[300], name[600];

	if (!pj)
		return NULL;
	if (probe_spec_parse(pj, c->spec, &spec, err, sizeof(err))) {
		char msg[700];
		pods_fmt(msg, sizeof(msg), "container '%s': %s: %s", c->name, key, err);
		pr_warn(PD, "pod '%s/%s': %s", c->pod->ns, c->pod->name, msg);
		pod_event(c->pod, "Warning", "ProbeError", msg, true);
		return NULL;
	}
	pods_fmt(name, sizeof(name), "%s/%s/%s %s", c->pod->ns, c->pod->name, c->name, role);
	probe_target_of(c, &t);
	pr = probe_start(c->pod->pm->base, &spec, name, &t, probe_cb, c);
	if (!pr)
		probe_spec_fini(&spec);
	return pr;
}

static void probes_after_start(struct ctr *c)
{
	c->started = true;
	c->lp = probe_make(c, "livenessProbe", "liveness");
	c->rp = probe_make(c, "readinessProbe", "readiness");
	if (!sl_json_get(c->spec, "readinessProbe"))
		c->ready = true;
}

/* Stops a container: SIGTERM to its process group, SIGKILL to its cgroup
 * after grace seconds. */
static void ctr_stop(struct ctr *c, int grace)
{
	probes_stop(c);
	c->ready = false;
	if (!c->pid)
		return;
	kill(-c->pid, SIGTERM);
	timer_in(c->kill_ev, grace);
}

static void ctr_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctr *c = arg;
	char path[PATH_MAX];
	int kfd;

	if (!c->pid)
		return;
	pods_fmt(path, sizeof(path), "%s/cgroup.kill", c->cgroup);
	kfd = open(path, O_WRONLY | O_CLOEXEC);
	if (kfd < 0 || write(kfd, "1", 1) != 1)
		kill(-c->pid, SIGKILL);
	if (kfd >= 0)
		close(kfd);
}

static void probe_cb(struct probe *pr, bool ok, const char *msg, void *arg)
{
	struct ctr *c = arg;
	struct pod *p = c->pod;
	char m[700];

	if (pr == c->sp) {
		if (ok) {
			probe_stop(c->sp);
			c->sp = NULL;
			probes_after_start(c);
			status_dirty(p->pm);
			return;
		}
		pods_fmt(m, sizeof(m), "Startup probe failed: %s", msg);
	} else if (pr == c->rp) {
		c->ready = ok;
		status_dirty(p->pm);
		if (ok)
			return;
		pods_fmt(m, sizeof(m), "Readiness probe failed: %s", msg);
		pod_event(p, "Warning", "Unhealthy", m, false);
		return;
	} else if (ok) {
		return; /* liveness fine */
	} else {
		pods_fmt(m, sizeof(m), "Liveness probe failed: %s", msg);
	}
	/* Liveness or startup failure: the container is restarted. */
	pr_info(PD, "pod '%s/%s': container '%s': %s; restarting", p->ns, p->name, c->name, m);
	pod_event(p, "Warning", "Unhealthy", m, false);
	{
		char k[400];
		pods_fmt(k, sizeof(k), "Container %s failed liveness probe, will be restarted",
			 c->name);
		pod_event(p, "Normal", "Killing", k, false);
	}
	c->liveness_kill = true;
	/* pr is freed by ctr_stop: nothing after this touches it. */
	ctr_stop(c, grace_seconds(p));
}

static void ctr_fail_start(struct ctr *c, const char *reason, const char *msg)
{
	struct pod *p = c->pod;

	pr_warn(PD, "pod '%s/%s': %s", p->ns, p->name, msg);
	pod_event(p, "Warning", "Failed", msg, true);
	c->state = CS_WAITING;
	pods_fmt(c->reason, sizeof(c->reason), "%s", reason);
	pods_fmt(c->message, sizeof(c->message), "%s", msg);
	/* Retried with the crash-loop back-off, as kubelet retries a container
	 * it could not create. */
	c->crashes++;
	timer_in(c->restart_ev, pods_backoff_s(c->crashes) ? pods_backoff_s(c->crashes) : 10);
	status_dirty(p->pm);
}

static void ctr_start(struct ctr *c)
{
	struct pod *p = c->pod;
	struct pods_env_ctx ec = {
		.pod_ip = p->ip, .host_ip = p->pm->host_ip, .node_name = p->pm->cfg->node_name};
	struct pods_spawn s = {0};
	char err[600], log[PATH_MAX], host[64];
	char **argv = NULL;
	int fd, pidfd;
	pid_t pid;

	pods_strv_free(c->envp);
	c->envp = NULL;
	if (pods_env_build(p->spec_obj, c->spec, &ec, &c->envp, err, sizeof(err)) ||
	    pods_argv_build(c->spec, c->envp, &argv, err, sizeof(err))) {
		ctr_fail_start(c, "CreateContainerConfigError", err);
		return;
	}
	if (mkdir(c->cgroup, 0755) && errno != EEXIST) {
		pods_fmt(err, sizeof(err), "creating cgroup %s: %s", c->cgroup, strerror(errno));
		pods_strv_free(argv);
		ctr_fail_start(c, "CreateContainerError", err);
		return;
	}
	pods_fmt(log, sizeof(log), "%s/%s.log", p->dir, c->name);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		pods_fmt(err, sizeof(err), "opening log %s: %s", log, strerror(errno));
		pods_strv_free(argv);
		ctr_fail_start(c, "CreateContainerError", err);
		return;
	}
	pods_hostname(p->spec_obj, host, sizeof(host));
	s.argv = argv;
	s.envp = c->envp;
	s.netns = p->host_net ? NULL : p->netns;
	s.hostname = p->host_net ? NULL : host;
	s.cgroup = c->cgroup;
	s.pod_dir = p->dir;
	s.workdir = sl_json_get_str(c->spec, "workingDir");
	s.out_fd = fd;
	pid = pods_spawn(&s, &pidfd, err, sizeof(err));
	close(fd);
	pods_strv_free(argv);
	if (pid < 0) {
		ctr_fail_start(c, "CreateContainerError", err);
		return;
	}
	c->pid = pid;
	c->pidfd = pidfd;
	c->exit_ev = event_new(p->pm->base, pidfd, EV_READ | EV_PERSIST, ctr_exit_cb, c);
	if (c->exit_ev)
		event_add(c->exit_ev, NULL);
	c->state = CS_RUNNING;
	c->started_at = time(NULL);
	c->reason[0] = c->message[0] = '\0';
	c->term.set = false;
	c->liveness_kill = false;
	c->ready = c->started = false;
	pr_info(PD, "pod '%s/%s': container '%s' started (pid %d)", p->ns, p->name, c->name,
		(int)pid);
	pods_fmt(err, sizeof(err), "Started container %s", c->name);
	pod_event(p, "Normal", "Started", err, false);
	if (sl_json_get(c->spec, "startupProbe"))
		c->sp = probe_make(c, "startupProbe", "startup");
	if (!c->sp)
		probes_after_start(c);
	status_dirty(p->pm);
}

static void ctr_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctr *c = arg;

	if (c->pod->st == PS_RUNNING && c->state != CS_RUNNING)
		ctr_start(c);
}

static bool pod_all_stopped(const struct pod *p)
{
	for (size_t i = 0; i < p->n_ctrs; i++)
		if (p->ctrs[i].pid)
			return false;
	return true;
}

static void ctr_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctr *c = arg;
	struct pod *p = c->pod;
	time_t now = time(NULL);
	int st;

	if (!pods_reap(c->pid, &st))
		return;
	event_free(c->exit_ev);
	c->exit_ev = NULL;
	close(c->pidfd);
	c->pidfd = -1;
	evtimer_del(c->kill_ev);
	probes_stop(c);
	/* The container is its main process, as with a runtime: what it left
	 * behind in its cgroup goes with it. */
	ctr_kill_cb(-1, 0, c);
	c->pid = 0;
	c->ready = c->started = false;
	c->term.set = true;
	c->term.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	c->term.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	pods_fmt(c->term.reason, sizeof(c->term.reason), "%s",
		 c->term.exit_code == 0 ? "Completed" : "Error");
	c->term.started = c->started_at;
	c->term.finished = now;
	ctr_id(c, c->term.id, sizeof(c->term.id));
	c->state = CS_TERMINATED;
	pr_info(PD, "pod '%s/%s': container '%s' exited with %d", p->ns, p->name, c->name,
		c->term.exit_code);
	if (p->st == PS_STOPPING) {
		struct pods *pm = p->pm;
		status_dirty(pm);
		if (pod_all_stopped(p))
			pod_teardown(p); /* may free p */
		return;
	}
	if (p->st == PS_RUNNING &&
	    (c->liveness_kill || pods_should_restart(restart_policy(p), c->term.exit_code)) &&
	    strcmp(restart_policy(p), "Never")) {
		unsigned delay;
		if (now - c->started_at >= 600)
			c->crashes = 0;
		c->crashes++;
		delay = pods_backoff_s(c->crashes);
		c->last = c->term;
		c->restarts++;
		if (delay) {
			char m[400];
			c->state = CS_WAITING;
			pods_fmt(c->reason, sizeof(c->reason), "CrashLoopBackOff");
			pods_fmt(c->message, sizeof(c->message),
				 "back-off %us restarting failed container=%s pod=%s_%s(%s)", delay,
				 c->name, p->name, p->ns, p->uid);
			pods_fmt(m, sizeof(m), "Back-off restarting failed container %s", c->name);
			pod_event(p, "Warning", "BackOff", m, false);
			timer_in(c->restart_ev, (int)delay);
		} else {
			ctr_start(c);
		}
	}
	status_dirty(p->pm);
}

/* --- sandbox ---------------------------------------------------------------------- */

static void cni_args(const struct pod *p, char *out, size_t len)
{
	pods_fmt(out, len,
		 "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
		 "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
		 p->ns, p->name, p->uid, p->uid);
}

static int sandbox_save(struct pod *p)
{
	struct json_object *o = json_object_new_object();
	const char *s;
	size_t len;
	int rc;

	if (!o)
		return -ENOMEM;
	sl_json_set_str(o, "namespace", p->ns);
	sl_json_set_str(o, "name", p->name);
	sl_json_set_str(o, "uid", p->uid);
	sl_json_set_str(o, "netns", p->netns);
	json_object_object_add(o, "cniConfig", json_object_get(p->cni_conf));
	json_object_object_add(o, "cniResult", json_object_get(p->cni_result));
	s = sl_json_str(o, &len);
	rc = write_text(p->dir, "sandbox.json", s, len);
	json_object_put(o);
	return rc;
}

static void pod_files(struct pod *p)
{
	struct sl_buf b = SL_BUF_INIT;
	const struct agent_config *cfg = p->pm->cfg;
	const char *domain = cfg->cluster_domain ? cfg->cluster_domain : "cluster.local";
	const char *policy = pod_str(p->spec_obj, "spec", "dnsPolicy");
	char host[64];

	pods_hostname(p->spec_obj, host, sizeof(host));
	/* ClusterFirst without a cluster DNS falls back to the node's resolver,
	 * as kubelet does; so does dnsPolicy Default. */
	bool cluster = !policy || !strcmp(policy, "ClusterFirst") ||
		       !strcmp(policy, "ClusterFirstWithHostNet");

	/* hostNetwork pods use the node's resolver unless they ask for the
	 * cluster's (ClusterFirstWithHostNet), as kubelet does. */
	if (p->host_net && (!policy || strcmp(policy, "ClusterFirstWithHostNet")))
		cluster = false;
	if (cfg->cluster_dns && *cfg->cluster_dns && cluster) {
		pods_resolv_conf(&b, p->ns, cfg->cluster_dns, domain);
	} else {
		struct json_object *dummy = NULL;
		char buf[4096];
		int fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0)
			sl_buf_append(&b, buf, (size_t)n);
		json_object_put(dummy);
	}
	write_text(p->dir, "resolv.conf", b.data ? b.data : "", b.len);
	sl_buf_reset(&b);
	if (p->host_net) {
		/* The node's hosts and hostname are the pod's. */
		sl_buf_fini(&b);
		return;
	}
	pods_hosts_file(&b, p->ip, host, pod_str(p->spec_obj, "spec", "subdomain"), p->ns, domain);
	write_text(p->dir, "hosts", b.data ? b.data : "", b.len);
	sl_buf_reset(&b);
	sl_buf_printf(&b, "%s\n", host);
	write_text(p->dir, "hostname", b.data, b.len);
	sl_buf_fini(&b);
}

static void sandbox_ready(struct pod *p);

static void cni_add_done(int rc, struct json_object *result, const char *err, void *arg)
{
	struct pod *p = arg;
	char msg[800];

	p->cni = NULL;
	if (!rc && cni_result_ipv4(result, p->ip, sizeof(p->ip))) {
		rc = -ENOENT;
		err = "the CNI result holds no IPv4 address";
	}
	if (!rc) {
		p->cni_result = json_object_get(result);
		sandbox_save(p);
	}
	if (rc) {
		pods_fmt(msg, sizeof(msg), "Failed to create pod sandbox: %s", err);
		pr_warn(PD, "pod '%s/%s': %s", p->ns, p->name, msg);
		pods_fmt(p->reason, sizeof(p->reason), "FailedCreatePodSandBox");
		pods_fmt(p->message, sizeof(p->message), "%s", msg);
		pod_event(p, "Warning", "FailedCreatePodSandBox", msg, true);
		status_dirty(p->pm);
		/* Undo what was made (DEL releases the address), then try again. */
		p->restart_after = true;
		pod_teardown(p);
		return;
	}
	sandbox_ready(p);
}

/* The sandbox has its IP: files, then the containers. */
static void sandbox_ready(struct pod *p)
{
	pr_info(PD, "pod '%s/%s': sandbox ready, IP %s", p->ns, p->name, p->ip);
	p->reason[0] = p->message[0] = '\0';
	pod_files(p);
	p->st = PS_RUNNING;
	for (size_t i = 0; i < p->n_ctrs; i++)
		ctr_start(&p->ctrs[i]);
	status_dirty(p->pm);
}

/* WAIT_NET → CNI_ADD: creates the sandbox and starts the plugins. */
static void sandbox_create(struct pod *p)
{
	struct pods *pm = p->pm;
	char path[PATH_MAX], err[512], args[1200];
	struct cni_req req = {0};
	int rc;

	json_object_put(p->cni_conf);
	p->cni_conf = NULL;
	p->host_net =
		sl_json_path(p->obj, "spec", "hostNetwork", (char *)NULL) &&
		json_object_get_boolean(sl_json_path(p->obj, "spec", "hostNetwork", (char *)NULL));
	if (p->host_net) {
		/* No sandbox network to wait for: the node's own. */
		rc = pod_ctrs_ensure(p);
		if (!rc)
			rc = mkdir_p(p->dir, 0755);
		if (!rc)
			rc = sandbox_save(p);
		if (!rc)
			rc = mkdir_p(p->cgroup, 0755);
		if (rc) {
			pods_fmt(p->reason, sizeof(p->reason), "CreateContainerConfigError");
			if (rc != -EINVAL)
				pods_fmt(p->message, sizeof(p->message), "%s", strerror(-rc));
			pod_event(p, "Warning", "Failed", p->message, true);
			status_dirty(pm);
			return;
		}
		if (!p->start_time)
			p->start_time = time(NULL);
		pods_fmt(p->ip, sizeof(p->ip), "%s", pm->host_ip);
		sandbox_ready(p);
		return;
	}
	p->cni_conf =
		cni_conflist_load(pm->cfg->cni_conf_dir, path, sizeof(path), err, sizeof(err));
	if (!p->cni_conf) {
		pods_fmt(p->reason, sizeof(p->reason), "NetworkNotReady");
		pods_fmt(p->message, sizeof(p->message),
			 "network is not ready: container runtime network not ready: %s", err);
		pod_event(p, "Warning", "NetworkNotReady", p->message, true);
		status_dirty(pm);
		timer_in(p->timer, NET_RETRY_S);
		return;
	}
	rc = pod_ctrs_ensure(p);
	if (rc) {
		pods_fmt(p->reason, sizeof(p->reason), "CreateContainerConfigError");
		if (rc == -ENOMEM)
			pods_fmt(p->message, sizeof(p->message), "out of memory");
		pod_event(p, "Warning", "Failed", p->message, true);
		status_dirty(pm);
		return; /* waits for a spec change or deletion */
	}
	if (!p->start_time)
		p->start_time = time(NULL);
	p->ip[0] = '\0';
	json_object_put(p->cni_result);
	p->cni_result = NULL;
	rc = mkdir_p(p->dir, 0755);
	if (!rc)
		rc = sandbox_save(p);
	if (!rc) {
		/* A file of a crashed earlier attempt would make creation fail. */
		pods_netns_remove(p->netns);
		rc = pods_netns_create(p->netns);
	}
	if (!rc)
		rc = mkdir_p(p->cgroup, 0755);
	if (rc) {
		pods_fmt(err, sizeof(err), "%s", strerror(-rc));
		cni_add_done(-EIO, NULL, err, p);
		return;
	}
	cni_args(p, args, sizeof(args));
	req = (struct cni_req){.command = "ADD",
			       .container_id = p->uid,
			       .netns = p->netns,
			       .ifname = "eth0",
			       .bin_dir = pm->cfg->cni_bin_dir,
			       .args = args,
			       .conflist = p->cni_conf,
			       .timeout_ms = CNI_TIMEOUT_MS};
	p->st = PS_CNI_ADD;
	p->reason[0] = p->message[0] = '\0';
	pr_info(PD, "pod '%s/%s': creating sandbox with %s", p->ns, p->name, path);
	p->cni = cni_job_start(pm->base, &req, cni_add_done, p);
	if (!p->cni)
		cni_add_done(-EIO, NULL, strerror(errno), p);
	status_dirty(pm);
}

static void pod_deleted_api(struct pod *p)
{
	struct sl_buf body = SL_BUF_INIT;
	struct sl_client_resp resp = {0};
	char *path = sl_client_path(&SL_GVR_PODS, p->ns, p->name, NULL);

	sl_buf_puts(&body,
		    "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"gracePeriodSeconds\":0,"
		    "\"preconditions\":{\"uid\":");
	sl_buf_json_str(&body, p->uid);
	sl_buf_puts(&body, "}}");
	if (path && !body.oom &&
	    !sl_client_request(p->pm->client, "DELETE", path, body.data, body.len, NULL, NULL,
			       &resp) &&
	    (resp.status < 300 || resp.status == 404 || resp.status == 409))
		pr_info(PD, "pod '%s/%s': stopped and deleted", p->ns, p->name);
	else
		pr_warn(PD, "pod '%s/%s': final delete failed: %ld %s", p->ns, p->name, resp.status,
			resp.err);
	sl_client_resp_fini(&resp);
	sl_buf_fini(&body);
	free(path);
}

/* The last step of a teardown: nothing of the pod is left on the node. */
static void teardown_finish(struct pod *p)
{
	int rc = pods_netns_remove(p->netns);

	if (!rc)
		rc = pods_cgroup_destroy(p->cgroup);
	if (rc == -EBUSY) {
		/* Processes still exiting after cgroup.kill: try again shortly. */
		struct timeval tv = {0, 100000};
		evtimer_add(p->timer, &tv);
		return;
	}
	if (rc)
		pr_warn(PD, "pod '%s/%s': removing netns/cgroup failed: %s", p->ns, p->name,
			strerror(-rc));
	pods_rm_tree(p->dir);
	p->st = PS_DONE;
	p->ip[0] = '\0';
	pr_info(PD, "pod '%s/%s': sandbox removed", p->ns, p->name);
	if (p->delete_api && p->obj)
		pod_deleted_api(p);
	if (!p->obj) {
		pod_free(p);
		return;
	}
	if (p->restart_after &&
	    !sl_json_path(p->obj, "metadata", "deletionTimestamp", (char *)NULL) &&
	    !p->delete_api) {
		p->restart_after = false;
		p->leftover = false;
		/* Before any status write replaces what the previous run reported. */
		pod_ctrs_ensure(p);
		p->st = PS_WAIT_NET;
		free(p->last_status);
		p->last_status = NULL;
		/* After a failed sandbox, wait before the next attempt. */
		timer_in(p->timer, p->reason[0] ? SANDBOX_RETRY_S : 0);
	}
}

static void cni_del_done(int rc, struct json_object *result, const char *err, void *arg)
{
	struct pod *p = arg;

	p->cni = NULL;
	if (rc)
		pr_warn(PD, "pod '%s/%s': CNI DEL failed (going on with the cleanup): %s", p->ns,
			p->name, err);
	teardown_finish(p);
}

static void pod_teardown(struct pod *p)
{
	char args[1200];
	struct cni_req req;

	cni_job_cancel(p->cni);
	p->cni = NULL;
	for (size_t i = 0; i < p->n_ctrs; i++) {
		probes_stop(&p->ctrs[i]);
		evtimer_del(p->ctrs[i].restart_ev);
	}
	p->st = PS_TEARDOWN;
	evtimer_del(p->timer);
	/* Whatever still runs goes now (a container's leftovers, an exec probe). */
	pods_cgroup_destroy(p->cgroup);
	if (!p->cni_conf) {
		teardown_finish(p);
		return;
	}
	cni_args(p, args, sizeof(args));
	req = (struct cni_req){.command = "DEL",
			       .container_id = p->uid,
			       .netns = p->netns,
			       .ifname = "eth0",
			       .bin_dir = p->pm->cfg->cni_bin_dir,
			       .args = args,
			       .conflist = p->cni_conf,
			       .prev_result = p->cni_result,
			       .timeout_ms = CNI_TIMEOUT_MS};
	p->cni = cni_job_start(p->pm->base, &req, cni_del_done, p);
	if (!p->cni)
		teardown_finish(p);
}

/* Stops the pod's containers and tears its sandbox down. */
static void pod_stop(struct pod *p, const char *why)
{
	int grace = grace_seconds(p);

	switch (p->st) {
	case PS_WAIT_NET:
		evtimer_del(p->timer);
		pod_teardown(p);
		return;
	case PS_CNI_ADD:
		pod_teardown(p);
		return;
	case PS_RUNNING:
		pr_info(PD, "pod '%s/%s': stopping (%s, grace %d s)", p->ns, p->name, why, grace);
		p->st = PS_STOPPING;
		for (size_t i = 0; i < p->n_ctrs; i++) {
			evtimer_del(p->ctrs[i].restart_ev);
			if (p->ctrs[i].pid) {
				char m[300];
				pods_fmt(m, sizeof(m), "Stopping container %s", p->ctrs[i].name);
				pod_event(p, "Normal", "Killing", m, false);
			}
			ctr_stop(&p->ctrs[i], grace);
		}
		status_dirty(p->pm);
		if (pod_all_stopped(p))
			pod_teardown(p); /* may free p */
		return;
	case PS_STOPPING:
	case PS_TEARDOWN:
	case PS_DONE:
		return;
	}
}

static void pod_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pod *p = arg;

	if (p->st == PS_TEARDOWN)
		teardown_finish(p);
	else if (p->st == PS_WAIT_NET)
		pod_advance(p);
}

static bool terminal_phase(struct json_object *obj)
{
	const char *ph = pod_str(obj, "status", "phase");

	return ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"));
}

static void pod_advance(struct pod *p)
{
	if (p->st != PS_WAIT_NET || !p->obj)
		return;
	if (sl_json_path(p->obj, "metadata", "deletionTimestamp", (char *)NULL)) {
		p->delete_api = true;
		pod_stop(p, "deleted");
		return;
	}
	sandbox_create(p);
}

/* --- informer -------------------------------------------------------------------- */

static void on_pod(struct json_object *obj, void *arg)
{
	struct pods *pm = arg;
	struct json_object *meta = sl_json_get(obj, "metadata");
	const char *uid = sl_json_get_str(meta, "uid"), *ns = sl_json_get_str(meta, "namespace");
	const char *name = sl_json_get_str(meta, "name");
	struct pod *p;

	if (!uid || !ns || !name) {
		pr_warn(PD, "pod without metadata.uid/namespace/name skipped");
		return;
	}
	p = pod_find(pm, uid);
	if (!p) {
		/* A pod that finished before (an agent restart) is not run again. */
		if (terminal_phase(obj) && !sl_json_get(meta, "deletionTimestamp"))
			return;
		p = pod_new(pm, uid, ns, name);
		if (!p) {
			pr_err(PD, "pod '%s/%s': out of memory", ns, name);
			return;
		}
		json_object_put(p->obj);
		p->obj = json_object_get(obj);
		{
			/* A pod this node ran before (agent restart) keeps its startTime. */
			const char *t0 = pod_str(obj, "status", "startTime");
			struct tm tm = {0};
			if (t0 && strptime(t0, "%Y-%m-%dT%H:%M:%SZ", &tm))
				p->start_time = timegm(&tm);
		}
		if (!p->leftover)
			pod_ctrs_ensure(p);
	}
	json_object_put(p->obj);
	p->obj = json_object_get(obj);
	if (p->leftover) {
		/* The previous run's sandbox is going; this pod starts afresh after,
		 * or, when it is being deleted, is deleted after. */
		if (sl_json_get(meta, "deletionTimestamp"))
			p->delete_api = true;
		else if (!terminal_phase(obj))
			p->restart_after = true;
		return;
	}
	if (sl_json_get(meta, "deletionTimestamp")) {
		p->delete_api = true;
		if (p->st == PS_DONE)
			pod_deleted_api(p);
		else
			pod_stop(p, "deleted");
		return;
	}
	if (p->st == PS_WAIT_NET && !evtimer_pending(p->timer, NULL))
		pod_advance(p);
}

static void on_pod_update(struct json_object *o, struct json_object *n, void *arg)
{
	on_pod(n, arg);
}

static void on_pod_delete(struct json_object *obj, void *arg)
{
	struct pods *pm = arg;
	const char *uid = sl_json_get_str(sl_json_get(obj, "metadata"), "uid");
	struct pod *p = uid ? pod_find(pm, uid) : NULL;

	if (!p)
		return;
	json_object_put(p->obj);
	p->obj = NULL;
	p->delete_api = false;
	p->restart_after = false;
	if (p->st == PS_DONE)
		pod_free(p);
	else
		pod_stop(p, "removed from the API");
}

static void inf_cb(evutil_socket_t fd, short what, void *arg)
{
	sl_informer_dispatch(arg, 0);
}

/* --- start-up -------------------------------------------------------------------- */

/* Sandboxes of a previous run: torn down with the config they were made with. */
static void leftovers_clean(struct pods *pm)
{
	DIR *d = opendir(pm->pods_dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		struct json_object *sb;
		struct pod *p;
		char dir[PATH_MAX];

		if (e->d_name[0] == '.')
			continue;
		pods_fmt(dir, sizeof(dir), "%s/%s", pm->pods_dir, e->d_name);
		sb = read_json_file(dir, "sandbox.json");
		p = pod_new(pm, e->d_name, sl_json_get_str(sb, "namespace") ?: "",
			    sl_json_get_str(sb, "name") ?: "");
		if (!p) {
			json_object_put(sb);
			continue;
		}
		p->leftover = true;
		p->cni_conf = json_object_get(sl_json_get(sb, "cniConfig"));
		p->cni_result = json_object_get(sl_json_get(sb, "cniResult"));
		if (sl_json_get_str(sb, "netns"))
			pods_fmt(p->netns, sizeof(p->netns), "%s", sl_json_get_str(sb, "netns"));
		json_object_put(sb);
		pr_info(PD, "pod '%s/%s' (uid %s): sandbox of a previous run: tearing it down",
			p->ns, p->name, p->uid);
		pod_teardown(p);
	}
	if (d)
		closedir(d);
	/* Cgroups without a pod dir (a run that died between the two). */
	d = opendir(pm->cg_pods);
	while (d && (e = readdir(d))) {
		char dir[PATH_MAX];
		if (e->d_name[0] == '.' || e->d_type != DT_DIR || pod_find(pm, e->d_name))
			continue;
		pods_fmt(dir, sizeof(dir), "%s/%s", pm->cg_pods, e->d_name);
		if (pods_cgroup_destroy(dir) == -EBUSY) {
			usleep(100000);
			pods_cgroup_destroy(dir);
		}
	}
	if (d)
		closedir(d);
}

/* status.hostIP: the node's InternalIP by the node part's rule (docs/lab.md):
 * --node-ip, else the first IPv4 address of the first --devices entry. Pod
 * veths carry the gateway address, so "any interface" would be wrong. */
static void host_ip_find(struct pods *pm)
{
	struct ifaddrs *ifa, *i;
	const char *devs = pm->cfg->devices;
	char dev[IF_NAMESIZE + 1];

	if (pm->cfg->node_ip && *pm->cfg->node_ip) {
		pods_fmt(pm->host_ip, sizeof(pm->host_ip), "%s", pm->cfg->node_ip);
		return;
	}
	if (!devs || !*devs || getifaddrs(&ifa))
		return;
	pods_fmt(dev, sizeof(dev), "%.*s", (int)strcspn(devs, ","), devs);
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, dev))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, pm->host_ip,
			  sizeof(pm->host_ip));
		break;
	}
	freeifaddrs(ifa);
}

struct pods *pods_open(struct event_base *base, struct sl_client *client,
		       const struct agent_config *cfg)
{
	struct pods *pm = calloc(1, sizeof(*pm));
	char sel[400], err[256];
	struct sl_informer_opts io = {
		.gvr = SL_GVR_PODS,
		.delivery = SL_INF_DELIVER_QUEUE,
		.handlers = {.on_add = on_pod,
			     .on_update = on_pod_update,
			     .on_delete = on_pod_delete},
	};
	int rc;

	if (!pm)
		return NULL;
	pm->base = base;
	pm->client = client;
	pm->cfg = cfg;
	if (cfg->state_dir)
		pods_fmt(pm->pods_dir, sizeof(pm->pods_dir), "%s/pods", cfg->state_dir);
	else
		pods_fmt(pm->pods_dir, sizeof(pm->pods_dir), "/var/lib/sluice/%s/pods",
			 cfg->node_name);
	pods_fmt(pm->cg_pods, sizeof(pm->cg_pods), "%s/pods", cfg->cgroup_root);
	rc = mkdir_p(pm->pods_dir, 0755);
	if (rc) {
		pr_err(PD, "state dir '%s': %s", pm->pods_dir, strerror(-rc));
		goto fail;
	}
	if (mkdir(pm->cg_pods, 0755) && errno != EEXIST) {
		rc = -errno;
		pr_err(PD, "cgroup '%s': %s", pm->cg_pods, strerror(errno));
		goto fail;
	}
	if (access(cfg->cni_bin_dir, R_OK))
		pr_warn(PD, "--cni-bin-dir '%s': %s (pods cannot get a network until it exists)",
			cfg->cni_bin_dir, strerror(errno));
	host_ip_find(pm);
	pm->status_ev = evtimer_new(base, status_cb, pm);
	if (!pm->status_ev) {
		rc = -ENOMEM;
		goto fail;
	}
	leftovers_clean(pm);
	pods_fmt(sel, sizeof(sel), "spec.nodeName=%s", cfg->node_name);
	io.field_selector = sel;
	io.handlers.arg = pm;
	pm->inf = sl_informer_new(client, &io, err, sizeof(err));
	if (!pm->inf) {
		rc = -errno;
		pr_err(PD, "pod informer: %s", err);
		goto fail;
	}
	pm->inf_ev =
		event_new(base, sl_informer_fd(pm->inf), EV_READ | EV_PERSIST, inf_cb, pm->inf);
	if (!pm->inf_ev) {
		rc = -ENOMEM;
		goto fail;
	}
	event_add(pm->inf_ev, NULL);
	rc = sl_informer_start(pm->inf);
	if (rc)
		goto fail;
	pr_info(PD, "node '%s': running pods (state %s, cgroups %s, CNI %s + %s, node IP %s)",
		cfg->node_name, pm->pods_dir, pm->cg_pods, cfg->cni_conf_dir, cfg->cni_bin_dir,
		pm->host_ip[0] ? pm->host_ip : "unknown");
	return pm;
fail:
	pods_close(pm);
	errno = -rc;
	return NULL;
}

void pods_close(struct pods *pm)
{
	if (!pm)
		return;
	sl_informer_free(pm->inf);
	if (pm->inf_ev)
		event_free(pm->inf_ev);
	/* Pods keep running; what they leave is cleaned up by the next start. */
	while (pm->n) {
		/* Off the list first: pod_free only unlinks what it finds. */
		struct pod *p = pm->v[--pm->n];
		pod_free(p);
	}
	free(pm->v);
	if (pm->status_ev)
		event_free(pm->status_ev);
	free(pm);
}
