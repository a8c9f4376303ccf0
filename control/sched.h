/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler of sluice-control (--controllers scheduler) and of the
 * standalone sluice-scheduler tool: it watches Pods and Nodes through the API
 * (lib/ informers), places each unscheduled pod whose schedulerName is empty,
 * "default-scheduler" or ours, and binds it through pods/binding.
 *
 * Shape, like kube-scheduler's: the informers keep a cache of nodes and of
 * every pod's requests and placement ("assumed" the moment a node is chosen,
 * so a burst never overcommits a node while binds are in flight); one thread
 * takes pods from the active queue and runs filters then scores over every
 * node (a new pod that finds the queue empty is decided on the informer's
 * thread at once, saving a thread wakeup); a pool of bind workers sends the binds (several in
 * flight) and the PodScheduled=False condition and FailedScheduling Event of pods that fit nowhere.
 * Unschedulable pods wait until a node or pod changes (or the periodic retry) and are tried again.
 *
 * The pure parts (pod and node digests from JSON, filters, scores, the
 * choice among equals, the "0/3 nodes are available: ..." message) are
 * declared here for unit tests.
 */
#ifndef SLUICE_CONTROL_SCHED_H
#define SLUICE_CONTROL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sluice/client.h"
#include "sluice/selector.h"

#define SCHED_DEFAULT_NAME "default-scheduler"
#define SCHED_HOSTNAME_KEY "kubernetes.io/hostname"

/* --- digests of the API objects ------------------------------------------------------------- */

enum sched_op {
	SCHED_OP_IN,
	SCHED_OP_NOTIN,
	SCHED_OP_EXISTS,
	SCHED_OP_NOTEXISTS,
	SCHED_OP_GT,
	SCHED_OP_LT
};

/* One NodeSelectorRequirement (matchExpressions, or matchFields on metadata.name). */
struct sched_expr {
	char *key;
	enum sched_op op;
	char **vals;
	size_t n_vals;
	bool field; /* matchFields: key is metadata.name, matched against the node name */
};

/* A NodeSelectorTerm: its requirements are ANDed; terms of a NodeSelector are ORed. */
struct sched_term {
	struct sched_expr *e;
	size_t n;
};

struct sched_pref { /* PreferredSchedulingTerm */
	int32_t weight;
	struct sched_term t;
};

struct sched_tol { /* Toleration; NULL strings are "unset" */
	char *key, *op, *value, *effect;
};

struct sched_taint {
	char *key, *value, *effect;
};

struct sched_port { /* a hostPort a pod asks for */
	int32_t port;
	char proto[8]; /* TCP, UDP, SCTP */
	char ip[48];   /* hostIP; "" is every address */
};

struct sched_kv {
	char *k, *v;
};

/* topologySpreadConstraints on kubernetes.io/hostname (other keys are ignored). */
struct sched_tsc {
	int32_t max_skew;
	bool hard;		 /* DoNotSchedule (filter) vs ScheduleAnyway (score) */
	struct sl_labelsel *sel; /* pods counted: same namespace, matching this */
	bool self;		 /* the pod itself matches sel (counts as +1 where it lands) */
};

struct sched_pod {
	char *ns, *name, *uid;
	char *node;	    /* spec.nodeName, NULL when unscheduled */
	char *scheduler;    /* spec.schedulerName, NULL = default */
	int64_t cpu_m, mem; /* requests: max(sum of containers, largest init container) */
	uint64_t owner; /* hash of the controller ownerReference uid, or of ns+labels; 0 = none */
	bool terminal;	/* phase Succeeded/Failed or being deleted: holds nothing */
	struct sl_label *labels; /* strings owned */
	size_t n_labels;
	struct sched_kv *nsel; /* nodeSelector */
	size_t n_nsel;
	struct sched_term *req; /* requiredDuringSchedulingIgnoredDuringExecution terms (ORed) */
	size_t n_req;
	bool has_req; /* required affinity present: zero terms then match nothing */
	struct sched_pref *pref;
	size_t n_pref;
	struct sched_tol *tols;
	size_t n_tols;
	struct sched_port *ports;
	size_t n_ports;
	struct sched_tsc *tscs;
	size_t n_tscs;
};

/* A node and what the cache has placed on it. alloc_* < 0: not reported, unlimited. */
struct sched_node {
	char *name;
	struct sl_label *labels;
	size_t n_labels;
	struct sched_taint *taints;
	size_t n_taints;
	bool ready, unschedulable;
	int64_t alloc_cpu_m, alloc_mem, alloc_pods;
	/* accounting: sums over pods bound or assumed here */
	int64_t used_cpu_m, used_mem, used_pods;
	int64_t nz_cpu_m, nz_mem; /* same with upstream's non-zero defaults, for scores */
	struct sched_port *ports;
	size_t n_ports, cap_ports;
};

/*
 * Digest of a Pod / Node object. Return 0, or -EINVAL with err naming the
 * field (a malformed quantity, operator, selector), -ENOMEM. Free with
 * sched_pod_fini()/sched_node_fini() in every case.
 */
int sched_pod_parse(struct json_object *pod, struct sched_pod *out, char *err, size_t errlen);
void sched_pod_fini(struct sched_pod *p);
int sched_node_parse(struct json_object *node, struct sched_node *out, char *err, size_t errlen);
void sched_node_fini(struct sched_node *n); /* frees the accounting too */

