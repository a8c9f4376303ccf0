// SPDX-License-Identifier: Apache-2.0
/*
 * control/table.c: Table column definitions and exact cell text for every
 * kind, compared with what kubernetes' printers.go produces for the same
 * object, plus HumanDuration's rules and odd objects from the store.
 */
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "sluice/json.h"
#include "control/table.h"

/* "Now" for every AGE cell: 2026-11-22T10:00:00Z. */
#define NOW ((time_t)1795341600)

static struct json_object *parse(const char *txt)
{
	char err[128];
	struct json_object *o = sl_json_parse(txt, strlen(txt), err, sizeof(err));

	if (!o)
		(void)TEST_FAIL_AT("test input does not parse: %s: %s", err, txt);
	return o;
}

/*
 * Renders the cells of `obj_json` (as `kind`) and compares their plain JSON
 * with `want`; also checks the row is as wide as the column list.
 */
static bool cells_are(const char *kind, const char *obj_json, time_t now, const char *want)
{
	struct json_object *obj = parse(obj_json), *cells = NULL, *cols = NULL;
	bool ok = false;

	if (!obj)
		return false;
	cells = table_cells(kind, obj, now);
	cols = table_columns(kind);
	if (ASSERT_NOT_NULL(cells, "cells") && ASSERT_NOT_NULL(cols, "columns") &&
	    ASSERT_EQ(json_object_array_length(cells), json_object_array_length(cols),
		      "one cell per column"))
		ok = ASSERT_STREQ(sl_json_str(cells, NULL), want, kind);
	json_object_put(cells);
	json_object_put(cols);
	json_object_put(obj);
	return ok;
}

/* Compares "name:type:format:priority|..." of kind's columns with want. */
static bool columns_are(const char *kind, const char *want)
{
	struct json_object *cols = table_columns(kind);
	struct sl_buf b = SL_BUF_INIT;
	bool ok = false;

	if (!ASSERT_NOT_NULL(cols, "columns"))
		return false;
	for (size_t i = 0; i < json_object_array_length(cols); i++) {
		struct json_object *c = json_object_array_get_idx(cols, i);
		int64_t prio = -1;

		sl_json_get_int(c, "priority", &prio);
		sl_buf_printf(&b, "%s%s:%s:%s:%lld", i ? "|" : "", sl_json_get_str(c, "name"),
			      sl_json_get_str(c, "type"), sl_json_get_str(c, "format"),
			      (long long)prio);
		if (!sl_json_get_str(c, "description") || !*sl_json_get_str(c, "description"))
			(void)TEST_FAIL_AT("%s column %zu has no description", kind, i);
	}
	ok = ASSERT_STREQ(sl_buf_cstr(&b), want, kind);
	sl_buf_fini(&b);
	json_object_put(cols);
	return ok;
}

static bool duration_is(time_t secs, const char *want)
{
	char out[32];

	table_human_duration(secs, out, sizeof(out));
	if (strcmp(out, want))
		return TEST_FAIL_AT("HumanDuration(%llds) = \"%s\", want \"%s\"", (long long)secs,
				    out, want);
	return true;
}

TEST(now_constant_is_the_documented_instant)
{
	struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 22, .tm_hour = 10};

	ASSERT_EQ(timegm(&tm), NOW, "2026-11-22T10:00:00Z");
}

TEST(human_duration_matches_apimachinery)
{
	const time_t m = 60, h = 3600, d = 86400, y = 365 * 86400;

	duration_is(-1000, "<invalid>");
	duration_is(-2, "<invalid>");
	duration_is(-1, "0s"); /* one second of clock skew is tolerated */
	duration_is(0, "0s");
	duration_is(45, "45s");
	duration_is(119, "119s");
	duration_is(2 * m, "2m");
	duration_is(2 * m + 5, "2m5s");
	duration_is(9 * m + 59, "9m59s");
	duration_is(10 * m, "10m");
	duration_is(10 * m + 30, "10m");
	duration_is(179 * m + 59, "179m");
	duration_is(3 * h, "3h");
	duration_is(3 * h + 30 * m + 10, "3h30m");
	duration_is(7 * h + 59 * m + 59, "7h59m");
	duration_is(8 * h, "8h");
	duration_is(47 * h + 59 * m, "47h");
	duration_is(48 * h, "2d");
	duration_is(2 * d + 5 * h + 59 * m, "2d5h");
	duration_is(7 * d + 23 * h, "7d23h");
	duration_is(8 * d, "8d");
	duration_is(400 * d, "400d");
	duration_is(729 * d + 23 * h, "729d");
	duration_is(2 * y, "2y");
	duration_is(2 * y + 10 * d, "2y10d");
	duration_is(7 * y + 364 * d, "7y364d");
	duration_is(8 * y, "8y");
	duration_is(100 * y + 3 * d, "100y");
}

TEST(human_duration_small_buffers)
{
	char out[4] = "xyz";

	table_human_duration(3 * 3600 + 60, out, sizeof(out));
	ASSERT_STREQ(out, "3h1", "truncated, still terminated");
	table_human_duration(5, out, 0);
	ASSERT_STREQ(out, "3h1", "zero length untouched");
	table_human_duration(5, NULL, 8); /* must not crash */
}

TEST(age_parses_rfc3339_like_metav1_time)
{
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-20T10:00:00Z\"}}",
		  NOW, "[\"a\",\"2d\"]");
	/* Fractions count: 09:59:14.5 is 45.5s ago, which truncates to 45s. */
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-22T09:59:14.5Z\"}}",
		  NOW, "[\"a\",\"45s\"]");
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-22T09:59:15.123456789Z\"}}",
		  NOW, "[\"a\",\"44s\"]");
	/* 10:55+01:00 is 09:55Z. */
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-22T10:55:00+01:00\"}}",
		  NOW, "[\"a\",\"5m\"]");
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-22T04:30:00-05:30\"}}",
		  NOW, "[\"a\",\"0s\"]");
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2024-02-29T10:00:00Z\"}}",
		  NOW, "[\"a\",\"2y267d\"]");
	/* Future: one second is skew, more is invalid. */
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-22T10:00:01Z\"}}",
		  NOW, "[\"a\",\"0s\"]");
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"2026-11-22T10:00:05Z\"}}",
		  NOW, "[\"a\",\"<invalid>\"]");
	/* Go's time.Duration saturates at ~292 years. */
	cells_are("Widget",
		  "{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":"
		  "\"0001-01-01T00:00:01Z\"}}",
		  NOW, "[\"a\",\"292y\"]");
}

