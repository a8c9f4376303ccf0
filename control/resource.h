/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resources sluice-control serves: one static table drives routing,
 * discovery documents, store keys, field selectors and per-kind hooks.
 * Adding a resource means adding a row here (plus validation/defaulting/
 * table printing for its kind).
 */
#ifndef SLUICE_CONTROL_RESOURCE_H
#define SLUICE_CONTROL_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

struct api_resource {
	const char *group;    /* "" for the core group */
	const char *version;  /* "v1" */
	const char *plural;   /* path segment: "services" */
	const char *singular; /* "service" */
	const char *kind;     /* "Service" */
	bool namespaced;
	bool has_status;      /* serves <plural>/status */
	bool has_binding;     /* serves pods/binding */
	bool has_scale;	      /* serves <plural>/scale (autoscaling/v1 Scale) */
	bool spec_generation; /* metadata.generation tracks spec changes */
	const char *short_names[4];
	const char *categories[2];
	/* Field selector fields beyond metadata.name / metadata.namespace. */
	const char *fields[10];
};

extern const struct api_resource api_resources[];
extern const size_t api_resources_n;

/* Position of r in api_resources (indexes per-resource arrays). */
static inline size_t api_resource_index(const struct api_resource *r)
{
	return (size_t)(r - api_resources);
}

/* Lookup by group + version + plural (path form). NULL when unknown. */
const struct api_resource *api_resource_find(const char *group, const char *version,
					     const char *plural);
const struct api_resource *api_resource_by_kind(const char *group, const char *kind);

/* "v1" or "discovery.k8s.io/v1". Static storage. */
const char *api_resource_api_version(const struct api_resource *r);

/* Store key: "/<group|core>/<plural>/<ns>/<name>" or "/<group|core>/<plural>/<name>".
 * Writes into buf; returns -ENAMETOOLONG when it does not fit. */
int api_resource_key(const struct api_resource *r, const char *ns, const char *name, char *buf,
		     size_t buflen);
/* Prefix covering all objects of r (optionally one namespace). */
int api_resource_prefix(const struct api_resource *r, const char *ns, char *buf, size_t buflen);
/* Finds the resource a store key belongs to; *ns and *name point into key
 * (ns NULL for cluster-scoped). Writes NULs into a caller copy: pass a
 * modifiable key. NULL for keys that are not ours. */
const struct api_resource *api_resource_from_key(char *key, char **ns, char **name);

/*
 * Field value for field selectors; NULL when the resource does not support the
 * field. Returns "" for supported fields absent from the object. The pointer
 * borrows from obj.
 */
const char *api_resource_field(const struct api_resource *r, const struct json_object *obj,
			       const char *field);
/* NULL-terminated list of supported fields (including metadata.*). */
const char *const *api_resource_field_list(const struct api_resource *r);

#endif
