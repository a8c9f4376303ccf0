// SPDX-License-Identifier: Apache-2.0
/* Growable byte buffer with a sticky out-of-memory flag. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"

static bool buf_reserve(struct sl_buf *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

bool sl_buf_reserve(struct sl_buf *b, size_t extra)
{
	return buf_reserve(b, extra);
}

void sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sl_buf_puts(struct sl_buf *b, const char *s)
{
	sl_buf_append(b, s, strlen(s));
}

void sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sl_buf_json_str(struct sl_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	sl_buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			sl_buf_append(b, "\\\"", 2);
			break;
		case '\\':
			sl_buf_append(b, "\\\\", 2);
			break;
		case '\n':
			sl_buf_append(b, "\\n", 2);
			break;
		case '\r':
			sl_buf_append(b, "\\r", 2);
			break;
		case '\t':
			sl_buf_append(b, "\\t", 2);
			break;
		default:
			if (*p < 0x20) {
				char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
				sl_buf_append(b, esc, 6);
			} else {
				sl_buf_append(b, p, 1);
			}
		}
	}
	sl_buf_append(b, "\"", 1);
}

const char *sl_buf_cstr(struct sl_buf *b)
{
	if (!buf_reserve(b, 0))
		return NULL;
	b->data[b->len] = '\0';
	return b->data;
}

char *sl_buf_steal(struct sl_buf *b, size_t *len)
{
	char *p;

	if (!sl_buf_cstr(b)) {
		sl_buf_fini(b);
		return NULL;
	}
	p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void sl_buf_reset(struct sl_buf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->data)
		b->data[0] = '\0';
}

void sl_buf_fini(struct sl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}
