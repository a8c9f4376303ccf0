/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes label selectors and field selectors.
 *
 * Label selectors come in two forms and compile to the same structure:
 *   - the string form used in URLs and kubectl:  a=b,c!=d,e in (x,y),f notin (z),g,!h
 *     (also "==" for equality; whitespace around tokens is allowed)
 *   - the LabelSelector JSON object:  {"matchLabels":{..},"matchExpressions":[
 *       {"key":..,"operator":"In|NotIn|Exists|DoesNotExist","values":[..]}]}
 * Semantics follow k8s.io/apimachinery/pkg/labels: all requirements AND'ed; an
 * empty selector matches everything; `!=` and `notin` match objects that lack
 * the key. Keys and values are checked with the Kubernetes label syntax rules
 * (qualified name / label value, 63 chars, optional DNS-1123 prefix up to 253).
 *
 * Field selectors: a=b,c!=d (also "=="), no set operators, values may be
 * empty. Matching is done against a caller-provided field getter, because
 * which fields exist depends on the resource (metadata.name, spec.nodeName,
 * status.phase, involvedObject.name, ...).
 *
 * All parse functions write a one-line human error into err (if non-NULL)
 * naming the offending token, and return NULL with errno = EINVAL.
 * Objects are immutable after parse and safe to share between threads.
 */
#ifndef SLUICE_SELECTOR_H
#define SLUICE_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

enum sl_sel_op {
	SL_SEL_EQ,	  /* key=value, key==value, matchLabels */
	SL_SEL_NEQ,	  /* key!=value */
	SL_SEL_IN,	  /* key in (a,b) */
	SL_SEL_NOTIN,	  /* key notin (a,b) */
	SL_SEL_EXISTS,	  /* key */
	SL_SEL_NOTEXISTS, /* !key */
	SL_SEL_GT,	  /* key>N: present and an int64 greater than N (node affinity Gt) */
	SL_SEL_LT,	  /* key<N: present and an int64 less than N (node affinity Lt) */
};

struct sl_sel_req {
	char *key;
	enum sl_sel_op op;
	char **values; /* sorted, deduplicated; empty for EXISTS/NOTEXISTS */
	size_t n_values;
};

struct sl_labelsel {
	struct sl_sel_req *reqs; /* sorted by key then op, for a canonical string form */
	size_t n_reqs;
	bool nothing; /* a selector that matches nothing (a null LabelSelector where
			 the API says "null selects nothing"); parse never sets it */
};

/* Labels being matched: a borrowed array of key/value pairs. */
struct sl_label {
	const char *key;
	const char *value;
};

/* String form. An empty or all-whitespace string is the match-all selector.
 * Grammar and quirks are upstream labels.Parse: "a in ()" and "a in (,)" are
 * the one-value set {""}, "a=" is the value "", "a>1"/"a<1" need an integer.
 * Errors read "at position N: <upstream message>" (N = byte offset). */
struct sl_labelsel *sl_labelsel_parse(const char *s, char *err, size_t errlen);
/*
 * JSON LabelSelector object. `path` is the field path used in error
 * messages (e.g. "spec.podSelector"). NULL obj = match everything.
 */
struct sl_labelsel *sl_labelsel_from_json(const struct json_object *obj, const char *path,
					  char *err, size_t errlen);
void sl_labelsel_free(struct sl_labelsel *sel);

bool sl_labelsel_empty(const struct sl_labelsel *sel);
bool sl_labelsel_match(const struct sl_labelsel *sel, const struct sl_label *labels, size_t n);
/* Matches against a JSON labels map ({"k":"v",...}); NULL map = no labels. */
bool sl_labelsel_match_json(const struct sl_labelsel *sel, const struct json_object *labels);
/* Canonical string form (the form kubectl prints); caller frees. */
char *sl_labelsel_string(const struct sl_labelsel *sel);

/*
 * Map form: {"k":"v",...} as in Service.spec.selector and matchLabels; every
 * pair becomes an SL_SEL_EQ requirement (upstream ValidatedSelectorFromSet).
 * NULL or {} gives the empty selector, which matches everything: callers whose
 * API says "empty selects nothing" (Service endpoints) check
 * sl_labelsel_empty() first. Keys and values are validated; errors name
 * `path`.
 */
struct sl_labelsel *sl_labelsel_from_set_json(const struct json_object *map, const char *path,
					      char *err, size_t errlen);
/* The selector that matches nothing (labels.Nothing()); caller frees. Like
 * upstream its string form is "", so it is the one selector that does not
 * survive a string round trip; send it as "no request" instead. */
struct sl_labelsel *sl_labelsel_nothing(void);
/* Structural equality (both are canonically sorted, so this is "same meaning
 * and same canonical string"). NULL equals only NULL. */
bool sl_labelsel_equal(const struct sl_labelsel *a, const struct sl_labelsel *b);

/* Label syntax checks (used by API validation too). Return NULL when valid or
 * a static message ("must be no more than 63 characters", ...). */
const char *sl_label_key_check(const char *key);
const char *sl_label_value_check(const char *value);

struct sl_fieldsel_req {
	char *field;
	char *value;
	bool negate; /* != */
};

struct sl_fieldsel {
	struct sl_fieldsel_req *reqs;
	size_t n_reqs;
};

/* Returns the value of a field for one object, or NULL if the object has no
 * such field (then the requirement compares against ""). */
typedef const char *(*sl_field_get_fn)(const char *field, void *arg);

struct sl_fieldsel *sl_fieldsel_parse(const char *s, char *err, size_t errlen);
void sl_fieldsel_free(struct sl_fieldsel *sel);
bool sl_fieldsel_match(const struct sl_fieldsel *sel, sl_field_get_fn get, void *arg);
/*
 * Checks every field named in sel against a NULL-terminated list of
 * supported fields; returns the first unsupported name or NULL. The API server
 * answers 400 'field label not supported: <name>' like kube-apiserver.
 */
const char *sl_fieldsel_unsupported(const struct sl_fieldsel *sel, const char *const *supported);
/*
 * Canonical string form: requirements sorted by field, "=" before "!=", then
 * value; values escaped like upstream fields.EscapeValue (\\ \, \=), so
 * sl_fieldsel_parse() of the result gives an equal selector. Caller frees;
 * NULL with errno = ENOMEM.
 */
char *sl_fieldsel_string(const struct sl_fieldsel *sel);
bool sl_fieldsel_equal(const struct sl_fieldsel *a, const struct sl_fieldsel *b);

#endif
