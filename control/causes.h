/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation findings, collected as Kubernetes StatusCauses so the API server
 * can answer 422 Invalid with details.causes naming each field, and the
 * message kubectl prints:
 *   Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be
 *   between 1 and 65535, inclusive
 */
#ifndef SLUICE_CONTROL_CAUSES_H
#define SLUICE_CONTROL_CAUSES_H

#include <stddef.h>

/* Kubernetes field.ErrorType reasons (k8s.io/apimachinery/pkg/util/validation/field). */
#define CAUSE_INVALID  "FieldValueInvalid"  /* "Invalid value: <v>: <detail>" */
#define CAUSE_REQUIRED "FieldValueRequired" /* "Required value" */
#define CAUSE_NOT_SUPPORTED \
	"FieldValueNotSupported" /* "Unsupported value: <v>: supported values: ..." */
#define CAUSE_DUPLICATE	    "FieldValueDuplicate" /* "Duplicate value: <v>" */
#define CAUSE_FORBIDDEN	    "FieldValueForbidden" /* "Forbidden: <detail>" */
#define CAUSE_TOO_LONG	    "FieldValueTooLong"	  /* "Too long: ..." */
#define CAUSE_UNKNOWN_FIELD "FieldValueUnknown"	  /* strict field validation */
#define CAUSE_TOO_MANY	    "FieldValueTooMany"	  /* "Too many: <n>: must have at most <m> items" */

struct api_cause {
	char *reason;  /* one of CAUSE_* */
	char *field;   /* JSON path: spec.ports[0].port */
	char *message; /* full message as kube-apiserver formats it, without the field */
};

struct api_causes {
	struct api_cause *v;
	size_t n, cap;
};

/* Appends a cause; message is printf-formatted. Allocation failures are
 * swallowed (the cause is dropped) because validation must not fail on OOM
 * paths differently from normal ones; callers check n. */
void api_causes_add(struct api_causes *c, const char *reason, const char *field, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));
void api_causes_fini(struct api_causes *c);

#endif