TEST(age_unknown_for_missing_zero_or_bad_timestamps)
{
	static const char *const bad[] = {
		"{\"metadata\":{\"name\":\"a\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":null}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":12345}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"0001-01-01T00:00:00Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"yesterday\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T10:00:00\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-02-30T10:00:00Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2025-02-29T10:00:00Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-13-01T10:00:00Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T24:00:00Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T10:00:60Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T10:00:00.Z\"}}",
		/* Long entries are split on purpose; each line pair is one string. */
		// NOLINTNEXTLINE(bugprone-suspicious-missing-comma)
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T10:00:00."
		"1234567890Z\"}}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T10:00:00+0100\"}"
		"}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22T10:00:00Zjunk\"}"
		"}",
		"{\"metadata\":{\"name\":\"a\",\"creationTimestamp\":\"2026-11-22 10:00:00Z\"}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!cells_are("Widget", bad[i], NOW, "[\"a\",\"<unknown>\"]"))
			(void)TEST_FAIL_AT("input %zu", i);
}

TEST(columns_per_kind)
{
	columns_are("Pod", "Name:string:name:0|Ready:string::0|Status:string::0|"
			   "Restarts:string::0|Age:string::0|IP:string::1|Node:string::1|"
			   "Nominated Node:string::1|Readiness Gates:string::1");
	columns_are("Service", "Name:string:name:0|Type:string::0|Cluster-IP:string::0|"
			       "External-IP:string::0|Port(s):string::0|Age:string::0|"
			       "Selector:string::1");
	columns_are("Node", "Name:string:name:0|Status:string::0|Roles:string::0|Age:string::0|"
			    "Version:string::0|Internal-IP:string::1|External-IP:string::1|"
			    "OS-Image:string::1|Kernel-Version:string::1|"
			    "Container-Runtime:string::1");
	columns_are("EndpointSlice", "Name:string:name:0|AddressType:string::0|Ports:string::0|"
				     "Endpoints:string::0|Age:string::0");
	columns_are("Endpoints", "Name:string:name:0|Endpoints:string::0|Age:string::0");
	columns_are("Namespace", "Name:string:name:0|Status:string::0|Age:string::0");
	columns_are("NetworkPolicy", "Name:string:name:0|Pod-Selector:string::0|Age:string::0");
	columns_are("Event", "Last Seen:string::0|Type:string::0|Reason:string::0|"
			     "Object:string::0|Subobject:string::1|Source:string::1|"
			     "Message:string::0|First Seen:string::1|Count:string::1|"
			     "Name:string:name:1");
	columns_are("Lease", "Name:string:name:0|Holder:string::0|Age:string::0");
	columns_are("ConfigMap", "Name:string:name:0|Data:string::0|Age:string::0");
	columns_are("Deployment", "Name:string:name:0|Ready:string::0|Up-to-date:string::0|"
				  "Available:string::0|Age:string::0|Containers:string::1|"
				  "Images:string::1|Selector:string::1");
	columns_are("ReplicaSet", "Name:string:name:0|Desired:integer::0|Current:integer::0|"
				  "Ready:integer::0|Age:string::0|Containers:string::1|"
				  "Images:string::1|Selector:string::1");
	columns_are("DaemonSet", "Name:string:name:0|Desired:integer::0|Current:integer::0|"
				 "Ready:integer::0|Up-to-date:integer::0|Available:integer::0|"
				 "Node Selector:string::0|Age:string::0|Containers:string::1|"
				 "Images:string::1|Selector:string::1");
	columns_are("Widget", "Name:string:name:0|Age:string::0");
	columns_are(NULL, "Name:string:name:0|Age:string::0");
	columns_are("pod", "Name:string:name:0|Age:string::0"); /* kinds are case-sensitive */
}

TEST(column_object_shape)
{
	struct json_object *cols = table_columns("Pod");

	if (!ASSERT_NOT_NULL(cols, "columns"))
		return;
	/* Every member present, as metav1.TableColumnDefinition serialises. */
	ASSERT_STREQ(sl_json_str(json_object_array_get_idx(cols, 1), NULL),
		     "{\"name\":\"Ready\",\"type\":\"string\",\"format\":\"\",\"description\":"
		     "\"The aggregate readiness state of this pod for accepting traffic.\","
		     "\"priority\":0}",
		     "column json");
	json_object_put(cols);
}

