// SPDX-License-Identifier: Apache-2.0
/* Masquerade of traffic leaving the cluster (masq.h) with nftables. */
#include <arpa/inet.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cni.h"
#include "masq.h"
#include "sluice/log.h"

#define ML "masq"

extern char **environ;

static bool cidr_ok(const char *c)
{
	uint32_t net;
	int prefix;

	return c && !cni_cidr_parse(c, &net, &prefix) && prefix >= 1 && prefix <= 32;
}

static bool ip_ok(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1;
}

int masq_render(const char *own_cidr, const struct node_peer *peers, size_t n, struct sl_buf *out)
{
	if (!cidr_ok(own_cidr))
		return -EINVAL;
	/* add + delete + define: one transaction that replaces whatever was there. */
	sl_buf_printf(out,
		      "add table ip %s\ndelete table ip %s\ntable ip %s {\n"
		      "\tset cluster {\n\t\ttype ipv4_addr\n\t\tflags interval\n"
		      "\t\telements = { %s",
		      MASQ_TABLE, MASQ_TABLE, MASQ_TABLE, own_cidr);
	for (size_t i = 0; i < n; i++) {
		if (cidr_ok(peers[i].pod_cidr) && strcmp(peers[i].pod_cidr, own_cidr))
			sl_buf_printf(out, ", %s", peers[i].pod_cidr);
		if (ip_ok(peers[i].ip))
			sl_buf_printf(out, ", %s", peers[i].ip);
	}
	sl_buf_printf(out,
		      " }\n\t}\n\tchain post {\n"
		      "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		      "\t\tip saddr %s ip daddr != @cluster masquerade\n\t}\n}\n",
		      own_cidr);
	return out->oom ? -ENOMEM : 0;
}

/* Runs `nft -f -` with script on stdin. */
static int nft_run(const char *script, size_t len)
{
	char *argv[] = {"nft", "-f", "-", NULL};
	posix_spawn_file_actions_t fa;
	int pfd[2], st = 0, err = 0;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
	posix_spawn_file_actions_addclose(&fa, pfd[1]);
	err = posix_spawnp(&pid, "nft", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[0]);
	if (err) {
		close(pfd[1]);
		return -err;
	}
	if (write(pfd[1], script, len) != (ssize_t)len)
		err = -EIO;
	close(pfd[1]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!err && (!WIFEXITED(st) || WEXITSTATUS(st)))
		err = -EPROTO;
	return err;
}

int masq_sync(const char *own_cidr, const struct node_peer *peers, size_t n, char **applied)
{
	struct sl_buf b = SL_BUF_INIT;
	int err = masq_render(own_cidr, peers, n, &b);

	if (err == -EINVAL)
		return 0; /* no podCIDR yet: no pods to masquerade */
	if (!err && (!*applied || strcmp(*applied, b.data))) {
		err = nft_run(b.data, b.len);
		if (err) {
			pr_warn(ML,
				"nft table ip %s: applying failed (%s): pods' traffic leaving "
				"the cluster keeps pod addresses",
				MASQ_TABLE,
				err == -EPROTO ? "nft refused the script" : strerror(-err));
		} else {
			free(*applied);
			*applied = strdup(b.data);
			pr_info(ML, "traffic from %s leaving the cluster is masqueraded", own_cidr);
		}
	}
	sl_buf_fini(&b);
	return err;
}

void masq_remove(void)
{
	static const char s[] = "add table ip " MASQ_TABLE "\ndelete table ip " MASQ_TABLE "\n";

	nft_run(s, sizeof(s) - 1);
}
