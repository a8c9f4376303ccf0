// SPDX-License-Identifier: Apache-2.0
/*
 * Discovery documents (/api, /apis, group versions, /version) generated from
 * the resource table, and assembly of meta.k8s.io/v1 Tables (the per-kind
 * columns come from table.c).
 *
 * Legacy discovery only: kubectl asks for aggregated discovery with a
 * content-negotiated Accept and falls back when the reply is a plain
 * APIGroupList. No OpenAPI document is served, so kubectl's client-side
 * validation needs --validate=false (kubectl 1.20 always needs it for
 * servers without a protobuf OpenAPI v2 document).
 */
#include <stdio.h>
#include <string.h>

#include "server.h"
#include "sluice/json.h"
#include "table.h"

#define SLUICE_K8S_MINOR "31"

static struct json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static struct json_object *resource_entry(const struct api_resource *r, const char *name,
					  const char *kind, const char *const *verbs)
{
	struct json_object *e = json_object_new_object(), *v = json_object_new_array();

	json_object_object_add(e, "name", jstr(name));
	json_object_object_add(e, "singularName", jstr(strchr(name, '/') ? "" : r->singular));
	json_object_object_add(e, "namespaced", json_object_new_boolean(r->namespaced));
	json_object_object_add(e, "kind", jstr(kind));
	for (size_t i = 0; verbs[i]; i++)
		json_object_array_add(v, jstr(verbs[i]));
	json_object_object_add(e, "verbs", v);
	if (!strchr(name, '/')) {
		struct json_object *sn = json_object_new_array(), *cat;
		for (size_t i = 0; i < 4 && r->short_names[i]; i++)
			json_object_array_add(sn, jstr(r->short_names[i]));
		if (json_object_array_length(sn))
			json_object_object_add(e, "shortNames", sn);
		else
			json_object_put(sn);
		if (r->categories[0]) {
			cat = json_object_new_array();
			json_object_array_add(cat, jstr(r->categories[0]));
			json_object_object_add(e, "categories", cat);
		}
	}
	return e;
}

static struct json_object *resource_list(const char *group, const char *version)
{
	static const char *const all[] = {"create", "delete", "deletecollection",
					  "get",    "list",   "patch",
					  "update", "watch",  NULL};
	static const char *const ns_verbs[] = {"create", "delete", "get",   "list",
					       "patch",	 "update", "watch", NULL};
	static const char *const status[] = {"get", "patch", "update", NULL};
	static const char *const create[] = {"create", NULL};
	struct json_object *doc = json_object_new_object(), *arr = json_object_new_array();
	char gv[96];

	snprintf(gv, sizeof(gv), "%s%s%s", group, group[0] ? "/" : "", version);
	json_object_object_add(doc, "kind", jstr("APIResourceList"));
	json_object_object_add(doc, "apiVersion", jstr("v1"));
	json_object_object_add(doc, "groupVersion", jstr(gv));
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		char sub[96];
		if (strcmp(r->group, group) || strcmp(r->version, version))
			continue;
		json_object_array_add(
			arr, resource_entry(r, r->plural, r->kind,
					    strcmp(r->kind, "Namespace") ? all : ns_verbs));
		if (r->has_status) {
			snprintf(sub, sizeof(sub), "%s/status", r->plural);
			json_object_array_add(arr, resource_entry(r, sub, r->kind, status));
		}
		if (r->has_binding) {
			snprintf(sub, sizeof(sub), "%s/binding", r->plural);
			json_object_array_add(arr, resource_entry(r, sub, "Binding", create));
		}
		if (r->has_scale) {
			/* client-go's scale client reads the Scale's group and
			 * version from here (autoscaling/v1, as kube serves). */
			struct json_object *e;
			snprintf(sub, sizeof(sub), "%s/scale", r->plural);
			e = resource_entry(r, sub, "Scale", status);
			json_object_object_add(e, "group", jstr("autoscaling"));
			json_object_object_add(e, "version", jstr("v1"));
			json_object_array_add(arr, e);
		}
	}
	json_object_object_add(doc, "resources", arr);
	return doc;
}

static bool group_known(const char *group, const char *version)
{
	for (size_t i = 0; i < api_resources_n; i++)
		if (!strcmp(api_resources[i].group, group) &&
		    (!version || !strcmp(api_resources[i].version, version)))
			return true;
	return false;
}

static struct json_object *group_doc(const char *group)
{
	struct json_object *g = json_object_new_object(), *vers = json_object_new_array();
	struct json_object *pref = NULL;
	char gv[96];

	json_object_object_add(g, "name", jstr(group));
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		struct json_object *v;
		bool dup = false;
		if (strcmp(r->group, group))
			continue;
		for (size_t j = 0; j < i; j++)
			dup |= !strcmp(api_resources[j].group, group) &&
			       !strcmp(api_resources[j].version, r->version);
		if (dup)
			continue;
		snprintf(gv, sizeof(gv), "%s/%s", group, r->version);
		v = json_object_new_object();
		json_object_object_add(v, "groupVersion", jstr(gv));
		json_object_object_add(v, "version", jstr(r->version));
		if (!pref)
			pref = sl_json_clone(v);
		json_object_array_add(vers, v);
	}
	json_object_object_add(g, "versions", vers);
	if (pref)
		json_object_object_add(g, "preferredVersion", pref);
	return g;
}

