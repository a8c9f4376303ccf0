/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One logger for every Sluice process. Messages go to stderr (or a callback)
 * as "<time> <level> <subsystem>: <message>". The level is checked before the
 * arguments are evaluated, so debug logging on hot paths costs one compare.
 * Messages read `<subsystem> '<object>': <action> failed: <error>`.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum sl_log_level {
	SL_LOG_ERROR = 0,
	SL_LOG_WARN = 1,
	SL_LOG_INFO = 2,
	SL_LOG_DEBUG = 3,
};

/* Current threshold; messages above it are skipped. Read racily on purpose. */
extern enum sl_log_level sl_log_threshold;

/* Parse "error|warn|info|debug"; returns 0 or -EINVAL. */
int sl_log_level_parse(const char *s, enum sl_log_level *out);
void sl_log_set_level(enum sl_log_level lvl);

/* Redirect output (tests capture it); NULL restores stderr. */
typedef void (*sl_log_fn)(enum sl_log_level lvl, const char *subsys, const char *msg, void *arg);
void sl_log_set_callback(sl_log_fn fn, void *arg);

void sl_log_emit(enum sl_log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define sl_log(lvl, subsys, ...)                                   \
	do {                                                       \
		if ((lvl) <= sl_log_threshold)                     \
			sl_log_emit((lvl), (subsys), __VA_ARGS__); \
	} while (0)

#define pr_err(subsys, ...)   sl_log(SL_LOG_ERROR, subsys, __VA_ARGS__)
#define pr_warn(subsys, ...)  sl_log(SL_LOG_WARN, subsys, __VA_ARGS__)
#define pr_info(subsys, ...)  sl_log(SL_LOG_INFO, subsys, __VA_ARGS__)
#define pr_debug(subsys, ...) sl_log(SL_LOG_DEBUG, subsys, __VA_ARGS__)

#endif