TEST(pod_running_and_wide)
{
	cells_are(
		"Pod",
		"{\"metadata\":{\"name\":\"web-1\",\"creationTimestamp\":\"2026-11-20T10:00:00Z\"},"
		"\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]},"
		"\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.9\",\"podIPs\":[{\"ip\":"
		"\"10.0.0.9\"},{\"ip\":\"fd00::9\"}],\"containerStatuses\":["
		"{\"name\":\"a\",\"ready\":true,\"restartCount\":0,\"state\":{\"running\":{}}},"
		"{\"name\":\"b\",\"ready\":false,\"restartCount\":0,\"state\":{\"running\":{}}}]}}",
		NOW,
		"[\"web-1\",\"1/2\",\"Running\",\"0\",\"2d\",\"10.0.0.9\",\"n1\",\"<none>\","
		"\"<none>\"]");
	/* Pending, unscheduled, nothing reported yet. */
	cells_are(
		"Pod",
		"{\"metadata\":{\"name\":\"p\",\"creationTimestamp\":\"2026-11-22T09:59:15Z\"},"
		"\"spec\":{\"containers\":[{\"name\":\"a\"}]},\"status\":{\"phase\":\"Pending\"}}",
		NOW,
		"[\"p\",\"0/1\",\"Pending\",\"0\",\"45s\",\"<none>\",\"<none>\",\"<none>\","
		"\"<none>\"]");
	/* podIP alone (no podIPs), nominated node, readiness gates 1/2. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[],\"readinessGates\":["
		  "{\"conditionType\":\"example.com/lb\"},{\"conditionType\":\"example.com/x\"}]},"
		  "\"status\":{\"phase\":\"Pending\",\"podIP\":\"10.0.0.7\",\"nominatedNodeName\":"
		  "\"n2\",\"conditions\":[{\"type\":\"example.com/lb\",\"status\":\"True\"},"
		  "{\"type\":\"example.com/x\",\"status\":\"False\"}]}}",
		  NOW,
		  "[\"p\",\"0/0\",\"Pending\",\"0\",\"<unknown>\",\"10.0.0.7\",\"<none>\","
		  "\"n2\",\"1/2\"]");
}

TEST(pod_status_from_containers)
{
	/* Waiting reason wins; restarts with the last termination time. */
	cells_are(
		"Pod",
		"{\"metadata\":{\"name\":\"crash\"},\"spec\":{\"containers\":[{\"name\":\"a\"},"
		"{\"name\":\"b\"}]},\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
		"{\"name\":\"a\",\"ready\":false,\"restartCount\":3,\"state\":{\"waiting\":"
		"{\"reason\":\"CrashLoopBackOff\"}},\"lastState\":{\"terminated\":{\"exitCode\":1,"
		"\"finishedAt\":\"2026-11-22T09:55:00Z\"}}},"
		"{\"name\":\"b\",\"ready\":true,\"restartCount\":1,\"state\":{\"running\":{}},"
		"\"lastState\":{\"terminated\":{\"exitCode\":0,\"finishedAt\":"
		"\"2026-11-22T08:00:00Z\"}}}]}}",
		NOW,
		"[\"crash\",\"1/2\",\"CrashLoopBackOff\",\"4 (5m ago)\",\"<unknown>\","
		"\"<none>\",\"<none>\",\"<none>\",\"<none>\"]");
	/* Restarts without a known finish time stay a bare number. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
		  "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"a\","
		  "\"ready\":true,\"restartCount\":7,\"state\":{\"running\":{}}}]}}",
		  NOW,
		  "[\"r\",\"1/1\",\"Running\",\"7\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* Succeeded: terminated reason. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"job\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
		  "\"status\":{\"phase\":\"Succeeded\",\"containerStatuses\":[{\"name\":\"a\","
		  "\"ready\":false,\"restartCount\":0,\"state\":{\"terminated\":{\"exitCode\":0,"
		  "\"reason\":\"Completed\"}}}]}}",
		  NOW,
		  "[\"job\",\"0/1\",\"Completed\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* Terminated without reason: signal, then exit code. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"k\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
		  "\"status\":{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"a\","
		  "\"state\":{\"terminated\":{\"exitCode\":137,\"signal\":9}}}]}}",
		  NOW,
		  "[\"k\",\"0/1\",\"Signal:9\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"k\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
		  "\"status\":{\"phase\":\"Failed\",\"containerStatuses\":[{\"name\":\"a\","
		  "\"state\":{\"terminated\":{\"exitCode\":2}}}]}}",
		  NOW,
		  "[\"k\",\"0/1\",\"ExitCode:2\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* The first container's state wins (statuses are walked backwards). */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"o\"},\"spec\":{\"containers\":[{\"name\":\"a\"},"
		  "{\"name\":\"b\"}]},\"status\":{\"phase\":\"Pending\",\"containerStatuses\":["
		  "{\"name\":\"a\",\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\"}}},"
		  "{\"name\":\"b\",\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]}}",
		  NOW,
		  "[\"o\",\"0/2\",\"ErrImagePull\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* One container Completed while another still runs: Running / NotReady. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"m\"},\"spec\":{\"containers\":[{\"name\":\"a\"},"
		  "{\"name\":\"b\"}]},\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":"
		  "\"Ready\",\"status\":\"True\"}],\"containerStatuses\":["
		  "{\"name\":\"a\",\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":"
		  "\"Completed\"}}},{\"name\":\"b\",\"ready\":true,\"state\":{\"running\":{}}}]}}",
		  NOW,
		  "[\"m\",\"1/2\",\"Running\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"m\"},\"spec\":{\"containers\":[{\"name\":\"a\"},"
		  "{\"name\":\"b\"}]},\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
		  "{\"name\":\"a\",\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":"
		  "\"Completed\"}}},{\"name\":\"b\",\"ready\":true,\"state\":{\"running\":{}}}]}}",
		  NOW,
		  "[\"m\",\"1/2\",\"NotReady\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* status.reason (Evicted) replaces the phase. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"e\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
		  "\"status\":{\"phase\":\"Failed\",\"reason\":\"Evicted\"}}",
		  NOW,
		  "[\"e\",\"0/1\",\"Evicted\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* Scheduling gates. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"g\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
		  "\"status\":{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\","
		  "\"status\":\"False\",\"reason\":\"SchedulingGated\"}]}}",
		  NOW,
		  "[\"g\",\"0/1\",\"SchedulingGated\",\"0\",\"<unknown>\",\"<none>\","
		  "\"<none>\",\"<none>\",\"<none>\"]");
}

TEST(pod_terminating_and_node_lost)
{
	cells_are(
		"Pod",
		"{\"metadata\":{\"name\":\"t\",\"deletionTimestamp\":\"2026-11-22T09:59:00Z\"},"
		"\"spec\":{\"containers\":[{\"name\":\"a\"}]},\"status\":{\"phase\":\"Running\","
		"\"containerStatuses\":[{\"name\":\"a\",\"ready\":true,\"state\":{\"running\":{}}}]"
		"}}",
		NOW,
		"[\"t\",\"1/1\",\"Terminating\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		"\"<none>\",\"<none>\"]");
	/* Terminal phases are not "Terminating". */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"t\",\"deletionTimestamp\":\"2026-11-22T09:59:00Z\"},"
		  "\"spec\":{\"containers\":[{\"name\":\"a\"}]},\"status\":{\"phase\":"
		  "\"Succeeded\"}}",
		  NOW,
		  "[\"t\",\"0/1\",\"Succeeded\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"u\",\"deletionTimestamp\":\"2026-11-22T09:59:00Z\"},"
		  "\"spec\":{\"containers\":[{\"name\":\"a\"}]},\"status\":{\"phase\":\"Running\","
		  "\"reason\":\"NodeLost\"}}",
		  NOW,
		  "[\"u\",\"0/1\",\"Unknown\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* Any deletionTimestamp counts (upstream tests the pointer). */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"z\",\"deletionTimestamp\":\"0001-01-01T00:00:00Z\"},"
		  "\"status\":{\"phase\":\"Pending\"}}",
		  NOW,
		  "[\"z\",\"0/0\",\"Terminating\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* A null deletionTimestamp is "not deleting". */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":\"n\",\"deletionTimestamp\":null},\"status\":{\"phase\":"
		  "\"Running\"}}",
		  NOW,
		  "[\"n\",\"0/0\",\"Running\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
}

