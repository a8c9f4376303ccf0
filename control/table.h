/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Server-side printing (meta.k8s.io/v1 Table) so `kubectl get` shows the usual
 * columns. Column sets follow kubernetes pkg/printers/internalversion/
 * printers.go: Pod NAME READY STATUS RESTARTS AGE (+IP NODE NOMINATED NODE
 * READINESS GATES at priority 1); Service NAME TYPE CLUSTER-IP EXTERNAL-IP
 * PORT(S) AGE (+SELECTOR); Node NAME STATUS ROLES AGE VERSION (+wide);
 * EndpointSlice NAME ADDRESSTYPE PORTS ENDPOINTS AGE; Endpoints NAME ENDPOINTS
 * AGE; Namespace NAME STATUS AGE; NetworkPolicy NAME POD-SELECTOR AGE;
 * Event LAST SEEN TYPE REASON OBJECT MESSAGE; Lease NAME HOLDER AGE; ConfigMap
 * NAME DATA AGE. Unknown kinds get NAME AGE.
 *
 * The server wraps these into the Table object (metadata, rows[].object).
 */
#ifndef SLUICE_CONTROL_TABLE_H
#define SLUICE_CONTROL_TABLE_H

#include <time.h>

#include <json-c/json.h>

/* New JSON array of columnDefinitions ({name,type,format,description,priority}).
 * One column has format "name" (NAME; for Event it is a priority-1 column
 * after LAST SEEN, as upstream). Caller owns. */
struct json_object *table_columns(const char *kind);

/* New JSON array of cells for obj, matching table_columns(kind). `now` is the
 * wall clock used for AGE cells. Never fails on odd objects (missing fields
 * print as "<none>" as kubectl does); NULL only on ENOMEM. */
struct json_object *table_cells(const char *kind, const struct json_object *obj, time_t now);

/* kubectl's duration.HumanDuration: "45s", "5m10s", "3h", "2d5h", "400d". */
void table_human_duration(time_t seconds, char *out, size_t outlen);

#endif