bool discovery_handle(struct api_req *ar, const char *path)
{
	char buf[256];
	char g[128], v[64];
	struct json_object *doc;

	if (!strcmp(path, "/version") || !strcmp(path, "/version/")) {
		doc = json_object_new_object();
		json_object_object_add(doc, "major", jstr("1"));
		json_object_object_add(doc, "minor", jstr(SLUICE_K8S_MINOR));
		json_object_object_add(doc, "gitVersion", jstr("v1." SLUICE_K8S_MINOR ".0-sluice"));
		json_object_object_add(doc, "gitCommit", jstr(""));
		json_object_object_add(doc, "gitTreeState", jstr("clean"));
		json_object_object_add(doc, "buildDate", jstr(__DATE__ " " __TIME__));
		json_object_object_add(doc, "goVersion", jstr("none (C)"));
		json_object_object_add(doc, "compiler", jstr("gcc"));
		json_object_object_add(doc, "platform", jstr("linux/amd64"));
		api_reply_obj(ar, 200, doc);
		return true;
	}
	if (!strcmp(path, "/api") || !strcmp(path, "/api/")) {
		struct json_object *vers = json_object_new_array(),
				   *addrs = json_object_new_array();
		struct json_object *a = json_object_new_object();
		doc = json_object_new_object();
		json_object_object_add(doc, "kind", jstr("APIVersions"));
		json_object_array_add(vers, jstr("v1"));
		json_object_object_add(doc, "versions", vers);
		json_object_object_add(a, "clientCIDR", jstr("0.0.0.0/0"));
		snprintf(buf, sizeof(buf), "%s", ar->srv->cfg.listen);
		json_object_object_add(a, "serverAddress", jstr(buf));
		json_object_array_add(addrs, a);
		json_object_object_add(doc, "serverAddressByClientCIDRs", addrs);
		api_reply_obj(ar, 200, doc);
		return true;
	}
	if (!strcmp(path, "/api/v1") || !strcmp(path, "/api/v1/")) {
		api_reply_obj(ar, 200, resource_list("", "v1"));
		return true;
	}
	if (!strcmp(path, "/apis") || !strcmp(path, "/apis/")) {
		struct json_object *groups = json_object_new_array();
		doc = json_object_new_object();
		json_object_object_add(doc, "kind", jstr("APIGroupList"));
		json_object_object_add(doc, "apiVersion", jstr("v1"));
		for (size_t i = 0; i < api_resources_n; i++) {
			const char *grp = api_resources[i].group;
			bool dup = !grp[0];
			for (size_t j = 0; j < i && !dup; j++)
				dup = !strcmp(api_resources[j].group, grp);
			if (!dup)
				json_object_array_add(groups, group_doc(grp));
		}
		json_object_object_add(doc, "groups", groups);
		api_reply_obj(ar, 200, doc);
		return true;
	}
	if (sscanf(path, "/apis/%127[^/]/%63[^/]", g, v) == 2) {
		size_t want = strlen("/apis/") + strlen(g) + 1 + strlen(v);
		if ((strlen(path) == want || (strlen(path) == want + 1 && path[want] == '/')) &&
		    group_known(g, v)) {
			api_reply_obj(ar, 200, resource_list(g, v));
			return true;
		}
		return false;
	}
	if (sscanf(path, "/apis/%127[^/]", g) == 1 && strlen(path) <= strlen(g) + 7 &&
	    group_known(g, NULL)) {
		doc = group_doc(g);
		json_object_object_add(doc, "kind", jstr("APIGroup"));
		json_object_object_add(doc, "apiVersion", jstr("v1"));
		api_reply_obj(ar, 200, doc);
		return true;
	}
	return false;
}

struct json_object *table_build(struct api_req *ar, struct cache_obj **objs, size_t n,
				const char *rv, const char *cont)
{
	const char *kind = ar->res ? ar->res->kind : "";
	struct json_object *t = json_object_new_object(), *meta = json_object_new_object();
	struct json_object *rows = json_object_new_array();
	time_t now = time(NULL);

	if (!t || !meta || !rows) {
		json_object_put(t);
		json_object_put(meta);
		json_object_put(rows);
		return NULL;
	}
	json_object_object_add(t, "kind", jstr("Table"));
	json_object_object_add(t, "apiVersion", jstr("meta.k8s.io/v1"));
	if (rv)
		json_object_object_add(meta, "resourceVersion", jstr(rv));
	if (cont)
		json_object_object_add(meta, "continue", jstr(cont));
	json_object_object_add(t, "metadata", meta);
	json_object_object_add(t, "columnDefinitions", table_columns(kind));
	for (size_t i = 0; i < n; i++) {
		struct json_object *obj = sl_json_parse(objs[i]->json, objs[i]->len, NULL, 0);
		struct json_object *row = json_object_new_object();
		if (!obj || !row) {
			json_object_put(obj);
			json_object_put(row);
			continue;
		}
		json_object_object_add(row, "cells", table_cells(kind, obj, now));
		if (ar->include_object) {
			json_object_object_add(row, "object", obj);
			obj = NULL;
		} else if (!ar->include_none) {
			struct json_object *pm = json_object_new_object();
			struct json_object *m = sl_json_get(obj, "metadata");
			json_object_object_add(pm, "kind", jstr("PartialObjectMetadata"));
			json_object_object_add(pm, "apiVersion", jstr("meta.k8s.io/v1"));
			json_object_object_add(pm, "metadata",
					       m ? json_object_get(m) : json_object_new_object());
			json_object_object_add(row, "object", pm);
		}
		json_object_put(obj);
		json_object_array_add(rows, row);
	}
	json_object_object_add(t, "rows", rows);
	return t;
}
