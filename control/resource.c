// SPDX-License-Identifier: Apache-2.0
/*
 * The static resource table and helpers around it (store keys, field
 * selector fields). Field selector support mirrors kube-apiserver's
 * GetAttrs/SelectableFields for each kind: clients such as kubectl describe
 * (events by involvedObject) and node agents (pods by spec.nodeName) rely on
 * exactly these names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "resource.h"
#include "sluice/json.h"

const struct api_resource api_resources[] = {
	{.group = "",
	 .version = "v1",
	 .plural = "namespaces",
	 .singular = "namespace",
	 .kind = "Namespace",
	 .namespaced = false,
	 .has_status = true,
	 .short_names = {"ns"},
	 .fields = {"status.phase"}},
	{.group = "",
	 .version = "v1",
	 .plural = "pods",
	 .singular = "pod",
	 .kind = "Pod",
	 .namespaced = true,
	 .has_status = true,
	 .has_binding = true,
	 .short_names = {"po"},
	 .categories = {"all"},
	 .fields = {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
		    "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
		    "status.nominatedNodeName"}},
	{.group = "",
	 .version = "v1",
	 .plural = "services",
	 .singular = "service",
	 .kind = "Service",
	 .namespaced = true,
	 .has_status = true,
	 .short_names = {"svc"},
	 .categories = {"all"},
	 .fields = {"spec.clusterIP", "spec.type"}},
	{.group = "",
	 .version = "v1",
	 .plural = "endpoints",
	 .singular = "endpoints",
	 .kind = "Endpoints",
	 .namespaced = true,
	 .short_names = {"ep"}},
	{.group = "",
	 .version = "v1",
	 .plural = "nodes",
	 .singular = "node",
	 .kind = "Node",
	 .namespaced = false,
	 .has_status = true,
	 .short_names = {"no"},
	 .fields = {"spec.unschedulable"}},
	{.group = "",
	 .version = "v1",
	 .plural = "events",
	 .singular = "event",
	 .kind = "Event",
	 .namespaced = true,
	 .short_names = {"ev"},
	 .fields = {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
		    "involvedObject.uid", "involvedObject.apiVersion",
		    "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
		    "source", "type"}},
	{.group = "",
	 .version = "v1",
	 .plural = "configmaps",
	 .singular = "configmap",
	 .kind = "ConfigMap",
	 .namespaced = true,
	 .short_names = {"cm"}},
	{.group = "discovery.k8s.io",
	 .version = "v1",
	 .plural = "endpointslices",
	 .singular = "endpointslice",
	 .kind = "EndpointSlice",
	 .namespaced = true,
	 .fields = {"addressType"}},
	{.group = "networking.k8s.io",
	 .version = "v1",
	 .plural = "networkpolicies",
	 .singular = "networkpolicy",
	 .kind = "NetworkPolicy",
	 .namespaced = true,
	 .spec_generation = true,
	 .short_names = {"netpol"}},
	{.group = "coordination.k8s.io",
	 .version = "v1",
	 .plural = "leases",
	 .singular = "lease",
	 .kind = "Lease",
	 .namespaced = true},
	{.group = "apps",
	 .version = "v1",
	 .plural = "deployments",
	 .singular = "deployment",
	 .kind = "Deployment",
	 .namespaced = true,
	 .has_status = true,
	 .has_scale = true,
	 .spec_generation = true,
	 .short_names = {"deploy"},
	 .categories = {"all"}},
	{.group = "apps",
	 .version = "v1",
	 .plural = "replicasets",
	 .singular = "replicaset",
	 .kind = "ReplicaSet",
	 .namespaced = true,
	 .has_status = true,
	 .has_scale = true,
	 .spec_generation = true,
	 .short_names = {"rs"},
	 .categories = {"all"}},
	{.group = "apps",
	 .version = "v1",
	 .plural = "daemonsets",
	 .singular = "daemonset",
	 .kind = "DaemonSet",
	 .namespaced = true,
	 .has_status = true,
	 .spec_generation = true,
	 .short_names = {"ds"},
	 .categories = {"all"}},
};
const size_t api_resources_n = sizeof(api_resources) / sizeof(api_resources[0]);

const struct api_resource *api_resource_find(const char *group, const char *version,
					     const char *plural)
{
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		if (!strcmp(r->group, group) && !strcmp(r->version, version) &&
		    !strcmp(r->plural, plural))
			return r;
	}
	return NULL;
}

const struct api_resource *api_resource_by_kind(const char *group, const char *kind)
{
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		if (!strcmp(r->group, group) && !strcmp(r->kind, kind))
			return r;
	}
	return NULL;
}

const char *api_resource_api_version(const struct api_resource *r)
{
	/* Built once per resource on first use; the table is static. */
	static char gv[32][64];
	unsigned i = (unsigned)(r - api_resources);

	if (i >= 32)
		return r->version;
	if (!gv[i][0]) {
		if (r->group[0])
			snprintf(gv[i], sizeof(gv[i]), "%s/%s", r->group, r->version);
		else
			snprintf(gv[i], sizeof(gv[i]), "%s", r->version);
	}
	return gv[i];
}

