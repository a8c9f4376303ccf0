/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The three patch formats the Kubernetes API accepts, on json-c trees.
 *
 *  - JSON merge patch (RFC 7386): application/merge-patch+json
 *  - JSON patch (RFC 6902, with RFC 6901 pointers): application/json-patch+json
 *  - Strategic merge patch, the subset kubectl sends for built-in kinds:
 *    application/strategic-merge-patch+json. Lists with a merge key are merged
 *    element-wise by that key; other lists are replaced; `null` deletes a map
 *    key; directives `$patch: replace|delete|merge`, `$retainKeys`,
 *    `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` are honoured.
 *    Merge keys come from a schema callback so the table of known list fields
 *    (containers→name, ports→containerPort or port, ...) lives with the
 *    resource definitions, not here.
 *
 * Every function returns a NEW document (caller owns it) and never modifies
 * `doc` or `patch`. On failure it returns NULL, sets errno (EINVAL for a bad
 * patch, ENOMEM) and writes a one-line reason into err naming the problem
 * ("op 2 (remove): path /spec/x does not exist").
 *
 * Additions: err may be NULL. The inputs are only read (no references taken,
 * nothing cached in them), so concurrent patches of one shared, unchanging
 * document are safe; the result shares nothing with the inputs. Results never
 * nest deeper than SL_JSON_MAX_DEPTH, so they parse back from storage. JSON
 * patch ops are numbered from 0 in messages; `copy` may create at most 2^18
 * values per patch. Strategic merge details and the deliberate differences
 * from upstream are described at the top of lib/patch.c.
 */
#ifndef SLUICE_PATCH_H
#define SLUICE_PATCH_H

#include <stddef.h>

#include <json-c/json.h>

struct json_object *sl_patch_merge(const struct json_object *doc, const struct json_object *patch,
				   char *err, size_t errlen);

/*
 * The functions above return NULL for failure, so a patch whose result is the
 * JSON value null (RFC 7386: any document + `null`; RFC 6902: replace "" with
 * null) fails there with EINVAL ("result is null"): null is never a storable
 * object. The _ex variants return 0 or a negative errno and store the result
 * in *out, where NULL means the JSON value null (json-c's representation).
 * `doc` may be NULL (the JSON null document) everywhere.
 */
int sl_patch_merge_ex(const struct json_object *doc, const struct json_object *patch,
		      struct json_object **out, char *err, size_t errlen);

/* `patch` must be a JSON array of operations (add, remove, replace, move, copy, test). */
struct json_object *sl_patch_json(const struct json_object *doc, const struct json_object *patch,
				  char *err, size_t errlen);
int sl_patch_json_ex(const struct json_object *doc, const struct json_object *patch,
		     struct json_object **out, char *err, size_t errlen);

/*
 * Strategic merge schema: given the JSON path of a list field (member names
 * joined with '.', list indices omitted, e.g. "spec.template.spec.containers"),
 * return its merge key ("name") or NULL when the list is atomic (replaced).
 * A NULL callback treats every list as atomic (= merge patch semantics for lists).
 */
typedef const char *(*sl_smp_merge_key_fn)(const char *path, void *arg);

/*
 * Addition: a merge key function may return SL_SMP_SET_MERGE ("") for a list
 * of primitives with patch strategy "merge" (metadata.finalizers,
 * spec.podCIDRs): the result is the set union, original order first, then new
 * values in patch order, duplicates dropped.
 */
#define SL_SMP_SET_MERGE ""

struct json_object *sl_patch_strategic(const struct json_object *doc,
				       const struct json_object *patch, sl_smp_merge_key_fn keyfn,
				       void *arg, char *err, size_t errlen);

/* Merge keys of the built-in kinds Sluice serves (Pod, Service, Deployment,
 * ReplicaSet, DaemonSet templates, EndpointSlice, NetworkPolicy, ...): path → key.
 * Usable directly as an sl_smp_merge_key_fn. */
const char *sl_smp_builtin_merge_key(const char *path, void *arg);

#endif
