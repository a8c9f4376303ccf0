/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's pod runtime, a kubelet-lite (docs/lab.md "pods"): runs the pods
 * bound to this node as host processes inside a per-pod network namespace
 * (wired by the CNI plugins of --cni-conf-dir, executed as a container runtime
 * does), a per-pod cgroup under the node's --cgroup-root (so the socket-LB
 * hooks apply to them) and a private mount + UTS namespace per container, runs
 * their probes and reports their status through pods/status.
 *
 *   Pod informer (spec.nodeName=<node>, queue delivery)
 *     │
 *     ▼  per pod:  WAIT_NET ─▶ CNI_ADD ─▶ RUNNING ─▶ STOPPING ─▶ CNI_DEL ─▶ gone
 *                  (no conf)   (plugin    (containers,  (SIGTERM,   (plugin
 *                               children)  probes)       grace,      children,
 *                                                         cgroup.kill) then cleanup)
 *
 * Everything runs on the agent's one libevent loop: CNI plugins and exec
 * probes are child processes whose pipes and pidfds are loop events (the
 * sluice-cni plugin calls back into this same process during ADD, so nothing
 * here may wait for a child), HTTP/TCP probes are non-blocking sockets.
 *
 * Agent restart: processes cannot be adopted (they are not our children, so
 * their exit codes would be lost). Pod directories left by a previous run are
 * torn down (cgroup.kill, CNI DEL with the stored config, netns and cgroup
 * removed) and pods still bound to the node start again from scratch, their
 * restartCount carried over from the API status. Stopping the agent leaves the
 * pods running, as stopping a kubelet does.
 *
 * Files: pods.c (lifecycle, informer, status), pods_spec.c (pure helpers:
 * env, resolv.conf, probe specs, conditions), pods_cni.c (CNI exec),
 * pods_proc.c (namespaces, cgroups, processes), probe.c (probes).
 */
#ifndef SLUICE_AGENT_PODS_H
#define SLUICE_AGENT_PODS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

#include "sluice/buf.h"

struct event_base;
struct sl_client;
struct agent_config;

/* --- the runtime (pods.c) ------------------------------------------------------------ */

struct pods;

/*
 * Starts the pod runtime on base: cleans up what a previous run left in
 * <state_dir>/pods and <cgroup_root>/pods, then watches the pods bound to
 * cfg->node_name. cfg (with cgroup_root resolved) and client are borrowed and
 * must outlive the runtime. NULL with errno on failure (reason logged).
 */
struct pods *pods_open(struct event_base *base, struct sl_client *client,
		       const struct agent_config *cfg);
/* Stops watching and frees; running pods stay as they are. NULL is fine. */
void pods_close(struct pods *pm);

/* --- pure helpers (pods_spec.c) --------------------------------------------------- */

/* The pod's /etc/resolv.conf for dnsPolicy ClusterFirst with a cluster DNS
 * (kubelet's format). Appends to out. */
void pods_resolv_conf(struct sl_buf *out, const char *ns, const char *dns, const char *domain);
/* The pod's /etc/hosts (kubelet's managed hosts file). subdomain may be NULL. */
void pods_hosts_file(struct sl_buf *out, const char *ip, const char *hostname,
		     const char *subdomain, const char *ns, const char *domain);
/* The pod's hostname: spec.hostname, else metadata.name (both cut to 63). */
void pods_hostname(const struct json_object *pod, char *out, size_t outlen);

struct pods_env_ctx {
	const char *pod_ip;    /* status.podIP */
	const char *host_ip;   /* status.hostIP */
	const char *node_name; /* spec.nodeName fallback */
};

/* Frees a NULL-terminated string vector. NULL is fine. */
void pods_strv_free(char **v);

/*
 * A container's environment as "K=V" strings (NULL-terminated, caller frees
 * with pods_strv_free): HOSTNAME, a default PATH, then spec env in order with
 * value (with $(VAR) references expanded as Kubernetes does) and
 * valueFrom.fieldRef metadata.name/namespace/uid, spec.nodeName,
 * spec.serviceAccountName, status.podIP/podIPs, status.hostIP,
 * metadata.labels['k'] and metadata.annotations['k']. Returns 0, or -EINVAL
 * with err naming the env entry and the problem, or -ENOMEM.
 */
int pods_env_build(const struct json_object *pod, const struct json_object *ctr,
		   const struct pods_env_ctx *c, char ***envp, char *err, size_t errlen);