int api_resource_key(const struct api_resource *r, const char *ns, const char *name, char *buf,
		     size_t buflen)
{
	int n;

	if (r->namespaced)
		n = snprintf(buf, buflen, "/%s/%s/%s/%s", r->group[0] ? r->group : "core",
			     r->plural, ns, name);
	else
		n = snprintf(buf, buflen, "/%s/%s/%s", r->group[0] ? r->group : "core", r->plural,
			     name);
	return n < 0 || (size_t)n >= buflen ? -ENAMETOOLONG : 0;
}

int api_resource_prefix(const struct api_resource *r, const char *ns, char *buf, size_t buflen)
{
	int n;

	if (r->namespaced && ns)
		n = snprintf(buf, buflen, "/%s/%s/%s/", r->group[0] ? r->group : "core", r->plural,
			     ns);
	else
		n = snprintf(buf, buflen, "/%s/%s/", r->group[0] ? r->group : "core", r->plural);
	return n < 0 || (size_t)n >= buflen ? -ENAMETOOLONG : 0;
}

const struct api_resource *api_resource_from_key(char *key, char **ns, char **name)
{
	char *group, *plural, *a, *b, *save = NULL;

	if (key[0] != '/')
		return NULL;
	group = strtok_r(key + 1, "/", &save);
	plural = strtok_r(NULL, "/", &save);
	a = strtok_r(NULL, "/", &save);
	b = strtok_r(NULL, "/", &save);
	if (!group || !plural || !a)
		return NULL;
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		const char *g = r->group[0] ? r->group : "core";
		if (strcmp(g, group) || strcmp(r->plural, plural))
			continue;
		if (r->namespaced) {
			if (!b)
				return NULL;
			*ns = a;
			*name = b;
		} else {
			if (b)
				return NULL;
			*ns = NULL;
			*name = a;
		}
		return r;
	}
	return NULL;
}

/* Walks a dotted path of plain member names. */
static const char *field_by_path(const struct json_object *obj, const char *path)
{
	char buf[128];
	char *save = NULL, *tok;
	const struct json_object *cur = obj;

	if (strlen(path) >= sizeof(buf))
		return "";
	strcpy(buf, path);
	for (tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
		cur = sl_json_get(cur, tok);
	if (!cur)
		return "";
	switch (json_object_get_type(cur)) {
	case json_type_string:
		return json_object_get_string((struct json_object *)cur);
	case json_type_boolean:
		return json_object_get_boolean(cur) ? "true" : "false";
	case json_type_int:
	case json_type_double:
		/* json-c caches the text form inside the object. */
		return json_object_to_json_string((struct json_object *)cur);
	default:
		return "";
	}
}

const char *api_resource_field(const struct api_resource *r, const struct json_object *obj,
			       const char *field)
{
	if (!strcmp(field, "metadata.name") || !strcmp(field, "metadata.namespace"))
		return field_by_path(obj, field);
	for (size_t i = 0; i < sizeof(r->fields) / sizeof(r->fields[0]) && r->fields[i]; i++) {
		if (strcmp(r->fields[i], field))
			continue;
		/* Booleans absent from the object select as "false", like upstream. */
		if (!strcmp(field, "spec.unschedulable") || !strcmp(field, "spec.hostNetwork")) {
			const char *v = field_by_path(obj, field);
			return v[0] ? v : "false";
		}
		if (!strcmp(field, "source") && !strcmp(r->kind, "Event"))
			return field_by_path(obj, "source.component");
		return field_by_path(obj, field);
	}
	return NULL;
}

const char *const *api_resource_field_list(const struct api_resource *r)
{
	static const char *lists[32][13];
	unsigned i = (unsigned)(r - api_resources);

	if (i >= 32)
		return NULL;
	if (!lists[i][0]) {
		size_t n = 0;
		lists[i][n++] = "metadata.name";
		lists[i][n++] = "metadata.namespace";
		for (size_t j = 0; j < 10 && r->fields[j]; j++)
			lists[i][n++] = r->fields[j];
		lists[i][n] = NULL;
	}
	return lists[i];
}
