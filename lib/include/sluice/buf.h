/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable byte buffer used to build HTTP bodies, JSON and text output.
 * On allocation failure the buffer goes into a sticky error state (`oom`);
 * callers check once at the end instead of after every append.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct sl_buf {
	char *data; /* NUL-terminated when len > 0 or after sl_buf_cstr() */
	size_t len; /* bytes used, excluding the terminator */
	size_t cap; /* bytes allocated */
	bool oom;   /* sticky allocation failure */
};

#define SL_BUF_INIT               \
	{                         \
		NULL, 0, 0, false \
	}

/* Makes room for extra more bytes (and the NUL) at once; false (and oom) on failure. */
bool sl_buf_reserve(struct sl_buf *b, size_t extra);

void sl_buf_append(struct sl_buf *b, const void *p, size_t n);
void sl_buf_puts(struct sl_buf *b, const char *s);
void sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
void sl_buf_json_str(struct sl_buf *b, const char *s);
/* Returns the contents as a C string (never NULL unless oom). */
const char *sl_buf_cstr(struct sl_buf *b);
/* Hands the allocation to the caller (free() it); the buffer is reset. */
char *sl_buf_steal(struct sl_buf *b, size_t *len);
void sl_buf_reset(struct sl_buf *b);
void sl_buf_fini(struct sl_buf *b);

#endif