/* Kubernetes $(VAR) expansion against env ("K=V" vector): $(VAR) of a
 * defined VAR is replaced, $$ is a literal $, anything else stays as is.
 * Caller frees; NULL on ENOMEM. */
char *pods_expand(const char *s, char *const *env);

/* command + args of a container, expanded, as an argv (caller frees with
 * pods_strv_free). -EINVAL with err when neither is set (no image entry point
 * to fall back to) or an element is not a string. */
int pods_argv_build(const struct json_object *ctr, char *const *env, char ***argv, char *err,
		    size_t errlen);

enum probe_kind { PROBE_EXEC = 1, PROBE_TCP, PROBE_HTTP };

struct probe_header {
	char *name, *value;
};

/* A probe as configured (Kubernetes defaults applied). */
struct probe_spec {
	enum probe_kind kind;
	char **cmd;		      /* exec: argv, NULL-terminated */
	int port;		      /* tcpSocket/httpGet, resolved from a named containerPort */
	char host[64];		      /* host override; "" = the pod IP */
	char *path;		      /* httpGet path (default "/") */
	struct probe_header *headers; /* httpGet.httpHeaders */
	size_t n_headers;
	int initial_delay_s;   /* default 0 */
	int period_s;	       /* default 10, min 1 */
	int timeout_s;	       /* default 1, min 1 */
	int success_threshold; /* default 1 */
	int failure_threshold; /* default 3 */
};

/*
 * Parses a container's probe (readinessProbe/livenessProbe/startupProbe
 * object) into out. ctr gives the named ports. Returns 0, or -EINVAL with err
 * naming the field (no handler, two handlers, bad port, HTTPS, negative
 * values), or -ENOMEM. out is filled only on success; free with
 * probe_spec_fini.
 */
int probe_spec_parse(const struct json_object *probe, const struct json_object *ctr,
		     struct probe_spec *out, char *err, size_t errlen);
void probe_spec_fini(struct probe_spec *p);

/*
 * Sets the condition `type` in the conditions array to status/reason,
 * keeping its lastTransitionTime (and lastProbeTime null) unless the status
 * changes, in which case it becomes now (RFC 3339). Appends the condition when
 * missing. Returns true when anything changed.
 */
bool pods_cond_set(struct json_object *conds, const char *type, bool status, const char *reason,
		   const char *now);

/* A container as the pod phase sees it. */
struct pods_ctr_phase {
	enum { PODS_CTR_WAITING, PODS_CTR_RUNNING, PODS_CTR_TERMINATED } state;
	int exit_code;	 /* TERMINATED */
	bool restarting; /* WAITING after having run (back-off, restart pending) */
};

/* The pod phase as kubelet computes it: Pending until the sandbox is up and a
 * container ran; Running while any container runs or restarts; Succeeded when
 * all terminated with 0; Failed when all terminated and one did not. */
const char *pods_phase(bool sandbox_ready, const struct pods_ctr_phase *c, size_t n);

/* Kubelet's crash-loop back-off before restart number n (n >= 1): 0 for the
 * first restart, then 10 s doubling to 300 s. */
unsigned pods_backoff_s(unsigned n);

/* Whether restartPolicy (NULL = Always) restarts a container that exited
 * with exit_code. */
bool pods_should_restart(const char *policy, int exit_code);

/* snprintf that reports truncation (-ENAMETOOLONG) instead of warning about
 * it at compile time; a truncated message is still NUL-terminated. */
