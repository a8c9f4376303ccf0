// SPDX-License-Identifier: Apache-2.0
/* Collection of validation causes (Kubernetes StatusCause). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "causes.h"

void api_causes_add(struct api_causes *c, const char *reason, const char *field, const char *fmt,
		    ...)
{
	struct api_cause *cause;
	va_list ap;
	char *msg = NULL;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4;
		struct api_cause *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return;
		c->v = v;
		c->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	cause = &c->v[c->n];
	cause->reason = strdup(reason);
	cause->field = strdup(field ? field : "");
	cause->message = msg;
	if (!cause->reason || !cause->field || !cause->message) {
		free(cause->reason);
		free(cause->field);
		free(cause->message);
		return;
	}
	c->n++;
}

void api_causes_fini(struct api_causes *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].reason);
		free(c->v[i].field);
		free(c->v[i].message);
	}
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
}