TEST(pod_init_containers)
{
	const char *spec = "\"spec\":{\"initContainers\":[{\"name\":\"i1\"},{\"name\":\"i2\"}],"
			   "\"containers\":[{\"name\":\"a\"}]}";
	char buf[1024];

	/* Still running the first init container. */
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\"},%s,\"status\":{\"phase\":\"Pending\","
		 "\"initContainerStatuses\":[{\"name\":\"i1\",\"state\":{\"running\":{}}},"
		 "{\"name\":\"i2\",\"state\":{\"waiting\":{\"reason\":\"PodInitializing\"}}}],"
		 "\"containerStatuses\":[{\"name\":\"a\",\"state\":{\"waiting\":{\"reason\":"
		 "\"PodInitializing\"}}}]}}",
		 spec);
	cells_are("Pod", buf, NOW,
		  "[\"p\",\"0/1\",\"Init:0/2\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* First done, second crash-looping: init restarts are what is shown. */
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\"},%s,\"status\":{\"phase\":\"Pending\","
		 "\"initContainerStatuses\":[{\"name\":\"i1\",\"state\":{\"terminated\":"
		 "{\"exitCode\":0,\"reason\":\"Completed\"}}},{\"name\":\"i2\",\"restartCount\":4,"
		 "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}},\"lastState\":"
		 "{\"terminated\":{\"exitCode\":1,\"finishedAt\":\"2026-11-22T09:58:00Z\"}}}]}}",
		 spec);
	cells_are("Pod", buf, NOW,
		  "[\"p\",\"0/1\",\"Init:CrashLoopBackOff\",\"4 (2m ago)\",\"<unknown>\","
		  "\"<none>\",\"<none>\",\"<none>\",\"<none>\"]");
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\"},%s,\"status\":{\"phase\":\"Pending\","
		 "\"initContainerStatuses\":[{\"name\":\"i1\",\"state\":{\"terminated\":"
		 "{\"exitCode\":1,\"reason\":\"Error\"}}}]}}",
		 spec);
	cells_are("Pod", buf, NOW,
		  "[\"p\",\"0/1\",\"Init:Error\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\"},%s,\"status\":{\"phase\":\"Pending\","
		 "\"initContainerStatuses\":[{\"name\":\"i1\",\"state\":{\"terminated\":"
		 "{\"exitCode\":3}}}]}}",
		 spec);
	cells_are("Pod", buf, NOW,
		  "[\"p\",\"0/1\",\"Init:ExitCode:3\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\"},%s,\"status\":{\"phase\":\"Pending\","
		 "\"initContainerStatuses\":[{\"name\":\"i1\",\"state\":{\"terminated\":"
		 "{\"exitCode\":137,\"signal\":9}}}]}}",
		 spec);
	cells_are("Pod", buf, NOW,
		  "[\"p\",\"0/1\",\"Init:Signal:9\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
	/* All init containers done: main containers decide. */
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\"},%s,\"status\":{\"phase\":\"Running\","
		 "\"initContainerStatuses\":[{\"name\":\"i1\",\"restartCount\":2,\"state\":"
		 "{\"terminated\":{\"exitCode\":0}}},{\"name\":\"i2\",\"state\":{\"terminated\":"
		 "{\"exitCode\":0}}}],\"containerStatuses\":[{\"name\":\"a\",\"ready\":true,"
		 "\"state\":{\"running\":{}}}]}}",
		 spec);
	cells_are("Pod", buf, NOW,
		  "[\"p\",\"1/1\",\"Running\",\"0\",\"<unknown>\",\"<none>\",\"<none>\","
		  "\"<none>\",\"<none>\"]");
}

TEST(pod_sidecar_init_container)
{
	/* restartPolicy Always: counted in READY and RESTARTS once started. */
	cells_are(
		"Pod",
		"{\"metadata\":{\"name\":\"s\"},\"spec\":{\"initContainers\":[{\"name\":\"proxy\","
		"\"restartPolicy\":\"Always\"}],\"containers\":[{\"name\":\"app\"}]},"
		"\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Initialized\","
		"\"status\":\"True\"}],\"initContainerStatuses\":[{\"name\":\"proxy\","
		"\"started\":true,\"ready\":true,\"restartCount\":1,\"state\":{\"running\":{}},"
		"\"lastState\":{\"terminated\":{\"exitCode\":1,\"finishedAt\":"
		"\"2026-11-22T07:00:00Z\"}}}],\"containerStatuses\":[{\"name\":\"app\",\"ready\":"
		"true,\"restartCount\":2,\"state\":{\"running\":{}}}]}}",
		NOW,
		"[\"s\",\"2/2\",\"Running\",\"3 (3h ago)\",\"<unknown>\",\"<none>\","
		"\"<none>\",\"<none>\",\"<none>\"]");
}

