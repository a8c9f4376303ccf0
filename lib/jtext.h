/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to lib/: a pull scanner over JSON text that never builds a tree.
 * It exists for the one place where json-c's tree is the cost: the first LIST
 * of every Service and EndpointSlice, tens of MB at 10,000 Services, decoded
 * by the node agent on start (lib/k8s_text.c decodes straight into the typed
 * structs; lib/informer.c finds the list's items with it).
 *
 * The grammar is RFC 8259 as strictly as sl_json_parse() reads it (json-c
 * with JSON_TOKENER_STRICT): no comments, no trailing commas, no leading
 * zeros, nesting at most SL_JSON_MAX_DEPTH, no NUL byte anywhere. Like
 * json-c it takes raw control characters inside strings and bytes >= 0x80 as
 * they are (no UTF-8 check): an object the API server stored must read the
 * same here. A lone UTF-16 surrogate in a \u escape becomes U+FFFD.
 *
 * Errors: every function returns 0 or a negative error, -SL_ERR_PARSE for bad
 * text (with a message and the byte offset in j->err) or -ENOMEM.
 */
#ifndef SLUICE_JTEXT_H
#define SLUICE_JTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jt {
	const char *p;	  /* next byte */
	const char *end;  /* one past the last byte */
	const char *base; /* start of the text, for offsets in messages */
	unsigned depth;	  /* open objects and arrays */
	char err[128];	  /* what was wrong with the text, and where */
	char key[256];	  /* an escaped key, unescaped */
	/* Where jt_string's results are allocated: NULL = malloc (the caller
	 * frees them); otherwise alloc(alloc_ctx, n), which owns them. */
	void *(*alloc)(void *ctx, size_t n);
	void *alloc_ctx;
};

enum jt_type {
	JT_END = 0, /* no more input */
	JT_OBJECT,
	JT_ARRAY,
	JT_STRING,
	JT_NUMBER,
	JT_TRUE,
	JT_FALSE,
	JT_NULL,
	JT_BAD, /* a byte no value starts with */
};

void jt_init(struct jt *j, const char *text, size_t len);

/* The type of the value at the cursor (whitespace skipped), not consumed. */
enum jt_type jt_peek(struct jt *j);

/* Skips one whole value, checking its syntax. */
int jt_skip(struct jt *j);

/* Fails unless only whitespace is left. */
int jt_finish(struct jt *j);

/*
 * Objects: jt_obj_begin consumes '{'; then jt_obj_next returns 1 with the
 * next member's key (unescaped, NUL-terminated; valid until the next call)
 * and the cursor on its value, which the caller must consume, or 0 after the
 * closing '}'. The key points into the text when it has no escapes, else
 * into a buffer of the scanner's (keys longer than that are an error).
 */
int jt_obj_begin(struct jt *j);
int jt_obj_next(struct jt *j, const char **key, size_t *keylen);

/* Arrays: the same shape; jt_arr_next returns 1 with the cursor on an element. */
int jt_arr_begin(struct jt *j);
int jt_arr_next(struct jt *j);

/*
 * A string value, unescaped into a new allocation (*out, NUL-terminated,
 * *len bytes). *has_nul tells whether it contained \u0000, which a C string
 * cannot hold.
 */
int jt_string(struct jt *j, char **out, size_t *len, bool *has_nul);

/*
 * A number value. *is_int when it is written as an integer (no fraction, no
 * exponent); then *v holds it and *in_range is false when it does not fit an
 * int64_t.
 */
int jt_number(struct jt *j, bool *is_int, int64_t *v, bool *in_range);

/* true, false or null: consumes it. */
int jt_literal(struct jt *j, enum jt_type t);

#endif
