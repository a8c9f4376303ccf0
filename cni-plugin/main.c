// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-cni: the CNI plugin binary. A container runtime runs it with the CNI_* variables
 * set and the network config on stdin; it prints a result or the spec's error object on
 * stdout and exits 0 or 1. stderr carries free-form logs (level from SLUICE_CNI_LOG:
 * error|warn|info|debug, default warn). All the work is in libcni (cni.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni.h"
#include "sluice/log.h"

/* A network config is a few KiB; anything near this is not one. */
#define CNI_STDIN_MAX (1u << 20)

static const char *cni_main_getenv(const char *name)
{
	return getenv(name);
}

int main(void)
{
	struct sl_buf in = SL_BUF_INIT, out = SL_BUF_INIT;
	enum sl_log_level lvl = SL_LOG_WARN;
	const char *lv = getenv("SLUICE_CNI_LOG");
	const char *cmd = getenv("CNI_COMMAND");
	char chunk[8192];
	bool too_big = false;
	ssize_t n;
	int ret;

	signal(SIGPIPE, SIG_IGN);
	if (lv && sl_log_level_parse(lv, &lvl))
		lvl = SL_LOG_WARN;
	sl_log_set_level(lvl);

	/* VERSION probes may come with no stdin at all; a terminal stdin is not config. */
	if (!(cmd && !strcmp(cmd, "VERSION") && isatty(STDIN_FILENO))) {
		while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (in.len + (size_t)n > CNI_STDIN_MAX) {
				too_big = true;
				break;
			}
			sl_buf_append(&in, chunk, (size_t)n);
		}
	}
	if (too_big || in.oom) {
		fputs("{\"cniVersion\":\"1.1.0\",\"code\":6,\"msg\":\"decoding failure\","
		      "\"details\":\"network config on stdin is larger than 1 MiB\"}\n",
		      stdout);
		sl_buf_fini(&in);
		return 1;
	}
	ret = cni_plugin_run(cni_main_getenv, in.data ? in.data : "", in.len, &out);
	if (out.len)
		fwrite(out.data, 1, out.len, stdout);
	fflush(stdout);
	sl_buf_fini(&in);
	sl_buf_fini(&out);
	return ret ? 1 : 0;
}