TEST(service_cells)
{
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"web\",\"creationTimestamp\":\"2026-11-22T08:00:00Z\"},"
		  "\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\",\"clusterIPs\":"
		  "[\"10.96.0.10\"],\"ports\":[{\"port\":80,\"protocol\":\"TCP\"},{\"port\":53,"
		  "\"protocol\":\"UDP\"}],\"selector\":{\"tier\":\"fe\",\"app\":\"web\"}}}",
		  NOW,
		  "[\"web\",\"ClusterIP\",\"10.96.0.10\",\"<none>\",\"80/TCP,53/UDP\",\"120m\","
		  "\"app=web,tier=fe\"]");
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"np\"},\"spec\":{\"type\":\"NodePort\",\"clusterIPs\":"
		  "[\"10.96.0.11\",\"fd00::11\"],\"externalIPs\":[\"192.0.2.1\",\"192.0.2.2\"],"
		  "\"ports\":[{\"port\":80,\"nodePort\":30080,\"protocol\":\"TCP\"}]}}",
		  NOW,
		  "[\"np\",\"NodePort\",\"10.96.0.11\",\"192.0.2.1,192.0.2.2\","
		  "\"80:30080/TCP\",\"<unknown>\",\"<none>\"]");
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"hl\"},\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":"
		  "\"None\",\"clusterIPs\":[\"None\"],\"selector\":{\"app\":\"db\"}}}",
		  NOW,
		  "[\"hl\",\"ClusterIP\",\"None\",\"<none>\",\"<none>\",\"<unknown>\","
		  "\"app=db\"]");
	/* No clusterIPs list (stored before dual-stack): fall back to clusterIP. */
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"old\"},\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":"
		  "\"10.96.0.12\",\"ports\":[{\"port\":443,\"protocol\":\"TCP\"}]}}",
		  NOW,
		  "[\"old\",\"ClusterIP\",\"10.96.0.12\",\"<none>\",\"443/TCP\",\"<unknown>\","
		  "\"<none>\"]");
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"ext\"},\"spec\":{\"type\":\"ExternalName\","
		  "\"externalName\":\"db.example.com\"}}",
		  NOW,
		  "[\"ext\",\"ExternalName\",\"<none>\",\"db.example.com\",\"<none>\","
		  "\"<unknown>\",\"<none>\"]");
	cells_are(
		"Service",
		"{\"metadata\":{\"name\":\"lb\"},\"spec\":{\"type\":\"LoadBalancer\","
		"\"clusterIPs\":"
		"[\"10.96.0.13\"],\"ports\":[{\"port\":80,\"nodePort\":31000,\"protocol\":\"TCP\"},"
		"{\"port\":443,\"nodePort\":31001,\"protocol\":\"TCP\"}]}}",
		NOW,
		"[\"lb\",\"LoadBalancer\",\"10.96.0.13\",\"<pending>\","
		"\"80:31000/TCP,443:31001/TCP\",\"<unknown>\",\"<none>\"]");
	/* Ingress IPs/hostnames sorted and de-duplicated, then externalIPs. */
	cells_are(
		"Service",
		"{\"metadata\":{\"name\":\"lb\"},\"spec\":{\"type\":\"LoadBalancer\","
		"\"clusterIPs\":"
		"[\"10.96.0.13\"],\"externalIPs\":[\"192.0.2.9\"]},\"status\":{\"loadBalancer\":"
		"{\"ingress\":[{\"ip\":\"203.0.113.7\"},{\"hostname\":\"lb.example.com\"},"
		"{\"ip\":\"203.0.113.5\",\"hostname\":\"ignored\"},{\"ip\":\"203.0.113.7\"},{}]}}}",
		NOW,
		"[\"lb\",\"LoadBalancer\",\"10.96.0.13\","
		"\"203.0.113.5,203.0.113.7,lb.example.com,192.0.2.9\",\"<none>\","
		"\"<unknown>\",\"<none>\"]");
	/* externalIPs alone stop a LoadBalancer from being "<pending>". */
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"lb\"},\"spec\":{\"type\":\"LoadBalancer\","
		  "\"externalIPs\":[\"192.0.2.9\",\"192.0.2.8\"]}}",
		  NOW,
		  "[\"lb\",\"LoadBalancer\",\"<none>\",\"192.0.2.9,192.0.2.8\",\"<none>\","
		  "\"<unknown>\",\"<none>\"]");
	/* Untyped service (never defaulted): printed as upstream does. */
	cells_are("Service", "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"ports\":[{\"port\":1}]}}",
		  NOW, "[\"x\",\"\",\"<none>\",\"<unknown>\",\"1/\",\"<unknown>\",\"<none>\"]");
}

TEST(node_cells)
{
	cells_are(
		"Node",
		"{\"metadata\":{\"name\":\"cp\",\"creationTimestamp\":\"2026-11-20T10:00:00Z\","
		"\"labels\":{\"node-role.kubernetes.io/control-plane\":\"\","
		"\"node-role.kubernetes.io/master\":\"\",\"kubernetes.io/role\":\"master\","
		"\"node-role.kubernetes.io/\":\"\",\"kubernetes.io/os\":\"linux\"}},"
		"\"spec\":{\"unschedulable\":true},\"status\":{\"conditions\":["
		"{\"type\":\"MemoryPressure\",\"status\":\"False\"},{\"type\":\"Ready\","
		"\"status\":\"True\"}],\"addresses\":[{\"type\":\"Hostname\",\"address\":\"cp\"},"
		"{\"type\":\"InternalIP\",\"address\":\"192.168.1.10\"},{\"type\":\"InternalIP\","
		"\"address\":\"192.168.1.11\"},{\"type\":\"ExternalIP\",\"address\":\"203.0.113."
		"1\"}],"
		"\"nodeInfo\":{\"kubeletVersion\":\"v1.31.2\",\"osImage\":\"Debian GNU/Linux 12\","
		"\"kernelVersion\":\"6.1.0-27-amd64\",\"containerRuntimeVersion\":"
		"\"containerd://1.7.22\"}}}",
		NOW,
		"[\"cp\",\"Ready,SchedulingDisabled\",\"control-plane,master\",\"2d\","
		"\"v1.31.2\",\"192.168.1.10\",\"203.0.113.1\",\"Debian GNU/Linux 12\","
		"\"6.1.0-27-amd64\",\"containerd://1.7.22\"]");
	cells_are("Node",
		  "{\"metadata\":{\"name\":\"w\",\"labels\":{\"node-role.kubernetes.io/worker\":"
		  "\"\"}},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\"}],"
		  "\"nodeInfo\":{\"kubeletVersion\":\"v1.30.0\"}}}",
		  NOW,
		  "[\"w\",\"NotReady\",\"worker\",\"<unknown>\",\"v1.30.0\",\"<none>\","
		  "\"<none>\",\"<unknown>\",\"<unknown>\",\"<unknown>\"]");
	cells_are("Node", "{\"metadata\":{\"name\":\"bare\"}}", NOW,
		  "[\"bare\",\"Unknown\",\"<none>\",\"<unknown>\",\"\",\"<none>\",\"<none>\","
		  "\"<unknown>\",\"<unknown>\",\"<unknown>\"]");
}

