// SPDX-License-Identifier: Apache-2.0
/* The process-wide logger: level threshold, stderr or callback sink. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sluice/log.h"

enum sl_log_level sl_log_threshold = SL_LOG_INFO;

static sl_log_fn log_cb;
static void *log_cb_arg;
/* Serialises whole lines so threads never interleave inside one. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int sl_log_level_parse(const char *s, enum sl_log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (unsigned i = 0; i < 4; i++) {
		if (!strcasecmp(s, names[i])) {
			*out = (enum sl_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void sl_log_set_level(enum sl_log_level lvl)
{
	sl_log_threshold = lvl;
}

void sl_log_set_callback(sl_log_fn fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_cb = fn;
	log_cb_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void sl_log_emit(enum sl_log_level lvl, const char *subsys, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if (log_cb) {
		log_cb(lvl, subsys, msg, log_cb_arg);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: %s\n",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl < 4 ? lvl : 3], subsys,
			msg);
	}
	pthread_mutex_unlock(&log_lock);
}
