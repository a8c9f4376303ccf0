/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error convention: functions return 0 or a negative errno; pointer functions
 * return NULL with errno set. Sluice-specific failures use the reserved range
 * below (-4096 .. -4000) so they never collide with errno values, and one
 * sl_strerror() decodes both.
 */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

enum sl_err {
	SL_ERR_BASE = 4000,
	SL_ERR_PARSE = 4001,	 /* malformed input (JSON, selector, wire data) */
	SL_ERR_INVALID = 4002,	 /* well-formed but semantically invalid object */
	SL_ERR_CONFLICT = 4003,	 /* compare-and-swap lost (stale resourceVersion) */
	SL_ERR_EXISTS = 4004,	 /* create of a key that exists */
	SL_ERR_NOTFOUND = 4005,	 /* no such key/object */
	SL_ERR_COMPACTED = 4006, /* requested revision is older than retained history */
	SL_ERR_FUTURE = 4007,	 /* requested revision is newer than the store */
	SL_ERR_EXHAUSTED = 4008, /* allocator range full */
	SL_ERR_HTTP = 4009,	 /* HTTP-level failure talking to a server */
	SL_ERR_MAX = 4010,
};

/* Decodes -errno and -SL_ERR_*; never returns NULL. Thread-safe. */
const char *sl_strerror(int err);

#endif
