/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounds-checked byte cursor for every wire parse (DNS, netlink, HTTP framing).
 * A read past the end never touches memory: it sets `err`, returns zero, and
 * every later read fails too, so a parser can read a whole header and check
 * `err` once (NSD/Knot style).
 */
#ifndef SLUICE_CURSOR_H
#define SLUICE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sl_cursor {
	const uint8_t *base; /* start of the buffer (borrowed) */
	size_t len;	     /* total bytes in the buffer */
	size_t off;	     /* next byte to read */
	bool err;	     /* sticky: set by the first out-of-bounds read */
};

static inline void sl_cursor_init(struct sl_cursor *c, const void *buf, size_t len)
{
	c->base = buf;
	c->len = len;
	c->off = 0;
	c->err = false;
}

static inline size_t sl_cursor_left(const struct sl_cursor *c)
{
	return c->err ? 0 : c->len - c->off;
}

static inline bool sl_cursor_need(struct sl_cursor *c, size_t n)
{
	if (c->err || c->len - c->off < n) {
		c->err = true;
		return false;
	}
	return true;
}

static inline uint8_t sl_cursor_u8(struct sl_cursor *c)
{
	if (!sl_cursor_need(c, 1))
		return 0;
	return c->base[c->off++];
}

/* Network byte order. */
static inline uint16_t sl_cursor_be16(struct sl_cursor *c)
{
	if (!sl_cursor_need(c, 2))
		return 0;
	uint16_t v = (uint16_t)(c->base[c->off] << 8 | c->base[c->off + 1]);
	c->off += 2;
	return v;
}

static inline uint32_t sl_cursor_be32(struct sl_cursor *c)
{
	if (!sl_cursor_need(c, 4))
		return 0;
	const uint8_t *p = c->base + c->off;
	c->off += 4;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Copies n bytes into dst (which may be NULL to skip); false on overrun. */
static inline bool sl_cursor_bytes(struct sl_cursor *c, void *dst, size_t n)
{
	if (!sl_cursor_need(c, n))
		return false;
	if (dst)
		memcpy(dst, c->base + c->off, n);
	c->off += n;
	return true;
}

/* Moves to an absolute offset (compression pointers); false if out of range. */
static inline bool sl_cursor_seek(struct sl_cursor *c, size_t off)
{
	if (c->err || off > c->len) {
		c->err = true;
		return false;
	}
	c->off = off;
	return true;
}

#endif