TEST(endpointslice_cells)
{
	cells_are(
		"EndpointSlice",
		"{\"metadata\":{\"name\":\"web-abc\",\"creationTimestamp\":\"2026-11-22T09:55:"
		"00Z\"},"
		"\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":80},"
		"{\"name\":\"https\",\"port\":443}],\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]},"
		"{\"addresses\":[\"10.0.0.2\"]}]}",
		NOW, "[\"web-abc\",\"IPv4\",\"80,443\",\"10.0.0.1,10.0.0.2\",\"5m\"]");
	cells_are(
		"EndpointSlice",
		"{\"metadata\":{\"name\":\"big\"},\"addressType\":\"IPv6\",\"ports\":["
		"{\"name\":\"a\"},{\"port\":null},{\"port\":81},{\"port\":82},{\"port\":83}],"
		"\"endpoints\":[{\"addresses\":[\"fd00::1\",\"fd00::2\"]},{\"addresses\":"
		"[\"fd00::3\",\"fd00::4\"]},{\"addresses\":[]},{},{\"addresses\":[\"fd00::5\"]}]}",
		NOW,
		"[\"big\",\"IPv6\",\"a,*,81 + 2 more...\","
		"\"fd00::1,fd00::2,fd00::3 + 2 more...\",\"<unknown>\"]");
	cells_are("EndpointSlice", "{\"metadata\":{\"name\":\"empty\"},\"addressType\":\"IPv4\"}",
		  NOW, "[\"empty\",\"IPv4\",\"<unset>\",\"<unset>\",\"<unknown>\"]");
	/* Exactly three is not "more"; a single empty name leaves the list empty. */
	cells_are("EndpointSlice",
		  "{\"metadata\":{\"name\":\"e\"},\"addressType\":\"FQDN\",\"ports\":[{\"name\":"
		  "\"\"}],"
		  "\"endpoints\":[{\"addresses\":[\"a.example\",\"b.example\",\"c.example\"]}]}",
		  NOW,
		  "[\"e\",\"FQDN\",\"<unset>\",\"a.example,b.example,c.example\","
		  "\"<unknown>\"]");
}

TEST(endpoints_cells)
{
	cells_are("Endpoints", "{\"metadata\":{\"name\":\"none\"}}", NOW,
		  "[\"none\",\"<none>\",\"<unknown>\"]");
	cells_are("Endpoints",
		  "{\"metadata\":{\"name\":\"web\",\"creationTimestamp\":\"2026-11-22T09:59:15Z\"},"
		  "\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\"},{\"ip\":\"10.0.0.2\"}],"
		  "\"ports\":[{\"port\":80}]}]}",
		  NOW, "[\"web\",\"10.0.0.1:80,10.0.0.2:80\",\"45s\"]");
	/* 5 addresses x 1 port, first three shown. */
	cells_are(
		"Endpoints",
		"{\"metadata\":{\"name\":\"web\"},\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0."
		"1\"},"
		"{\"ip\":\"10.0.0.2\"},{\"ip\":\"10.0.0.3\"},{\"ip\":\"10.0.0.4\"},{\"ip\":"
		"\"10.0.0.5\"}],\"notReadyAddresses\":[{\"ip\":\"10.0.0.6\"}],\"ports\":[{\"port\":"
		"80}]}]}",
		NOW, "[\"web\",\"10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...\",\"<unknown>\"]");
	/* Ports multiply addresses; IPv6 in brackets; count spans subsets. */
	cells_are(
		"Endpoints",
		"{\"metadata\":{\"name\":\"m\"},\"subsets\":[{\"addresses\":[{\"ip\":\"fd00::1\"},"
		"{\"ip\":\"fd00::2\"}],\"ports\":[{\"port\":80},{\"port\":443}]},{\"addresses\":"
		"[{\"ip\":\"10.0.0.9\"}],\"ports\":[{\"port\":8080}]}]}",
		NOW,
		"[\"m\",\"[fd00::1]:80,[fd00::2]:80,[fd00::1]:443 + 2 more...\","
		"\"<unknown>\"]");
	/* Headless without ports: bare IPs. */
	cells_are(
		"Endpoints",
		"{\"metadata\":{\"name\":\"h\"},\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\"},"
		"{\"ip\":\"10.0.0.2\"}]}]}",
		NOW, "[\"h\",\"10.0.0.1,10.0.0.2\",\"<unknown>\"]");
	/* Subsets with only not-ready addresses print an empty cell, as upstream. */
	cells_are("Endpoints",
		  "{\"metadata\":{\"name\":\"nr\"},\"subsets\":[{\"notReadyAddresses\":[{\"ip\":"
		  "\"10.0.0.1\"}],\"ports\":[{\"port\":80}]}]}",
		  NOW, "[\"nr\",\"\",\"<unknown>\"]");
}

TEST(namespace_lease_configmap_cells)
{
	cells_are("Namespace",
		  "{\"metadata\":{\"name\":\"default\",\"creationTimestamp\":\"2026-11-20T10:00:"
		  "00Z\"},"
		  "\"status\":{\"phase\":\"Active\"}}",
		  NOW, "[\"default\",\"Active\",\"2d\"]");
	cells_are("Namespace",
		  "{\"metadata\":{\"name\":\"old\"},\"status\":{\"phase\":\"Terminating\"}}", NOW,
		  "[\"old\",\"Terminating\",\"<unknown>\"]");
	cells_are("Lease",
		  "{\"metadata\":{\"name\":\"sluice-control\",\"creationTimestamp\":"
		  "\"2026-11-22T09:55:00Z\"},\"spec\":{\"holderIdentity\":\"node-a_1234\"}}",
		  NOW, "[\"sluice-control\",\"node-a_1234\",\"5m\"]");
	cells_are("Lease", "{\"metadata\":{\"name\":\"l\"},\"spec\":{}}", NOW,
		  "[\"l\",\"\",\"<unknown>\"]");
	cells_are("ConfigMap",
		  "{\"metadata\":{\"name\":\"cfg\",\"creationTimestamp\":\"2026-11-22T09:55:00Z\"},"
		  "\"data\":{\"a\":\"1\",\"b\":\"2\"},\"binaryData\":{\"c\":\"AA==\"}}",
		  NOW, "[\"cfg\",3,\"5m\"]");
	cells_are("ConfigMap", "{\"metadata\":{\"name\":\"e\"}}", NOW, "[\"e\",0,\"<unknown>\"]");
}