/* Adds (sign 1) or removes (sign -1) a pod's requests and host ports on a node. */
void sched_node_account(struct sched_node *n, const struct sched_pod *p, int sign);

/* --- filters ---------------------------------------------------------------------------------- */

enum sched_reason {
	SCHED_R_NOT_READY = 1u << 0,
	SCHED_R_UNSCHEDULABLE = 1u << 1,
	SCHED_R_AFFINITY = 1u << 2, /* nodeSelector or required node affinity */
	SCHED_R_TAINT = 1u << 3,
	SCHED_R_CPU = 1u << 4,
	SCHED_R_MEM = 1u << 5,
	SCHED_R_PODS = 1u << 6,
	SCHED_R_PORTS = 1u << 7,
	SCHED_R_SPREAD = 1u << 8, /* topologySpreadConstraints DoNotSchedule */
};

/* Why one node was rejected: reason bits and, for a taint, which one. */
struct sched_fit {
	unsigned reasons; /* 0 = fits */
	char taint[160];  /* "{key: value}" of the first untolerated taint */
};

bool sched_term_match(const struct sched_term *t, const struct sched_node *n);
/* nodeSelector and required node affinity. */
bool sched_affinity_match(const struct sched_pod *p, const struct sched_node *n);
/* Does some toleration of p tolerate taint t (upstream ToleratesTaint)? */
bool sched_tolerates(const struct sched_pod *p, const struct sched_taint *t);
/*
 * Every filter but topology spread, in upstream order (readiness, cordon,
 * affinity, taints, ports, resources), stopping at the first plugin that
 * fails; resources report every insufficient one. Returns fit->reasons.
 */
unsigned sched_filter(const struct sched_pod *p, const struct sched_node *n, struct sched_fit *fit);

/*
 * "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2
 * Insufficient cpu." from the per-node results (upstream FitError: counts per
 * reason string, sorted as strings). Returns the length written.
 */
size_t sched_fit_message(const struct sched_fit *fits, size_t n_nodes, char *buf, size_t len);

/* --- scores and the choice ------------------------------------------------------------------ */

/*
 * One decision over n nodes. owner_cnt[i]: pods of the same owner on node i;
 * tsc_cnt[c * n + i]: pods counted by constraint c on node i (both may be
 * NULL when the pod has no owner / no constraints). *rr is the round-robin
 * counter that breaks ties among the best nodes (shared across decisions).
 * Fills fits[n] and, if non-NULL, scores[n] (-1 for rejected nodes). Returns
 * the chosen node's index or -1 when none fits.
 */
int sched_select(const struct sched_pod *p, struct sched_node *const *nodes, size_t n,
		 const int32_t *owner_cnt, const int32_t *tsc_cnt, uint32_t *rr,
		 struct sched_fit *fits, int64_t *scores);

/* Individual scores, 0..100 (exposed for tests). */
int64_t sched_score_least_allocated(const struct sched_pod *p, const struct sched_node *n);
int64_t sched_score_balanced(const struct sched_pod *p, const struct sched_node *n);

/* --- lifecycle -------------------------------------------------------------------------------- */

struct sched_config {
	const char *name;      /* our schedulerName; NULL = "sluice-scheduler" */
	unsigned bind_workers; /* binds in flight; 0 = 32 */
	unsigned retry_s;      /* periodic retry of unschedulable pods; 0 = 15 */
};

struct sched;
/*
 * Starts informers, the scheduling thread and the bind workers against
 * `client` (borrowed: it must outlive sched_stop()). NULL with err on failure.
 */
struct sched *sched_start(const struct sched_config *cfg, struct sl_client *client, char *err,
			  size_t errlen);
/* Stops every thread (requests in flight are cancelled) and frees. NULL is fine. */
void sched_stop(struct sched *s);

/* A latency histogram in microseconds (log-linear buckets, under 5 % error). */
#define SCHED_LAT_SUB	  16
#define SCHED_LAT_BUCKETS 512
struct sched_lat {
	uint64_t n, max_us;
	uint32_t b[SCHED_LAT_BUCKETS];
};
void sched_lat_add(struct sched_lat *h, uint64_t us);
/* The q-quantile (0..1) in microseconds: the top of the bucket holding it, never above the
 * largest sample; 0 when empty. */
uint64_t sched_lat_quantile(const struct sched_lat *h, double q);

/*
 * Where a bound pod's time went, as the scheduler sees it (each sample is one pod whose bind the
 * API server accepted):
 *   e2e      the pod's first unscheduled sight in the informer -> binding accepted (upstream's
 *            scheduler_pod_scheduling_sli_duration_seconds: every attempt, the queue, the bind)
 *   attempt  the last decision's start -> binding accepted (scheduling_attempt_duration_seconds)
 *   queue    first sight -> the last decision's start (active queue, backoff of earlier tries)
 *   decide   filters and scores
 *   wait     the decision -> a bind worker takes the job
 *   bind     the pods/binding round trip
 */
struct sched_stats {
	uint64_t scheduled, bind_errors, unschedulable_attempts, events_dropped;
	uint64_t pending, unschedulable; /* now */
	struct sched_lat e2e, attempt, queue, decide, wait, bind;
};
void sched_stats(struct sched *s, struct sched_stats *out);
/* One line "e2e p50=..ms p99=..ms max=..ms attempt ..." of the histograms above. */
size_t sched_stats_latency_line(const struct sched_stats *st, char *buf, size_t len);

#endif
