// SPDX-License-Identifier: Apache-2.0
/*
 * Server-side printing: the columnDefinitions and row cells of a
 * meta.k8s.io/v1 Table, so `kubectl get` (which asks for
 * application/json;as=Table;v=v1;g=meta.k8s.io) prints the same columns and
 * the same cell text as against kube-apiserver. Every column set and cell
 * rule here is a transcription of kubernetes pkg/printers/internalversion/
 * printers.go (1.2x/1.3x) and of apimachinery's duration.HumanDuration and
 * metav1.FormatLabelSelector; where this file differs on purpose the comment
 * says why.
 *
 * Input objects come from the store as json-c trees and may be odd (fields
 * missing, null or of the wrong type): every accessor below checks the JSON
 * type and treats anything unexpected as absent, which is what the Go
 * printers see for a zero-valued field. Nothing here fails except on ENOMEM.
 * Functions are pure and thread-safe (they only read the borrowed object).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/json.h"

#include "table.h"

/* --- column definitions ------------------------------------------------- */

struct table_col {
	const char *name;   /* as upstream; kubectl upper-cases it for the header */
	const char *type;   /* "string" | "integer" | "boolean" */
	const char *format; /* "name" on the column kubectl uses for -o name */
	int priority;	    /* 0 = always shown, 1 = only with -o wide */
	const char *desc;
};

#define D_NAME                                                                   \
	"Name must be unique within a namespace. Cannot be updated. More info: " \
	"https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
#define D_AGE                                                                                 \
	"CreationTimestamp is a timestamp representing the server time when this object was " \
	"created."
#define D_CONTAINERS "Names of each container in the template."
#define D_IMAGES     "Images referenced by each container in the template."

/* clang-format off */
#define COL_NAME        { "Name", "string", "name", 0, D_NAME }
#define COL_AGE         { "Age", "string", "", 0, D_AGE }
#define COL(n, t, p, d) { n, t, "", p, d }
/* clang-format on */

static const struct table_col pod_cols[] = {
	COL_NAME,
	COL("Ready", "string", 0,
	    "The aggregate readiness state of this pod for accepting traffic."),
	COL("Status", "string", 0, "The aggregate status of the containers in this pod."),
	/* A string since 1.22: "3 (5m ago)". */
	COL("Restarts", "string", 0,
	    "The number of times the containers in this pod have been restarted and when the last "
	    "container in this pod has restarted."),
	COL_AGE,
	COL("IP", "string", 1,
	    "IP address allocated to the pod. Routable at least within the cluster."),
	COL("Node", "string", 1, "NodeName is the name of the node the pod is scheduled onto."),
	COL("Nominated Node", "string", 1,
	    "nominatedNodeName is set when this pod preempts other pods on the node."),
	COL("Readiness Gates", "string", 1,
	    "If specified, all readiness gates will be evaluated for pod readiness."),
};

