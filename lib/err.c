// SPDX-License-Identifier: Apache-2.0
/* sl_strerror: one decoder for errno values and Sluice's reserved range. */
#include <string.h>

#include "sluice/err.h"

static const char *const sl_err_msgs[] = {
	[SL_ERR_PARSE - SL_ERR_BASE] = "malformed input",
	[SL_ERR_INVALID - SL_ERR_BASE] = "invalid object",
	[SL_ERR_CONFLICT - SL_ERR_BASE] = "conflict: object was modified",
	[SL_ERR_EXISTS - SL_ERR_BASE] = "already exists",
	[SL_ERR_NOTFOUND - SL_ERR_BASE] = "not found",
	[SL_ERR_COMPACTED - SL_ERR_BASE] = "revision compacted",
	[SL_ERR_FUTURE - SL_ERR_BASE] = "revision is in the future",
	[SL_ERR_EXHAUSTED - SL_ERR_BASE] = "range exhausted",
	[SL_ERR_HTTP - SL_ERR_BASE] = "HTTP request failed",
};

const char *sl_strerror(int err)
{
	static __thread char buf[64];

	if (err < 0)
		err = -err;
	if (err > SL_ERR_BASE && err < SL_ERR_MAX && sl_err_msgs[err - SL_ERR_BASE])
		return sl_err_msgs[err - SL_ERR_BASE];
	/* GNU strerror_r returns a pointer that may or may not be buf. */
	return strerror_r(err, buf, sizeof(buf));
}