int pods_fmt(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reaps pid after its pidfd turned readable: 1 with *status, 0 when it has
 * not exited after all. A child someone else reaped counts as exit 255. */
int pods_reap(pid_t pid, int *status);

/* RFC 3339 UTC ("2026-01-02T03:04:05Z") of t. */
void pods_rfc3339(time_t t, char *out, size_t outlen);

/* --- CNI (pods_cni.c) ------------------------------------------------------------- */

/*
 * Loads the network configuration a runtime would use: the first file (by
 * name) in dir ending in .conflist, .conf or .json that parses; a single
 * .conf becomes a one-plugin list. Returns the conflist (caller puts) or NULL
 * with errno ENOENT when there is none (err says so) or EINVAL when the file
 * is invalid (err names it and the problem).
 */
struct json_object *cni_conflist_load(const char *dir, char *path, size_t pathlen, char *err,
				      size_t errlen);

/* The stdin config of plugin idx of conflist: the plugin object with name
 * and cniVersion of the list injected and prevResult when given (borrowed).
 * Caller puts; NULL + errno EINVAL when idx is out of range. */
struct json_object *cni_plugin_conf(struct json_object *conflist, size_t idx,
				    struct json_object *prev_result);

/* The first IPv4 address of a CNI result ("ips"[].address without the
 * prefix length). 0, or -ENOENT when the result has none. */
int cni_result_ipv4(const struct json_object *result, char *out, size_t outlen);

struct cni_job;

struct cni_req {
	const char *command;		 /* "ADD" or "DEL" */
	const char *container_id;	 /* CNI_CONTAINERID */
	const char *netns;		 /* CNI_NETNS path */
	const char *ifname;		 /* CNI_IFNAME */
	const char *bin_dir;		 /* CNI_PATH */
	const char *args;		 /* CNI_ARGS */
	struct json_object *conflist;	 /* borrowed for the call */
	struct json_object *prev_result; /* DEL: the ADD result, or NULL */
	unsigned timeout_ms;		 /* per plugin */
};

/* result: ADD's final result (borrowed during the call) or NULL; err: the
 * plugin's error message when rc < 0. */
typedef void (*cni_done_fn)(int rc, struct json_object *result, const char *err, void *arg);

/*
 * Runs the plugins of req->conflist for req->command as a runtime does (ADD
 * in order with prevResult chaining, DEL in reverse order with the ADD
 * result as prevResult), each as a child process whose stdout and exit are
 * loop events; done runs exactly once, from the loop, unless the job is
 * cancelled first. NULL + errno when nothing could be started.
 */
struct cni_job *cni_job_start(struct event_base *base, const struct cni_req *req, cni_done_fn done,
			      void *arg);
/* Kills a running plugin and frees the job without calling done. NULL is fine. */
void cni_job_cancel(struct cni_job *j);

/* --- processes, namespaces, cgroups (pods_proc.c) -------------------------------- */

/* Creates the named netns `path` (a file bind-mounted with a fresh network
 * namespace) without moving the caller. 0 or negative errno. */
int pods_netns_create(const char *path);
/* Unmounts and removes a named netns; a missing one is fine. */
int pods_netns_remove(const char *path);
/* Kills every process of cgroup dir (and below) with cgroup.kill, then
 * removes the directories bottom up. Returns 0, or -EBUSY while processes
 * are still exiting (call again), or another negative errno. */
int pods_cgroup_destroy(const char *dir);
/* Recursively removes a directory tree of plain files (the pod dir). */
int pods_rm_tree(const char *dir);

/* What a container (or an exec probe) process is started with. */
struct pods_spawn {
	char *const *argv;
	char *const *envp;
	const char *netns;	/* netns path to join, or NULL */
	const char *ns_pid_dir; /* "/proc/<pid>/ns": join mnt+uts of this process instead of
				   building them (exec probes), or NULL */
	const char *cgroup;	/* cgroup dir to enter (must exist) */
	const char *hostname;	/* UTS namespace hostname, or NULL */
	const char *pod_dir;	/* resolv.conf, hosts, hostname bind-mounted over /etc */
	const char *workdir;	/* or NULL */
	int out_fd;		/* stdout+stderr (-1: /dev/null) */
};

/* Forks and execs; the child sets everything up before exec and reports a
 * failure of any step over a CLOEXEC pipe, so the return value tells whether
 * the exec happened. Returns the pid (and *pidfd, CLOEXEC) or a negative
 * errno with err naming the failed step. */
pid_t pods_spawn(const struct pods_spawn *s, int *pidfd, char *err, size_t errlen);

/* --- probes (probe.c) --------------------------------------------------------------- */

struct probe;

/* Called on the loop when a probe's result changes the container's state:
 * ok after successThreshold successes, !ok after failureThreshold failures. */
typedef void (*probe_result_fn)(struct probe *p, bool ok, const char *msg, void *arg);

struct probe_target {
	const char *pod_ip;
	int ns_pid; /* the container's main process, for exec probes */
	const char *netns;
	const char *cgroup;
	char *const *envp;
};

/* Starts running spec (ownership moves to the probe) against target after
 * its initialDelaySeconds. target is re-read before each run through the
 * callback's owner (see probe_retarget). NULL + errno on failure. */
struct probe *probe_start(struct event_base *base, struct probe_spec *spec, const char *name,
			  const struct probe_target *t, probe_result_fn fn, void *arg);
/* Updates what the probe points at (strings copied). */
void probe_retarget(struct probe *p, const struct probe_target *t);
/* Stops (killing an exec probe in flight) and frees. NULL is fine. */
void probe_stop(struct probe *p);

#endif