static const struct table_col service_cols[] = {
	COL_NAME,
	COL("Type", "string", 0, "type determines how the Service is exposed."),
	COL("Cluster-IP", "string", 0, "clusterIP is the IP address of the service."),
	COL("External-IP", "string", 0,
	    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
	    "traffic for this service."),
	COL("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
	COL_AGE,
	COL("Selector", "string", 1,
	    "Route service traffic to pods with label keys and values matching this selector."),
};

static const struct table_col node_cols[] = {
	COL_NAME,
	COL("Status", "string", 0, "The status of the node"),
	COL("Roles", "string", 0, "The roles of the node"),
	COL_AGE,
	COL("Version", "string", 0, "Kubelet Version reported by the node."),
	COL("Internal-IP", "string", 1, "List of addresses reachable to the node."),
	COL("External-IP", "string", 1, "List of addresses reachable to the node."),
	COL("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release."),
	COL("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r'."),
	COL("Container-Runtime", "string", 1,
	    "ContainerRuntime Version reported by the node through runtime remote API."),
};

static const struct table_col endpointslice_cols[] = {
	COL_NAME,
	COL("AddressType", "string", 0,
	    "addressType specifies the type of address carried by this EndpointSlice."),
	COL("Ports", "string", 0,
	    "ports specifies the list of network ports exposed by each endpoint in this slice."),
	COL("Endpoints", "string", 0, "endpoints is a list of unique endpoints in this slice."),
	COL_AGE,
};

static const struct table_col endpoints_cols[] = {
	COL_NAME,
	COL("Endpoints", "string", 0, "The set of all endpoints is the union of all subsets."),
	COL_AGE,
};

static const struct table_col namespace_cols[] = {
	COL_NAME,
	COL("Status", "string", 0, "The status of the namespace"),
	COL_AGE,
};

static const struct table_col networkpolicy_cols[] = {
	COL_NAME,
	COL("Pod-Selector", "string", 0,
	    "podSelector selects the pods to which this NetworkPolicy object applies."),
	COL_AGE,
};

/*
 * Events lead with LAST SEEN, and NAME (the "name" format column kubectl
 * needs for -o name) only appears with -o wide, as upstream.
 */
static const struct table_col event_cols[] = {
	COL("Last Seen", "string", 0,
	    "The time at which the most recent occurrence of this event was recorded."),
	COL("Type", "string", 0, "Type of this event (Normal, Warning)."),
	COL("Reason", "string", 0,
	    "This should be a short, machine understandable string that gives the reason for the "
	    "transition into the object's current status."),
	COL("Object", "string", 0, "The object that this event is about."),
	COL("Subobject", "string", 1,
	    "If referring to a piece of an object instead of an entire object, this string should "
	    "contain a valid JSON/Go field access statement."),
	COL("Source", "string", 1, "The component reporting this event."),
	COL("Message", "string", 0,
	    "A human-readable description of the status of this operation."),
	COL("First Seen", "string", 1,
	    "The time at which the event was first recorded. (Time of server receipt is in "
	    "TypeMeta.)"),
	COL("Count", "string", 1, "The number of times this event has occurred."),
	{"Name", "string", "name", 1, D_NAME},
};

static const struct table_col lease_cols[] = {
	COL_NAME,
	COL("Holder", "string", 0,
	    "holderIdentity contains the identity of the holder of a current lease."),
	COL_AGE,
};

static const struct table_col configmap_cols[] = {
	COL_NAME,
	COL("Data", "string", 0, "Data contains the configuration data."),
	COL_AGE,
};

static const struct table_col deployment_cols[] = {
	COL_NAME,
	COL("Ready", "string", 0, "Number of the pod with ready state"),
	COL("Up-to-date", "string", 0,
	    "Total number of non-terminated pods targeted by this deployment that have the desired "
	    "template spec."),
	COL("Available", "string", 0,
	    "Total number of available pods (ready for at least minReadySeconds) targeted by this "
	    "deployment."),
	COL_AGE,
	COL("Containers", "string", 1, D_CONTAINERS),
	COL("Images", "string", 1, D_IMAGES),
	COL("Selector", "string", 1, "Label selector for pods."),
};

static const struct table_col replicaset_cols[] = {
	COL_NAME,
	COL("Desired", "integer", 0, "Replicas is the number of desired replicas."),
	COL("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
	COL("Ready", "integer", 0,
	    "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready "
	    "Condition."),
	COL_AGE,
	COL("Containers", "string", 1, D_CONTAINERS),
	COL("Images", "string", 1, D_IMAGES),
	COL("Selector", "string", 1,
	    "Selector is a label query over pods that should match the "
	    "replica count."),
};

static const struct table_col daemonset_cols[] = {
	COL_NAME,
	COL("Desired", "integer", 0,
	    "The total number of nodes that should be running the daemon pod."),
	COL("Current", "integer", 0,
	    "The number of nodes that are running at least 1 daemon pod and are supposed to run "
	    "the daemon pod."),
	COL("Ready", "integer", 0,
	    "numberReady is the number of nodes that should be running the daemon pod and have one "
	    "or more of the daemon pod running with a Ready Condition."),
	COL("Up-to-date", "integer", 0,
	    "The total number of nodes that are running updated daemon pod"),
	COL("Available", "integer", 0,
	    "The number of nodes that should be running the daemon pod and have one or more of the "
	    "daemon pod running and available."),
	COL("Node Selector", "string", 0,
	    "NodeSelector is a selector which must be true for the pod to fit on a node."),
	COL_AGE,
	COL("Containers", "string", 1, D_CONTAINERS),
	COL("Images", "string", 1, D_IMAGES),
	COL("Selector", "string", 1, "A label query over pods that are managed by the daemon set."),
};

static const struct table_col default_cols[] = {
	COL_NAME,
	COL_AGE,
};

/* --- typed, NULL-tolerant JSON access ------------------------------------ */

/* obj[key] when it is a JSON object, else NULL. */
static const struct json_object *jobj(const struct json_object *o, const char *key)
{
	struct json_object *v = sl_json_get(o, key);

	return v && json_object_is_type(v, json_type_object) ? v : NULL;
}

/* obj[key] when it is a JSON array, else NULL. */
static const struct json_object *jarr(const struct json_object *o, const char *key)
{
	struct json_object *v = sl_json_get(o, key);

	return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

static size_t jlen(const struct json_object *arr)
{
	return arr ? json_object_array_length(arr) : 0;
}

static const struct json_object *jidx(const struct json_object *arr, size_t i)
{
	return arr ? json_object_array_get_idx(arr, i) : NULL;
}

/* String member or dflt. Go reads a wrong-typed or absent string as "". */
static const char *jstr(const struct json_object *o, const char *key, const char *dflt)
{
	const char *s = sl_json_get_str(o, key);

	return s ? s : dflt;
}

static bool jstr_eq(const struct json_object *o, const char *key, const char *want)
{
	return !strcmp(jstr(o, key, ""), want);
}

static int64_t jint(const struct json_object *o, const char *key)
{
	int64_t v = 0;

	return sl_json_get_int(o, key, &v) ? v : 0;
}

static bool jbool(const struct json_object *o, const char *key)
{
	struct json_object *v = sl_json_get(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* A string array element, or "" for anything else. */
static const char *jidx_str(const struct json_object *arr, size_t i)
{
	struct json_object *v = (struct json_object *)jidx(arr, i);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* --- time ---------------------------------------------------------------- */

struct table_time {
	int64_t sec;  /* Unix seconds */
	int32_t nsec; /* 0..999999999 */
};

/* Go's zero time.Time (0001-01-01T00:00:00Z), what metav1.Time IsZero tests. */
#define TABLE_TIME_ZERO_SEC (-62135596800LL)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static bool parse_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/*
 * RFC 3339 as metav1.Time and metav1.MicroTime accept it (Go's time.Parse
 * with time.RFC3339): "2006-01-02T15:04:05Z", optional fraction of up to 9
 * digits, "Z" or a "+07:00" offset.
 */
static bool table_time_parse(const char *s, struct table_time *t)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, nsec = 0, sign = 0, dim;
	const char *p = s;

	if (!s || !parse_digits(&p, 4, &y) || *p++ != '-' || !parse_digits(&p, 2, &mo) ||
	    *p++ != '-' || !parse_digits(&p, 2, &d) || *p++ != 'T' || !parse_digits(&p, 2, &h) ||
	    *p++ != ':' || !parse_digits(&p, 2, &mi) || *p++ != ':' || !parse_digits(&p, 2, &sec))
		return false;
	if (*p == '.') {
		int n = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (n < 9)
				nsec = nsec * 10 + (*p - '0');
			n++;
			p++;
		}
		if (n == 0 || n > 9)
			return false;
		for (; n < 9; n++)
			nsec *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!parse_digits(&p, 2, &oh) || *p++ != ':' || !parse_digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (*p || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
		return false;
	dim = mdays[mo - 1] + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
	if (d < 1 || d > dim)
		return false;
	t->sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
		 sign * (oh * 3600 + om * 60);
	t->nsec = nsec;
	return true;
}

static bool table_time_is_zero(const struct table_time *t)
{
	return t->sec == TABLE_TIME_ZERO_SEC && t->nsec == 0;
}

/* a < b, as time.Time.Before. */
static bool table_time_before(const struct table_time *a, const struct table_time *b)
{
	return a->sec < b->sec || (a->sec == b->sec && a->nsec < b->nsec);
}

/*
 * Whole seconds of time.Since(t) as int(d.Seconds()) sees them: truncated
 * toward zero, and saturated like time.Duration (about 292 years).
 */
static int64_t table_time_since(time_t now, const struct table_time *t)
{
	const int64_t max_s = INT64_MAX / 1000000000;
	int64_t secs;

	if (__builtin_sub_overflow((int64_t)now, t->sec, &secs))
		secs = (int64_t)now > 0 ? max_s : -max_s;
	if (t->nsec > 0 && secs > 0)
		secs--;
	if (secs > max_s)
		secs = max_s;
	if (secs < -max_s)
		secs = -max_s;
	return secs;
}

/* Parses s into *t; false for a missing, unparsable or zero timestamp. */
static bool table_time_get(const char *s, struct table_time *t)
{
	return s && table_time_parse(s, t) && !table_time_is_zero(t);
}

/* translateTimestampSince: "<unknown>" unless a usable timestamp. */
static void table_since(time_t now, const char *ts, char *out, size_t outlen)
{
	struct table_time t;

	if (!table_time_get(ts, &t)) {
		snprintf(out, outlen, "<unknown>");
		return;
	}
	table_human_duration((time_t)table_time_since(now, &t), out, outlen);
}

void table_human_duration(time_t seconds, char *out, size_t outlen)
{
	int64_t s = seconds, minutes, hours;

	if (!out || !outlen)
		return;
	/* Up to one second in the future is clock skew, not an error. */
	if (s < -1) {
		snprintf(out, outlen, "<invalid>");
		return;
	}
	if (s < 0) {
		snprintf(out, outlen, "0s");
		return;
	}
	if (s < 60 * 2) {
		snprintf(out, outlen, "%llds", (long long)s);
		return;
	}
	minutes = s / 60;
	if (minutes < 10) {
		if (s % 60 == 0)
			snprintf(out, outlen, "%lldm", (long long)minutes);
		else
			snprintf(out, outlen, "%lldm%llds", (long long)minutes,
				 (long long)(s % 60));
		return;
	}
	if (minutes < 60 * 3) {
		snprintf(out, outlen, "%lldm", (long long)minutes);
		return;
	}
	hours = s / 3600;
	if (hours < 8) {
		if (minutes % 60 == 0)
			snprintf(out, outlen, "%lldh", (long long)hours);
		else
			snprintf(out, outlen, "%lldh%lldm", (long long)hours,
				 (long long)(minutes % 60));
	} else if (hours < 48) {
		snprintf(out, outlen, "%lldh", (long long)hours);
	} else if (hours < 24 * 8) {
		if (hours % 24 == 0)
			snprintf(out, outlen, "%lldd", (long long)(hours / 24));
		else
			snprintf(out, outlen, "%lldd%lldh", (long long)(hours / 24),
				 (long long)(hours % 24));
	} else if (hours < 24 * 365 * 2) {
		snprintf(out, outlen, "%lldd", (long long)(hours / 24));
	} else if (hours < 24 * 365 * 8) {
		int64_t dy = (hours / 24) % 365;

		if (dy == 0)
			snprintf(out, outlen, "%lldy", (long long)(hours / 24 / 365));
		else
			snprintf(out, outlen, "%lldy%lldd", (long long)(hours / 24 / 365),
				 (long long)dy);
	} else {
		snprintf(out, outlen, "%lldy", (long long)(hours / 24 / 365));
	}
}

/* --- row building -------------------------------------------------------- */

struct table_row {
	struct json_object *cells; /* the array being filled */
	time_t now;		   /* wall clock for AGE-like cells */
	int err;		   /* sticky -ENOMEM */
};

static void cell_add(struct table_row *r, struct json_object *v)
{
	if (!v || json_object_array_add(r->cells, v)) {
		json_object_put(v);
		r->err = -ENOMEM;
	}
}

static void cell_str(struct table_row *r, const char *s)
{
	cell_add(r, json_object_new_string(s ? s : ""));
}

static void cell_int(struct table_row *r, int64_t v)
{
	cell_add(r, json_object_new_int64(v));
}

/* Adds the buffer's text as a string cell and resets the buffer. */
static void cell_buf(struct table_row *r, struct sl_buf *b)
{
	const char *s = sl_buf_cstr(b);

	if (!s)
		r->err = -ENOMEM;
	else
		cell_str(r, s);
	sl_buf_reset(b);
}

static void cell_since(struct table_row *r, const char *ts)
{
	char age[64];

	table_since(r->now, ts, age, sizeof(age));
	cell_str(r, age);
}

static const char *obj_name(const struct json_object *o)
{
	return jstr(jobj(o, "metadata"), "name", "");
}

static const char *obj_created(const struct json_object *o)
{
	return sl_json_get_str(jobj(o, "metadata"), "creationTimestamp");
}

/*
 * metadata.deletionTimestamp set. Upstream tests the pointer, not the time,
 * so any timestamp string counts, even one that does not parse.
 */
static bool obj_deleting(const struct json_object *o)
{
	return *jstr(jobj(o, "metadata"), "deletionTimestamp", "") != '\0';
}

/* Appends s to b, preceded by sep unless b is empty. */
static void buf_join(struct sl_buf *b, const char *sep, const char *s)
{
	if (b->len)
		sl_buf_puts(b, sep);
	sl_buf_puts(b, s);
}

/*
 * labels.FormatLabels: "k=v" sorted by key, joined by ",", "<none>" when
 * empty. Non-string values print as their JSON text (validation keeps them
 * out of the store anyway).
 */
static void format_labels(const struct json_object *map, struct sl_buf *b)
{
	size_t n = 0, i = 0;
	const char **keys;

	if (map)
		n = (size_t)json_object_object_length(map);
	if (!n) {
		sl_buf_puts(b, "<none>");
		return;
	}
	keys = calloc(n, sizeof(*keys));
	if (!keys) {
		b->oom = true;
		return;
	}
	json_object_object_foreach((struct json_object *)map, k, v)
	{
		(void)v;
		if (i < n)
			keys[i++] = k;
	}
	qsort(keys, i, sizeof(*keys), cmp_cstr);
	for (size_t j = 0; j < i; j++) {
		struct json_object *val = sl_json_get(map, keys[j]);

		if (j)
			sl_buf_puts(b, ",");
		sl_buf_printf(b, "%s=%s", keys[j], val ? json_object_get_string(val) : "");
	}
	free(keys);
}

/* --- label selectors ------------------------------------------------------ */

enum sel_op { SEL_EQ, SEL_IN, SEL_NOTIN, SEL_EXISTS, SEL_NOTEXISTS };

struct sel_req {
	const char *key;
	enum sel_op op;
	const char *value;		  /* SEL_EQ (matchLabels) */
	const struct json_object *values; /* SEL_IN / SEL_NOTIN: array of strings */
};

static int sel_req_value_count_ok(const struct sel_req *q)
{
	size_t n = jlen(q->values);

	for (size_t i = 0; i < n; i++) {
		struct json_object *v = (struct json_object *)jidx(q->values, i);

		if (!v || !json_object_is_type(v, json_type_string))
			return false;
	}
	switch (q->op) {
	case SEL_IN:
	case SEL_NOTIN:
		return n > 0;
	case SEL_EXISTS:
	case SEL_NOTEXISTS:
		return n == 0;
	default:
		return true;
	}
}

/* Requirement.String(): "k=v", "k in (a,b)", "k notin (a)", "k", "!k". */
static int sel_req_print(const struct sel_req *q, struct sl_buf *b)
{
	size_t n = jlen(q->values);
	const char **vals;

	switch (q->op) {
	case SEL_EQ:
		sl_buf_printf(b, "%s=%s", q->key, q->value);
		return 0;
	case SEL_EXISTS:
		sl_buf_puts(b, q->key);
		return 0;
	case SEL_NOTEXISTS:
		sl_buf_printf(b, "!%s", q->key);
		return 0;
	default:
		break;
	}
	/* Values print sorted; duplicates are kept, as in current apimachinery. */
	vals = calloc(n, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		vals[i] = jidx_str(q->values, i);
	qsort(vals, n, sizeof(*vals), cmp_cstr);
	sl_buf_printf(b, "%s %s (", q->key, q->op == SEL_IN ? "in" : "notin");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sl_buf_puts(b, ",");
		sl_buf_puts(b, vals[i]);
	}
	sl_buf_puts(b, ")");
	free(vals);
	return 0;
}

/*
 * metav1.LabelSelectorAsSelector(sel).String() into b. A missing selector
 * ("selects nothing") and an empty one ("selects everything") both print as
 * "". Returns -EINVAL for a selector the Go code rejects (unknown operator,
 * wrong number of values, empty key), -ENOMEM on allocation failure.
 * Key and value syntax is not re-checked: validation did that on admission.
 */
static int selector_string(const struct json_object *sel, struct sl_buf *b)
{
	struct json_object *ml, *me;
	struct sel_req *reqs;
	size_t n_ml = 0, n_me = 0, n = 0;
	int err = 0;

	if (!sel)
		return 0;
	if (!json_object_is_type(sel, json_type_object))
		return -EINVAL;
	ml = sl_json_get(sel, "matchLabels");
	me = sl_json_get(sel, "matchExpressions");
	if ((ml && !json_object_is_type(ml, json_type_object)) ||
	    (me && !json_object_is_type(me, json_type_array)))
		return -EINVAL;
	n_ml = ml ? (size_t)json_object_object_length(ml) : 0;
	n_me = me ? json_object_array_length(me) : 0;
	if (n_ml + n_me == 0)
		return 0;
	reqs = calloc(n_ml + n_me, sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	if (ml) {
		json_object_object_foreach(ml, k, v)
		{
			if (n >= n_ml + n_me || !v || !json_object_is_type(v, json_type_string)) {
				err = -EINVAL;
				break;
			}
			reqs[n].key = k;
			reqs[n].op = SEL_EQ;
			reqs[n].value = json_object_get_string(v);
			n++;
		}
	}
	for (size_t i = 0; !err && i < n_me; i++) {
		const struct json_object *e = jidx(me, i);
		const char *op = sl_json_get_str(e, "operator");
		struct json_object *vals = sl_json_get(e, "values");
		struct sel_req *q = &reqs[n];

		if (!e || !json_object_is_type(e, json_type_object) || !op ||
		    (vals && !json_object_is_type(vals, json_type_array))) {
			err = -EINVAL;
			break;
		}
		q->key = jstr(e, "key", "");
		q->values = vals;
		if (!strcmp(op, "In"))
			q->op = SEL_IN;
		else if (!strcmp(op, "NotIn"))
			q->op = SEL_NOTIN;
		else if (!strcmp(op, "Exists"))
			q->op = SEL_EXISTS;
		else if (!strcmp(op, "DoesNotExist"))
			q->op = SEL_NOTEXISTS;
		else
			err = -EINVAL;
		if (!err && !sel_req_value_count_ok(q))
			err = -EINVAL;
		n++;
	}
	for (size_t i = 0; !err && i < n; i++)
		if (!*reqs[i].key)
			err = -EINVAL;
	if (!err) {
		/* Selector.Add sorts by key; insertion sort keeps it stable. */
		for (size_t i = 1; i < n; i++) {
			struct sel_req q = reqs[i];
			size_t j = i;

			for (; j > 0 && strcmp(reqs[j - 1].key, q.key) > 0; j--)
				reqs[j] = reqs[j - 1];
			reqs[j] = q;
		}
		for (size_t i = 0; !err && i < n; i++) {
			if (i)
				sl_buf_puts(b, ",");
			err = sel_req_print(&reqs[i], b);
		}
	}
	free(reqs);
	return err;
}

/* metav1.FormatLabelSelector: "<error>" when invalid, "<none>" when empty. */
static void cell_label_selector(struct table_row *r, const struct json_object *sel)
{
	struct sl_buf b = SL_BUF_INIT;
	int err = selector_string(sel, &b);

	if (err == -ENOMEM)
		r->err = err;
	if (err)
		cell_str(r, "<error>");
	else if (b.len == 0)
		cell_str(r, "<none>");
	else
		cell_buf(r, &b);
	sl_buf_fini(&b);
}

/* --- Pod ------------------------------------------------------------------ */

/* An init container with restartPolicy Always (a sidecar). */
static bool pod_init_is_restartable(const struct json_object *inits, const char *name)
{
	const struct json_object *found = NULL;

	/* Upstream builds a name map, so the last duplicate wins. */
	for (size_t i = 0; i < jlen(inits); i++)
		if (jstr_eq(jidx(inits, i), "name", name))
			found = jidx(inits, i);
	return found && jstr_eq(found, "restartPolicy", "Always");
}

static bool pod_condition_true(const struct json_object *conds, const char *type)
{
	for (size_t i = 0; i < jlen(conds); i++) {
		const struct json_object *c = jidx(conds, i);

		if (jstr_eq(c, "type", type) && jstr_eq(c, "status", "True"))
			return true;
	}
	return false;
}

/* Tracks the latest lastState.terminated.finishedAt seen. */
static void pod_note_restart(const struct json_object *cs, struct table_time *last)
{
	const struct json_object *term = jobj(jobj(cs, "lastState"), "terminated");
	struct table_time t = {TABLE_TIME_ZERO_SEC, 0};

	if (!term)
		return;
	if (!table_time_parse(jstr(term, "finishedAt", ""), &t))
		t = (struct table_time){TABLE_TIME_ZERO_SEC, 0};
	if (table_time_before(last, &t))
		*last = t;
}

static void pod_cells(struct table_row *r, const struct json_object *pod)
{
	const struct json_object *spec = jobj(pod, "spec"), *status = jobj(pod, "status");
	const struct json_object *inits = jarr(spec, "initContainers");
	const struct json_object *istats = jarr(status, "initContainerStatuses");
	const struct json_object *cstats = jarr(status, "containerStatuses");
	const struct json_object *conds = jarr(status, "conditions");
	const struct json_object *gates = jarr(spec, "readinessGates");
	struct table_time last = {TABLE_TIME_ZERO_SEC, 0}, sidecar_last = last;
	int64_t restarts = 0, sidecar_restarts = 0, total = (int64_t)jlen(jarr(spec, "containers"));
	int64_t ready = 0;
	const char *phase = jstr(status, "phase", "");
	struct sl_buf reason = SL_BUF_INIT, b = SL_BUF_INIT;
	bool initializing = false;
	const char *s;

	sl_buf_puts(&reason, *jstr(status, "reason", "") ? jstr(status, "reason", "") : phase);
	for (size_t i = 0; i < jlen(conds); i++) {
		const struct json_object *c = jidx(conds, i);

		if (jstr_eq(c, "type", "PodScheduled") && jstr_eq(c, "reason", "SchedulingGated")) {
			sl_buf_reset(&reason);
			sl_buf_puts(&reason, "SchedulingGated");
		}
	}
	for (size_t i = 0; i < jlen(inits); i++)
		if (jstr_eq(jidx(inits, i), "restartPolicy", "Always"))
			total++;

	for (size_t i = 0; i < jlen(istats); i++) {
		const struct json_object *cs = jidx(istats, i);
		const struct json_object *state = jobj(cs, "state");
		const struct json_object *term = jobj(state, "terminated");
		const struct json_object *wait = jobj(state, "waiting");
		bool sidecar = pod_init_is_restartable(inits, jstr(cs, "name", ""));

		restarts += jint(cs, "restartCount");
		pod_note_restart(cs, &last);
		if (sidecar) {
			sidecar_restarts += jint(cs, "restartCount");
			pod_note_restart(cs, &sidecar_last);
		}
		if (term && jint(term, "exitCode") == 0)
			continue;
		if (sidecar && jbool(cs, "started")) {
			if (jbool(cs, "ready"))
				ready++;
			continue;
		}
		sl_buf_reset(&reason);
		if (term) {
			/* initialization failed */
			if (*jstr(term, "reason", ""))
				sl_buf_printf(&reason, "Init:%s", jstr(term, "reason", ""));
			else if (jint(term, "signal"))
				sl_buf_printf(&reason, "Init:Signal:%lld",
					      (long long)jint(term, "signal"));
			else
				sl_buf_printf(&reason, "Init:ExitCode:%lld",
					      (long long)jint(term, "exitCode"));
		} else if (wait && *jstr(wait, "reason", "") &&
			   !jstr_eq(wait, "reason", "PodInitializing")) {
			sl_buf_printf(&reason, "Init:%s", jstr(wait, "reason", ""));
		} else {
			sl_buf_printf(&reason, "Init:%zu/%zu", i, jlen(inits));
		}
		initializing = true;
		break;
	}

	if (!initializing || pod_condition_true(conds, "Initialized")) {
		bool has_running = false;

		restarts = sidecar_restarts;
		last = sidecar_last;
		/* Reverse order: the first container's state wins the STATUS. */
		for (size_t i = jlen(cstats); i-- > 0;) {
			const struct json_object *cs = jidx(cstats, i);
			const struct json_object *state = jobj(cs, "state");
			const struct json_object *term = jobj(state, "terminated");
			const struct json_object *wait = jobj(state, "waiting");

			restarts += jint(cs, "restartCount");
			pod_note_restart(cs, &last);
			if (wait && *jstr(wait, "reason", "")) {
				sl_buf_reset(&reason);
				sl_buf_puts(&reason, jstr(wait, "reason", ""));
			} else if (term && *jstr(term, "reason", "")) {
				sl_buf_reset(&reason);
				sl_buf_puts(&reason, jstr(term, "reason", ""));
			} else if (term) {
				sl_buf_reset(&reason);
				if (jint(term, "signal"))
					sl_buf_printf(&reason, "Signal:%lld",
						      (long long)jint(term, "signal"));
				else
					sl_buf_printf(&reason, "ExitCode:%lld",
						      (long long)jint(term, "exitCode"));
			} else if (jbool(cs, "ready") && jobj(state, "running")) {
				has_running = true;
				ready++;
			}
		}
		/* A pod whose restarted container still runs is not "Completed". */
		s = sl_buf_cstr(&reason);
		if (s && !strcmp(s, "Completed") && has_running) {
			sl_buf_reset(&reason);
			sl_buf_puts(&reason,
				    pod_condition_true(conds, "Ready") ? "Running" : "NotReady");
		}
	}

	if (obj_deleting(pod) && jstr_eq(status, "reason", "NodeLost")) {
		sl_buf_reset(&reason);
		sl_buf_puts(&reason, "Unknown");
	} else if (obj_deleting(pod) && strcmp(phase, "Failed") && strcmp(phase, "Succeeded")) {
		sl_buf_reset(&reason);
		sl_buf_puts(&reason, "Terminating");
	}

	cell_str(r, obj_name(pod));
	sl_buf_printf(&b, "%lld/%lld", (long long)ready, (long long)total);
	cell_buf(r, &b);
	cell_buf(r, &reason);
	if (restarts != 0 && !table_time_is_zero(&last)) {
		char ago[64];

		table_human_duration((time_t)table_time_since(r->now, &last), ago, sizeof(ago));
		sl_buf_printf(&b, "%lld (%s ago)", (long long)restarts, ago);
	} else {
		sl_buf_printf(&b, "%lld", (long long)restarts);
	}
	cell_buf(r, &b);
	cell_since(r, obj_created(pod));

	/* podIPs[0].ip; podIP covers objects stored before podIPs existed. */
	s = jlen(jarr(status, "podIPs")) ? jstr(jidx(jarr(status, "podIPs"), 0), "ip", "")
					 : jstr(status, "podIP", "");
	cell_str(r, *s ? s : "<none>");
	s = jstr(spec, "nodeName", "");
	cell_str(r, *s ? s : "<none>");
	s = jstr(status, "nominatedNodeName", "");
	cell_str(r, *s ? s : "<none>");
	if (jlen(gates)) {
		size_t ok = 0;

		for (size_t i = 0; i < jlen(gates); i++) {
			const char *type = jstr(jidx(gates, i), "conditionType", "");

			for (size_t j = 0; j < jlen(conds); j++) {
				if (jstr_eq(jidx(conds, j), "type", type)) {
					ok += jstr_eq(jidx(conds, j), "status", "True");
					break;
				}
			}
		}
		sl_buf_printf(&b, "%zu/%zu", ok, jlen(gates));
		cell_buf(r, &b);
	} else {
		cell_str(r, "<none>");
	}
	sl_buf_fini(&reason);
	sl_buf_fini(&b);
}

/* --- Service -------------------------------------------------------------- */

/* LoadBalancer ingress IPs (or hostnames), sorted and de-duplicated. */
static void service_lb_ingress(const struct json_object *svc, struct sl_buf *b)
{
	const struct json_object *ing = jarr(jobj(jobj(svc, "status"), "loadBalancer"), "ingress");
	size_t n = jlen(ing), k = 0;
	const char **v;

	if (!n)
		return;
	v = calloc(n, sizeof(*v));
	if (!v) {
		b->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *ip = jstr(jidx(ing, i), "ip", "");
		const char *host = jstr(jidx(ing, i), "hostname", "");

		if (*ip)
			v[k++] = ip;
		else if (*host)
			v[k++] = host;
	}
	qsort(v, k, sizeof(*v), cmp_cstr);
	for (size_t i = 0; i < k; i++)
		if (i == 0 || strcmp(v[i], v[i - 1]))
			buf_join(b, ",", v[i]);
	free(v);
}

/* strings.Join of a JSON string array ("" for non-strings) onto b. */
static void join_str_array(struct sl_buf *b, const struct json_object *arr, bool lead_sep)
{
	for (size_t i = 0; i < jlen(arr); i++) {
		if (i || lead_sep)
			sl_buf_puts(b, ",");
		sl_buf_puts(b, jidx_str(arr, i));
	}
}

static void service_external_ip(const struct json_object *svc, struct sl_buf *b)
{
	const struct json_object *spec = jobj(svc, "spec");
	const struct json_object *ext = jarr(spec, "externalIPs");
	const char *type = jstr(spec, "type", "");

	if (!strcmp(type, "ClusterIP") || !strcmp(type, "NodePort")) {
		if (jlen(ext))
			join_str_array(b, ext, false);
		else
			sl_buf_puts(b, "<none>");
	} else if (!strcmp(type, "LoadBalancer")) {
		service_lb_ingress(svc, b);
		if (jlen(ext))
			join_str_array(b, ext, b->len > 0);
		else if (!b->len)
			sl_buf_puts(b, "<pending>");
	} else if (!strcmp(type, "ExternalName")) {
		sl_buf_puts(b, jstr(spec, "externalName", ""));
	} else {
		sl_buf_puts(b, "<unknown>");
	}
}

static void service_cells(struct table_row *r, const struct json_object *svc)
{
	const struct json_object *spec = jobj(svc, "spec");
	const struct json_object *ips = jarr(spec, "clusterIPs");
	const struct json_object *ports = jarr(spec, "ports");
	struct sl_buf b = SL_BUF_INIT;
	const char *ip;

	cell_str(r, obj_name(svc));
	cell_str(r, jstr(spec, "type", ""));
	/* clusterIPs[0] ("None" when headless); clusterIP for objects without it. */
	ip = jlen(ips) ? jidx_str(ips, 0) : jstr(spec, "clusterIP", "");
	cell_str(r, jlen(ips) || *ip ? ip : "<none>");
	service_external_ip(svc, &b);
	cell_buf(r, &b);
	for (size_t i = 0; i < jlen(ports); i++) {
		const struct json_object *p = jidx(ports, i);
		int64_t node_port = jint(p, "nodePort");

		if (i)
			sl_buf_puts(&b, ",");
		if (node_port > 0)
			sl_buf_printf(&b, "%lld:%lld/%s", (long long)jint(p, "port"),
				      (long long)node_port, jstr(p, "protocol", ""));
		else
			sl_buf_printf(&b, "%lld/%s", (long long)jint(p, "port"),
				      jstr(p, "protocol", ""));
	}
	if (!b.len && !b.oom)
		sl_buf_puts(&b, "<none>");
	cell_buf(r, &b);
	cell_since(r, obj_created(svc));
	format_labels(jobj(spec, "selector"), &b);
	cell_buf(r, &b);
	sl_buf_fini(&b);
}

/* --- Node ----------------------------------------------------------------- */

static const char *node_address(const struct json_object *node, const char *type)
{
	const struct json_object *addrs = jarr(jobj(node, "status"), "addresses");

	for (size_t i = 0; i < jlen(addrs); i++)
		if (jstr_eq(jidx(addrs, i), "type", type))
			return jstr(jidx(addrs, i), "address", "");
	return "<none>";
}

/* node-role.kubernetes.io/<role> keys and kubernetes.io/role=<role> values. */
static void node_roles(const struct json_object *node, struct sl_buf *b)
{
	static const char prefix[] = "node-role.kubernetes.io/";
	const struct json_object *labels = jobj(jobj(node, "metadata"), "labels");
	size_t n = labels ? (size_t)json_object_object_length(labels) : 0, k = 0;
	const char **roles;

	if (!n)
		return;
	roles = calloc(n, sizeof(*roles));
	if (!roles) {
		b->oom = true;
		return;
	}
	json_object_object_foreach((struct json_object *)labels, key, val)
	{
		if (k >= n)
			break;
		if (!strncmp(key, prefix, sizeof(prefix) - 1) && key[sizeof(prefix) - 1])
			roles[k++] = key + sizeof(prefix) - 1;
		else if (!strcmp(key, "kubernetes.io/role") && val &&
			 json_object_is_type(val, json_type_string) && *json_object_get_string(val))
			roles[k++] = json_object_get_string(val);
	}
	qsort(roles, k, sizeof(*roles), cmp_cstr);
	for (size_t i = 0; i < k; i++)
		if (i == 0 || strcmp(roles[i], roles[i - 1]))
			buf_join(b, ",", roles[i]);
	free(roles);
}

static void node_cells(struct table_row *r, const struct json_object *node)
{
	const struct json_object *status = jobj(node, "status");
	const struct json_object *conds = jarr(status, "conditions");
	const struct json_object *info = jobj(status, "nodeInfo");
	const struct json_object *ready = NULL;
	static const char *const wide[] = {"osImage", "kernelVersion", "containerRuntimeVersion"};
	struct sl_buf b = SL_BUF_INIT;

	/* Only the Ready condition feeds STATUS; the last duplicate wins. */
	for (size_t i = 0; i < jlen(conds); i++)
		if (jstr_eq(jidx(conds, i), "type", "Ready"))
			ready = jidx(conds, i);
	if (!ready)
		sl_buf_puts(&b, "Unknown");
	else
		sl_buf_puts(&b, jstr_eq(ready, "status", "True") ? "Ready" : "NotReady");
	if (jbool(jobj(node, "spec"), "unschedulable"))
		sl_buf_puts(&b, ",SchedulingDisabled");

	cell_str(r, obj_name(node));
	cell_buf(r, &b);
	node_roles(node, &b);
	if (!b.len && !b.oom)
		sl_buf_puts(&b, "<none>");
	cell_buf(r, &b);
	cell_since(r, obj_created(node));
	cell_str(r, jstr(info, "kubeletVersion", ""));
	cell_str(r, node_address(node, "InternalIP"));
	cell_str(r, node_address(node, "ExternalIP"));
	for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++) {
		const char *s = jstr(info, wide[i], "");

		cell_str(r, *s ? s : "<unknown>");
	}
	sl_buf_fini(&b);
}

/* --- EndpointSlice, Endpoints --------------------------------------------- */

#define TABLE_LIST_MAX 3 /* items shown before " + N more..." */

/* listWithMoreString: first three, " + N more...", "<unset>" when empty. */
static void list_more_finish(struct sl_buf *b, size_t shown, size_t count)
{
	if (count > shown)
		sl_buf_printf(b, " + %zu more...", count - shown);
	else if (!b->len && !b->oom)
		sl_buf_puts(b, "<unset>");
}

static void endpointslice_cells(struct table_row *r, const struct json_object *eps)
{
	const struct json_object *ports = jarr(eps, "ports");
	const struct json_object *endpoints = jarr(eps, "endpoints");
	struct sl_buf b = SL_BUF_INIT;
	size_t shown = 0, count = 0;

	cell_str(r, obj_name(eps));
	cell_str(r, jstr(eps, "addressType", ""));
	for (size_t i = 0; i < jlen(ports); i++, count++) {
		const struct json_object *p = jidx(ports, i);
		struct json_object *num = sl_json_get(p, "port");
		const char *name = sl_json_get_str(p, "name");

		if (shown == TABLE_LIST_MAX)
			continue;
		if (shown)
			sl_buf_puts(&b, ",");
		/* A port with no number prints its name, or "*" without either. */
		if (num && json_object_is_type(num, json_type_int))
			sl_buf_printf(&b, "%lld", (long long)json_object_get_int64(num));
		else
			sl_buf_puts(&b, name ? name : "*");
		shown++;
	}
	list_more_finish(&b, shown, count);
	cell_buf(r, &b);

	shown = count = 0;
	for (size_t i = 0; i < jlen(endpoints); i++) {
		const struct json_object *addrs = jarr(jidx(endpoints, i), "addresses");

		for (size_t j = 0; j < jlen(addrs); j++, count++) {
			if (shown == TABLE_LIST_MAX)
				continue;
			if (shown)
				sl_buf_puts(&b, ",");
			sl_buf_puts(&b, jidx_str(addrs, j));
			shown++;
		}
	}
	list_more_finish(&b, shown, count);
	cell_buf(r, &b);
	cell_since(r, obj_created(eps));
	sl_buf_fini(&b);
}

/* net.JoinHostPort: brackets around IPv6 literals. */
static void join_host_port(struct sl_buf *b, const char *host, int64_t port)
{
	if (strchr(host, ':'))
		sl_buf_printf(b, "[%s]:%lld", host, (long long)port);
	else
		sl_buf_printf(b, "%s:%lld", host, (long long)port);
}

/*
 * formatEndpoints(ep, nil): "ip:port" per address and port, first three,
 * " + N more..."; subsets without ports (headless) list bare IPs; "<none>"
 * without subsets.
 */
static void endpoints_format(const struct json_object *ep, struct sl_buf *b)
{
	const struct json_object *subsets = jarr(ep, "subsets");
	size_t shown = 0, count = 0;
	bool more = false;

	if (!jlen(subsets)) {
		sl_buf_puts(b, "<none>");
		return;
	}
	for (size_t i = 0; i < jlen(subsets); i++) {
		const struct json_object *ss = jidx(subsets, i);
		const struct json_object *addrs = jarr(ss, "addresses");
		const struct json_object *ports = jarr(ss, "ports");
		size_t n_ports = jlen(ports) ? jlen(ports) : 1;

		for (size_t p = 0; p < n_ports; p++) {
			count += jlen(addrs);
			for (size_t a = 0; a < jlen(addrs); a++) {
				const char *ip = jstr(jidx(addrs, a), "ip", "");

				if (shown == TABLE_LIST_MAX) {
					more = true;
					break;
				}
				if (shown)
					sl_buf_puts(b, ",");
				if (jlen(ports))
					join_host_port(b, ip, jint(jidx(ports, p), "port"));
				else
					sl_buf_puts(b, ip);
				shown++;
			}
		}
	}
	if (more)
		sl_buf_printf(b, " + %zu more...", count - TABLE_LIST_MAX);
}

static void endpoints_cells(struct table_row *r, const struct json_object *ep)
{
	struct sl_buf b = SL_BUF_INIT;

	cell_str(r, obj_name(ep));
	endpoints_format(ep, &b);
	cell_buf(r, &b);
	cell_since(r, obj_created(ep));
	sl_buf_fini(&b);
}

/* --- Namespace, NetworkPolicy, Lease, ConfigMap, default ------------------ */

static void namespace_cells(struct table_row *r, const struct json_object *ns)
{
	cell_str(r, obj_name(ns));
	cell_str(r, jstr(jobj(ns, "status"), "phase", ""));
	cell_since(r, obj_created(ns));
}

static void networkpolicy_cells(struct table_row *r, const struct json_object *np)
{
	const struct json_object *spec = jobj(np, "spec");
	struct json_object *sel = sl_json_get(spec, "podSelector");

	cell_str(r, obj_name(np));
	/*
	 * spec.podSelector is a value, not a pointer, upstream: absent means
	 * the empty selector. A wrong-typed one is what Go could not decode.
	 */
	cell_label_selector(r, sel);
	cell_since(r, obj_created(np));
}

static void lease_cells(struct table_row *r, const struct json_object *lease)
{
	cell_str(r, obj_name(lease));
	cell_str(r, jstr(jobj(lease, "spec"), "holderIdentity", ""));
	cell_since(r, obj_created(lease));
}

static void configmap_cells(struct table_row *r, const struct json_object *cm)
{
	const struct json_object *data = jobj(cm, "data"), *bin = jobj(cm, "binaryData");
	int64_t n = 0;

	if (data)
		n += json_object_object_length(data);
	if (bin)
		n += json_object_object_length(bin);
	cell_str(r, obj_name(cm));
	cell_int(r, n);
	cell_since(r, obj_created(cm));
}

static void default_cells(struct table_row *r, const struct json_object *o)
{
	cell_str(r, obj_name(o));
	cell_since(r, obj_created(o));
}

/* --- Event ---------------------------------------------------------------- */

static void event_cells(struct table_row *r, const struct json_object *ev)
{
	const struct json_object *inv = jobj(ev, "involvedObject");
	const struct json_object *series = jobj(ev, "series");
	const struct json_object *src = jobj(ev, "source");
	const char *first_ts = sl_json_get_str(ev, "firstTimestamp");
	const char *last_ts = sl_json_get_str(ev, "lastTimestamp");
	const char *component, *host, *msg;
	char first[64], last[64];
	struct table_time t;
	struct sl_buf b = SL_BUF_INIT;
	int64_t count = jint(ev, "count");
	size_t msg_len;

	/* firstTimestamp, else eventTime (events.k8s.io-style events). */
	if (table_time_get(first_ts, &t))
		table_since(r->now, first_ts, first, sizeof(first));
	else
		table_since(r->now, sl_json_get_str(ev, "eventTime"), first, sizeof(first));
	if (table_time_get(last_ts, &t))
		table_since(r->now, last_ts, last, sizeof(last));
	else
		snprintf(last, sizeof(last), "%s", first);
	if (series) {
		table_since(r->now, sl_json_get_str(series, "lastObservedTime"), last,
			    sizeof(last));
		count = jint(series, "count");
	} else if (count == 0) {
		/* Singleton events do not set count in the new API. */
		count = 1;
	}

	cell_str(r, last);
	cell_str(r, jstr(ev, "type", ""));
	cell_str(r, jstr(ev, "reason", ""));
	for (const char *k = jstr(inv, "kind", ""); *k; k++)
		sl_buf_printf(&b, "%c", (*k >= 'A' && *k <= 'Z') ? *k - 'A' + 'a' : *k);
	if (*jstr(inv, "name", ""))
		sl_buf_printf(&b, "/%s", jstr(inv, "name", ""));
	cell_buf(r, &b);
	cell_str(r, jstr(inv, "fieldPath", ""));
	component = jstr(src, "component", "");
	if (!*component)
		component = jstr(ev, "reportingComponent", "");
	host = jstr(src, "host", "");
	if (!*host)
		host = jstr(ev, "reportingInstance", "");
	sl_buf_puts(&b, component);
	if (*host)
		sl_buf_printf(&b, ", %s", host);
	cell_buf(r, &b);
	/* strings.TrimSpace (ASCII whitespace). */
	msg = jstr(ev, "message", "");
	while (*msg && strchr(" \t\n\v\f\r", *msg))
		msg++;
	msg_len = strlen(msg);
	while (msg_len && strchr(" \t\n\v\f\r", msg[msg_len - 1]))
		msg_len--;
	sl_buf_append(&b, msg, msg_len);
	cell_buf(r, &b);
	cell_str(r, first);
	cell_int(r, count);
	cell_str(r, obj_name(ev));
	sl_buf_fini(&b);
}

/* --- workloads ------------------------------------------------------------ */

/* layoutContainerCells: names and images of the pod template, comma-joined. */
static void cells_containers(struct table_row *r, const struct json_object *tmpl)
{
	const struct json_object *cs = jarr(jobj(tmpl, "spec"), "containers");
	struct sl_buf b = SL_BUF_INIT;

	for (size_t i = 0; i < jlen(cs); i++)
		sl_buf_printf(&b, "%s%s", i ? "," : "", jstr(jidx(cs, i), "name", ""));
	cell_buf(r, &b);
	for (size_t i = 0; i < jlen(cs); i++)
		sl_buf_printf(&b, "%s%s", i ? "," : "", jstr(jidx(cs, i), "image", ""));
	cell_buf(r, &b);
	sl_buf_fini(&b);
}

static void deployment_cells(struct table_row *r, const struct json_object *d)
{
	const struct json_object *spec = jobj(d, "spec"), *status = jobj(d, "status");
	struct sl_buf b = SL_BUF_INIT;
	int err;

	cell_str(r, obj_name(d));
	/* ptr.Deref(spec.replicas, 0): defaulting to 1 is the server's job. */
	sl_buf_printf(&b, "%lld/%lld", (long long)jint(status, "readyReplicas"),
		      (long long)jint(spec, "replicas"));
	cell_buf(r, &b);
	cell_int(r, jint(status, "updatedReplicas"));
	cell_int(r, jint(status, "availableReplicas"));
	cell_since(r, obj_created(d));
	cells_containers(r, jobj(spec, "template"));
	/* Deployments print selector.String() itself: "" when empty. */
	err = selector_string(sl_json_get(spec, "selector"), &b);
	if (err == -ENOMEM)
		r->err = err;
	if (err) {
		sl_buf_reset(&b);
		sl_buf_puts(&b, "<invalid>");
	}
	cell_buf(r, &b);
	sl_buf_fini(&b);
}

static void replicaset_cells(struct table_row *r, const struct json_object *rs)
{
	const struct json_object *spec = jobj(rs, "spec"), *status = jobj(rs, "status");

	cell_str(r, obj_name(rs));
	cell_int(r, jint(spec, "replicas"));
	cell_int(r, jint(status, "replicas"));
	cell_int(r, jint(status, "readyReplicas"));
	cell_since(r, obj_created(rs));
	cells_containers(r, jobj(spec, "template"));
	cell_label_selector(r, sl_json_get(spec, "selector"));
}

static void daemonset_cells(struct table_row *r, const struct json_object *ds)
{
	static const char *const counts[] = {"desiredNumberScheduled", "currentNumberScheduled",
					     "numberReady", "updatedNumberScheduled",
					     "numberAvailable"};
	const struct json_object *spec = jobj(ds, "spec"), *status = jobj(ds, "status");
	const struct json_object *tmpl = jobj(spec, "template");
	struct sl_buf b = SL_BUF_INIT;

	cell_str(r, obj_name(ds));
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		cell_int(r, jint(status, counts[i]));
	format_labels(jobj(jobj(tmpl, "spec"), "nodeSelector"), &b);
	cell_buf(r, &b);
	cell_since(r, obj_created(ds));
	cells_containers(r, tmpl);
	cell_label_selector(r, sl_json_get(spec, "selector"));
	sl_buf_fini(&b);
}

/* --- dispatch ------------------------------------------------------------- */

struct table_kind {
	const char *kind;
	const struct table_col *cols;
	size_t n_cols;
	void (*cells)(struct table_row *r, const struct json_object *obj);
};

#define KIND(k, c, f)                               \
	{                                           \
		k, c, sizeof(c) / sizeof((c)[0]), f \
	}

static const struct table_kind table_kinds[] = {
	KIND("Pod", pod_cols, pod_cells),
	KIND("Service", service_cols, service_cells),
	KIND("Node", node_cols, node_cells),
	KIND("EndpointSlice", endpointslice_cols, endpointslice_cells),
	KIND("Endpoints", endpoints_cols, endpoints_cells),
	KIND("Namespace", namespace_cols, namespace_cells),
	KIND("NetworkPolicy", networkpolicy_cols, networkpolicy_cells),
	KIND("Event", event_cols, event_cells),
	KIND("Lease", lease_cols, lease_cells),
	KIND("ConfigMap", configmap_cols, configmap_cells),
	KIND("Deployment", deployment_cols, deployment_cells),
	KIND("ReplicaSet", replicaset_cols, replicaset_cells),
	KIND("DaemonSet", daemonset_cols, daemonset_cells),
};

static const struct table_kind table_default = KIND("", default_cols, default_cells);

static const struct table_kind *table_kind_find(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof(table_kinds) / sizeof(table_kinds[0]); i++)
		if (!strcmp(table_kinds[i].kind, kind))
			return &table_kinds[i];
	return &table_default;
}

struct json_object *table_columns(const char *kind)
{
	const struct table_kind *k = table_kind_find(kind);
	struct json_object *cols = json_object_new_array_ext((int)k->n_cols);

	if (!cols)
		goto oom;
	for (size_t i = 0; i < k->n_cols; i++) {
		const struct table_col *c = &k->cols[i];
		struct json_object *o = json_object_new_object();

		/* All five members always, as metav1.TableColumnDefinition serialises. */
		if (!o || sl_json_set_str(o, "name", c->name) ||
		    sl_json_set_str(o, "type", c->type) ||
		    sl_json_set_str(o, "format", c->format) ||
		    sl_json_set_str(o, "description", c->desc) ||
		    sl_json_set_int(o, "priority", c->priority) || json_object_array_add(cols, o)) {
			json_object_put(o);
			goto oom;
		}
	}
	return cols;
oom:
	json_object_put(cols);
	errno = ENOMEM;
	return NULL;
}

struct json_object *table_cells(const char *kind, const struct json_object *obj, time_t now)
{
	const struct table_kind *k = table_kind_find(kind);
	struct table_row r = {.cells = json_object_new_array_ext((int)k->n_cols), .now = now};

	if (!r.cells) {
		errno = ENOMEM;
		return NULL;
	}
	k->cells(&r, obj);
	if (r.err) {
		json_object_put(r.cells);
		errno = -r.err;
		return NULL;
	}
	return r.cells;
}
