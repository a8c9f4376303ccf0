/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the controller files (ctl.c: lifecycle, work queue,
 * requests; ctl_endpoints.c; ctl_nodes.c). Not included outside control/ctl_*.
 */
#ifndef SLUICE_CONTROL_CTL_INT_H
#define SLUICE_CONTROL_CTL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
#include "sched.h"
#include "sluice/client.h"
#include "sluice/informer.h"

#define CTL_GVR_ENDPOINTS ((struct sl_gvr){"", "v1", "endpoints"})
#define CTL_GVR_LEASES	  ((struct sl_gvr){"coordination.k8s.io", "v1", "leases"})
#define CTL_GVR_EVENTS	  ((struct sl_gvr){"", "v1", "events"})

/*
 * A work queue of string keys, deduplicated, each with the time it becomes due
 * (so failed keys come back after a delay). Producers are informer threads;
 * the one consumer is a controller thread. Batching: a consumer woken by a key
 * waits a few milliseconds more so a burst of events becomes one pass.
 */
struct ctl_qent {
	char *key;
	uint64_t due_ms; /* CLOCK_MONOTONIC */
};

struct ctl_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	struct ctl_qent *v;
	size_t n, cap;
	bool stop;
};

int ctlq_init(struct ctl_queue *q);
void ctlq_fini(struct ctl_queue *q);
/* Adds key (copied) due in delay_ms; a queued key keeps the earlier due time. */
void ctlq_add(struct ctl_queue *q, const char *key, unsigned delay_ms);
void ctlq_stop(struct ctl_queue *q);
/*
 * Waits for due keys, then batch_ms for more, and hands them over in *keys
 * (caller frees each and the array). Returns the count, or -1 once stopped.
 */
int ctlq_get(struct ctl_queue *q, char ***keys, unsigned batch_ms);

uint64_t ctl_now_ms(void); /* CLOCK_MONOTONIC */

/* One worker thread's view: the shared client and its own cancel token. */
struct ctl_worker {
	struct ctl *ctl;
	struct sl_cancel *cancel;
	pthread_t thr;
	bool started;
};

struct ctl_trk; /* slices written but not yet seen by the informer */
struct ctl_ipam_node;
struct wl;

struct ctl {
	struct ctl_config cfg;
	unsigned which;
	struct sl_client *client;
	struct sl_informer *svc_inf, *pod_inf, *slice_inf, *ep_inf, *node_inf, *lease_inf;
	struct ctl_queue epq, ipamq;
	bool epq_init, ipamq_init;
	struct ctl_worker ep_w, ipam_w, life_w;
	atomic_bool stop;

	/* endpoints controller thread only */
	struct ctl_trk *trk;
	size_t n_trk;

	struct sched *sched; /* the scheduler (control/sched.c), its own threads */
	struct wl *wl;	     /* workload controllers (wl.c) */

	/* IPAM thread only */
	struct ctl_cidrset *cidrs;
	struct ctl_ipam_node *ipam_nodes;
	size_t n_ipam_nodes;
};

/*
 * One request with the worker's cancel token: body (borrowed, may be NULL) is
 * sent as JSON (or as content_type when given, e.g. a merge patch). Returns 0
 * for 2xx, else a negative error from sl_client_status_err() or the transport,
 * with a message in err. *out (optional) gets the parsed reply.
 */
int ctl_request(struct ctl_worker *w, const char *method, const char *path,
		struct json_object *body, const char *content_type, struct json_object **out,
		char *err, size_t errlen);
/* API path of an object, with an optional "/status". Caller frees. */
char *ctl_path(const struct sl_gvr *r, const char *ns, const char *name, bool status);
/* Records a Warning/Normal Event about a cluster-scoped or namespaced object. */
void ctl_event(struct ctl_worker *w, const char *kind, const char *api_version, const char *ns,
	       const char *name, const char *uid, const char *type, const char *reason,
	       const char *message, const char *component);
/* Sleeps ms unless the controller stops: false when stopping. */
bool ctl_sleep(struct ctl_worker *w, unsigned ms);

void *ctl_endpoints_thread(void *arg);
void *ctl_ipam_thread(void *arg);
void *ctl_lifecycle_thread(void *arg);
void ctl_endpoints_cleanup(struct ctl *c);
/* Workload controllers and garbage collector (wl.c): informers and a thread
 * of their own; `which` selects among CTL_REPLICASET..CTL_GC. */
int wl_start(struct ctl *c, unsigned which, char *err, size_t errlen);
void wl_stop(struct ctl *c);
void ctl_ipam_cleanup(struct ctl *c);

#endif
