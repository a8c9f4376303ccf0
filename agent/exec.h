/* SPDX-License-Identifier: Apache-2.0 */
/* Running a tool from the agent: one runner for the iptables, nftables and
 * IPVS dataplanes (agent/px_*.c). */
#ifndef SLUICE_AGENT_EXEC_H
#define SLUICE_AGENT_EXEC_H

#include <stddef.h>

#include "sluice/buf.h"

/*
 * Runs argv (PATH lookup, no shell) with in[0..in_len) on its stdin, collecting
 * stdout into out and stderr into err (either may be NULL: discarded). The
 * input is written while the output is read, so a tool that answers as it
 * reads cannot deadlock against us, and its early exit cannot SIGPIPE us.
 * Returns the exit status (0..255), 128 + signal, or -errno when it could not
 * run (-ENOENT: no such binary).
 */
int agent_exec(const char *const argv[], const char *in, size_t in_len, struct sl_buf *out,
	       struct sl_buf *err);

#endif