TEST(networkpolicy_selector_cells)
{
	cells_are(
		"NetworkPolicy",
		"{\"metadata\":{\"name\":\"deny\",\"creationTimestamp\":\"2026-11-22T09:55:00Z\"},"
		"\"spec\":{\"podSelector\":{}}}",
		NOW, "[\"deny\",\"<none>\",\"5m\"]");
	cells_are("NetworkPolicy", "{\"metadata\":{\"name\":\"d\"},\"spec\":{}}", NOW,
		  "[\"d\",\"<none>\",\"<unknown>\"]");
	cells_are("NetworkPolicy",
		  "{\"metadata\":{\"name\":\"np\"},\"spec\":{\"podSelector\":{\"matchLabels\":"
		  "{\"tier\":\"fe\",\"app\":\"web\"}}}}",
		  NOW, "[\"np\",\"app=web,tier=fe\",\"<unknown>\"]");
	/* Expressions merge with labels, sorted by key; values sorted. */
	cells_are("NetworkPolicy",
		  "{\"metadata\":{\"name\":\"np\"},\"spec\":{\"podSelector\":{\"matchLabels\":"
		  "{\"role\":\"db\"},\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"In\","
		  "\"values\":[\"prod\",\"dev\"]},{\"key\":\"zone\",\"operator\":\"NotIn\","
		  "\"values\":[\"b\"]},{\"key\":\"canary\",\"operator\":\"DoesNotExist\"},"
		  "{\"key\":\"app\",\"operator\":\"Exists\",\"values\":[]}]}}}",
		  NOW,
		  "[\"np\",\"app,!canary,env in (dev,prod),role=db,zone notin (b)\","
		  "\"<unknown>\"]");
	/* What LabelSelectorAsSelector rejects prints "<error>". */
	cells_are(
		"NetworkPolicy",
		"{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":{\"matchExpressions\":"
		"[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}}}",
		NOW, "[\"bad\",\"<error>\",\"<unknown>\"]");
	cells_are(
		"NetworkPolicy",
		"{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":{\"matchExpressions\":"
		"[{\"key\":\"a\",\"operator\":\"In\",\"values\":[]}]}}}",
		NOW, "[\"bad\",\"<error>\",\"<unknown>\"]");
	cells_are(
		"NetworkPolicy",
		"{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":{\"matchExpressions\":"
		"[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}}}",
		NOW, "[\"bad\",\"<error>\",\"<unknown>\"]");
	cells_are(
		"NetworkPolicy",
		"{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":{\"matchExpressions\":"
		"[{\"operator\":\"Exists\"}]}}}",
		NOW, "[\"bad\",\"<error>\",\"<unknown>\"]");
	cells_are("NetworkPolicy",
		  "{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":{\"matchLabels\":"
		  "{\"a\":1}}}}",
		  NOW, "[\"bad\",\"<error>\",\"<unknown>\"]");
	cells_are("NetworkPolicy",
		  "{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":\"app=web\"}}", NOW,
		  "[\"bad\",\"<error>\",\"<unknown>\"]");
	cells_are(
		"NetworkPolicy",
		"{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"podSelector\":{\"matchExpressions\":"
		"[7]}}}",
		NOW, "[\"bad\",\"<error>\",\"<unknown>\"]");
}

TEST(event_cells)
{
	cells_are(
		"Event",
		"{\"metadata\":{\"name\":\"web-1.17a\"},\"type\":\"Warning\",\"reason\":"
		"\"BackOff\",\"message\":\"  Back-off restarting failed container\\n\","
		"\"count\":12,\"firstTimestamp\":\"2026-11-22T08:00:00Z\",\"lastTimestamp\":"
		"\"2026-11-22T09:55:00Z\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"web-1\","
		"\"fieldPath\":\"spec.containers{app}\"},\"source\":{\"component\":\"kubelet\","
		"\"host\":\"n1\"}}",
		NOW,
		"[\"5m\",\"Warning\",\"BackOff\",\"pod/web-1\",\"spec.containers{app}\","
		"\"kubelet, n1\",\"Back-off restarting failed container\",\"120m\",12,"
		"\"web-1.17a\"]");
	/* events.k8s.io style: eventTime, series, reporting controller/instance. */
	cells_are("Event",
		  "{\"metadata\":{\"name\":\"e2\"},\"type\":\"Normal\",\"reason\":\"Sync\","
		  "\"eventTime\":\"2026-11-20T10:00:00.000000Z\",\"series\":{\"count\":5,"
		  "\"lastObservedTime\":\"2026-11-22T09:59:15.000000Z\"},\"involvedObject\":"
		  "{\"kind\":\"EndpointSlice\",\"name\":\"web-abc\"},\"reportingComponent\":"
		  "\"sluice-control\",\"reportingInstance\":\"cp-1\"}",
		  NOW,
		  "[\"45s\",\"Normal\",\"Sync\",\"endpointslice/web-abc\",\"\","
		  "\"sluice-control, cp-1\",\"\",\"2d\",5,\"e2\"]");
	/* No lastTimestamp: last seen = first seen; count 0 means 1; no name. */
	cells_are("Event",
		  "{\"metadata\":{\"name\":\"e3\"},\"firstTimestamp\":\"2026-11-22T08:00:00Z\","
		  "\"involvedObject\":{\"kind\":\"Node\"},\"source\":{\"component\":\"sluice\"}}",
		  NOW, "[\"120m\",\"\",\"\",\"node\",\"\",\"sluice\",\"\",\"120m\",1,\"e3\"]");
	cells_are("Event", "{\"metadata\":{\"name\":\"e4\"}}", NOW,
		  "[\"<unknown>\",\"\",\"\",\"\",\"\",\"\",\"\",\"<unknown>\",1,\"e4\"]");
}

TEST(workload_cells)
{
	cells_are("Deployment",
		  "{\"metadata\":{\"name\":\"web\",\"creationTimestamp\":\"2026-11-22T09:55:00Z\"},"
		  "\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
		  "\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1."
		  "27\"},"
		  "{\"name\":\"log\",\"image\":\"busybox\"}]}}},\"status\":{\"readyReplicas\":2,"
		  "\"updatedReplicas\":3,\"availableReplicas\":2}}",
		  NOW,
		  "[\"web\",\"2/3\",3,2,\"5m\",\"app,log\",\"nginx:1.27,busybox\","
		  "\"app=web\"]");
	cells_are("Deployment", "{\"metadata\":{\"name\":\"d\"}}", NOW,
		  "[\"d\",\"0/0\",0,0,\"<unknown>\",\"\",\"\",\"\"]");
	cells_are("Deployment",
		  "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":{\"matchExpressions\":"
		  "[{\"key\":\"a\",\"operator\":\"Bogus\"}]}}}",
		  NOW, "[\"d\",\"0/0\",0,0,\"<unknown>\",\"\",\"\",\"<invalid>\"]");
	cells_are("ReplicaSet",
		  "{\"metadata\":{\"name\":\"web-7d4\"},\"spec\":{\"replicas\":3,\"selector\":"
		  "{\"matchLabels\":{\"app\":\"web\",\"pod-template-hash\":\"7d4\"}},\"template\":"
		  "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx\"}]}}},"
		  "\"status\":{\"replicas\":3,\"readyReplicas\":1}}",
		  NOW,
		  "[\"web-7d4\",3,3,1,\"<unknown>\",\"app\",\"nginx\","
		  "\"app=web,pod-template-hash=7d4\"]");
	cells_are("ReplicaSet", "{\"metadata\":{\"name\":\"r\"}}", NOW,
		  "[\"r\",0,0,0,\"<unknown>\",\"\",\"\",\"<none>\"]");
	cells_are(
		"DaemonSet",
		"{\"metadata\":{\"name\":\"agent\",\"creationTimestamp\":\"2026-11-20T10:00:00Z\"},"
		"\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"agent\"}},\"template\":{"
		"\"spec\":"
		"{\"nodeSelector\":{\"kubernetes.io/os\":\"linux\"},\"containers\":[{\"name\":"
		"\"agent\",\"image\":\"sluice:dev\"}]}}},\"status\":{\"desiredNumberScheduled\":3,"
		"\"currentNumberScheduled\":3,\"numberReady\":2,\"updatedNumberScheduled\":3,"
		"\"numberAvailable\":2}}",
		NOW,
		"[\"agent\",3,3,2,3,2,\"kubernetes.io/os=linux\",\"2d\",\"agent\","
		"\"sluice:dev\",\"app=agent\"]");
	cells_are("DaemonSet", "{\"metadata\":{\"name\":\"d\"}}", NOW,
		  "[\"d\",0,0,0,0,0,\"<none>\",\"<unknown>\",\"\",\"\",\"<none>\"]");
}

TEST(odd_objects_never_crash)
{
	static const char *const kinds[] = {
		"Pod",	      "Service",       "Node",	    "EndpointSlice", "Endpoints",
		"Namespace",  "NetworkPolicy", "Event",	    "Lease",	     "ConfigMap",
		"Deployment", "ReplicaSet",    "DaemonSet", "Widget"};
	static const char *const odd[] = {
		"true ", /* sl_json_parse wants a delimiter after a bare scalar */
		"[]",
		"\"pod\"",
		"42 ",
		"{}",
		"{\"metadata\":5,\"spec\":[],\"status\":\"x\"}",
		"{\"metadata\":{\"name\":7,\"creationTimestamp\":[],\"deletionTimestamp\":3,"
		"\"labels\":[1]},\"spec\":{\"containers\":{},\"initContainers\":[1,null,\"x\"],"
		"\"ports\":[1,\"a\",null,{\"port\":\"80\",\"nodePort\":-1}],\"selector\":[],"
		"\"clusterIPs\":[5],\"externalIPs\":[null,7],\"type\":\"LoadBalancer\","
		"\"template\":{\"spec\":{\"containers\":[1,{\"name\":2}],\"nodeSelector\":"
		"{\"a\":null,\"b\":1}}},\"podSelector\":{\"matchLabels\":[]},\"readinessGates\":"
		"[null,{\"conditionType\":1}],\"replicas\":\"3\"},"
		"\"status\":{\"containerStatuses\":[null,1,{\"state\":[],\"lastState\":"
		"{\"terminated\":{\"finishedAt\":\"garbage\"}},\"restartCount\":\"x\"},{\"state\":"
		"{\"waiting\":null,\"terminated\":{\"signal\":\"9\"}}}],\"initContainerStatuses\":"
		"[{},{\"state\":{\"terminated\":{}}}],\"conditions\":{},\"podIPs\":[{}],"
		"\"loadBalancer\":{\"ingress\":[1,{\"ip\":5}]},\"addresses\":\"none\","
		"\"nodeInfo\":[]},\"subsets\":[null,{\"addresses\":[1,{}],\"ports\":[{}]},"
		"{\"addresses\":{}}],\"endpoints\":[1,{\"addresses\":[null,3]}],\"ports\":[null],"
		"\"series\":{\"lastObservedTime\":5},\"involvedObject\":{\"kind\":[]},"
		"\"data\":[],\"binaryData\":{\"x\":null},\"message\":\"   \"}",
	};

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct json_object *cols = table_columns(kinds[k]);

		for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
			struct json_object *obj = parse(odd[i]);
			struct json_object *cells = table_cells(kinds[k], obj, NOW);

			if (!ASSERT_NOT_NULL(cells, kinds[k]) ||
			    !ASSERT_EQ(json_object_array_length(cells),
				       json_object_array_length(cols), kinds[k]))
				(void)TEST_FAIL_AT("kind %s input %zu", kinds[k], i);
			json_object_put(cells);
			json_object_put(obj);
		}
		/* A NULL object is the same as an empty one. */
		struct json_object *cells = table_cells(kinds[k], NULL, NOW);

		ASSERT_NOT_NULL(cells, "NULL object");
		json_object_put(cells);
		json_object_put(cols);
	}
}

TEST(odd_objects_exact_cells)
{
	/* Wrong-typed fields read as absent, the way Go sees zero values. */
	cells_are("Pod",
		  "{\"metadata\":{\"name\":7},\"spec\":{\"containers\":{}},\"status\":{\"phase\":1,"
		  "\"containerStatuses\":[null,{\"ready\":\"yes\",\"restartCount\":\"3\",\"state\":"
		  "{\"running\":{}}}],\"podIPs\":[{}]}}",
		  NOW,
		  "[\"\",\"0/0\",\"\",\"0\",\"<unknown>\",\"<none>\",\"<none>\",\"<none>\","
		  "\"<none>\"]");
	cells_are("Service",
		  "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"type\":\"ClusterIP\",\"clusterIPs\":["
		  "5],"
		  "\"externalIPs\":[null,\"192.0.2.1\"],\"ports\":[{\"port\":\"80\",\"protocol\":"
		  "\"TCP\"}],\"selector\":{\"app\":7}}}",
		  NOW,
		  "[\"s\",\"ClusterIP\",\"\",\",192.0.2.1\",\"0/TCP\",\"<unknown>\",\"app=7\"]");
	cells_are("ConfigMap",
		  "{\"metadata\":{\"name\":\"c\"},\"data\":[1,2],\"binaryData\":"
		  "{\"x\":null}}",
		  NOW, "[\"c\",1,\"<unknown>\"]");
}
