// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl: operator view of a node's eBPF load-balancing state, read from
 * the maps the agent pinned (cilium-dbg style). Parses flags, opens the pin
 * root through agent/inspect.h, prints one list as a table or JSON.
 *
 *   sluicectl [--bpffs DIR] [--node NAME] [-o text|json] service list
 *   sluicectl ... backend list | conntrack list | counters
 *   sluicectl flows [...]   NetworkPolicy decisions (agent/flows.h)
 *   sluicectl lab up|down|status|exec|kubeconfig|add-node ...   (tools/lab/lab.sh)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/err.h"
#include "sluice/log.h"

#include "agent/flows.h"
#include "agent/inspect.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluicectl [flags] service list | backend list | conntrack list | counters\n"
		"       sluicectl flows [--verdict allow|deny] [--count N] ...  (flows --help)\n"
		"       sluicectl lab up|down|status|exec|kubeconfig|add-node [--name L] ... (lab "
		"--help)\n"
		"\n"
		"Shows the eBPF service load-balancing state a node's sluice-agent pinned.\n"
		"\n"
		"  service list     frontends (ID, address:port/protocol, scope, type) and their\n"
		"                   backends in slot order with their states\n"
		"  backend list     backends (ID, address:port/protocol, state, local/remote)\n"
		"  conntrack list   flows tracked by the tc NodePort path (if it is loaded)\n"
		"  counters         per-reason counters of the socket LB and the NodePort path\n"
		"\n"
		"  --bpffs DIR         bpf filesystem the agent pins under (default /sys/fs/bpf)\n"
		"  --node NAME         node (the agent's --node-name); default: the only node "
		"pinned\n"
		"  -o, --output FMT    text (default) or json\n"
		"  --log-level LEVEL   error|warn|info|debug (default warn)\n");
}

/*
 * `sluicectl lab ...` is the lab orchestration script (tools/lab/lab.sh): it
 * drives ip, mount and the daemons, which is shell's job. Found through
 * $SLUICE_LAB_SCRIPT, else relative to this binary: build[/X]/bin/sluicectl in
 * a source tree, or PREFIX/bin with PREFIX/libexec/sluice/lab.sh. The binaries
 * the lab runs are the ones next to sluicectl unless $SLUICE_LAB_BIN says.
 */
static int lab_exec(int argc, char **argv)
{
	static const char *const rel[] = {
		"../../tools/lab/lab.sh",
		"../../../tools/lab/lab.sh",
		"../libexec/sluice/lab.sh",
	};
	const char *script = getenv("SLUICE_LAB_SCRIPT");
	char exe[4096], path[4096 + 64], **args;
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		fprintf(stderr, "sluicectl lab: /proc/self/exe: %s; set SLUICE_LAB_SCRIPT\n",
			strerror(errno));
		return 1;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (!getenv("SLUICE_LAB_BIN"))
		setenv("SLUICE_LAB_BIN", exe, 1);
	for (size_t i = 0; !script && i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", exe, rel[i]);
		if (!access(path, R_OK))
			script = path;
	}
	if (!script) {
		fprintf(stderr,
			"sluicectl lab: tools/lab/lab.sh not found relative to %s (tried %s, %s, "
			"%s); set SLUICE_LAB_SCRIPT\n",
			exe, rel[0], rel[1], rel[2]);
		return 1;
	}
	args = calloc((size_t)argc + 3, sizeof(*args));
	if (!args) {
		fprintf(stderr, "sluicectl lab: out of memory\n");
		return 1;
	}
	args[0] = "bash";
	args[1] = (char *)script;
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];
	execvp("bash", args);
	fprintf(stderr, "sluicectl lab: exec bash %s failed: %s\n", script, strerror(errno));
	free(args);
	return 1;
}

enum cmd {
	CMD_SERVICE,
	CMD_BACKEND,
	CMD_CONNTRACK,
	CMD_COUNTERS,
};

static int parse_cmd(int argc, char **argv, enum cmd *cmd)
{
	static const struct {
		const char *obj, *verb;
		enum cmd cmd;
	} cmds[] = {
		{"service", "list", CMD_SERVICE},
		{"backend", "list", CMD_BACKEND},
		{"conntrack", "list", CMD_CONNTRACK},
		{"counters", NULL, CMD_COUNTERS},
	};

	if (argc < 1) {
		fprintf(stderr, "sluicectl: missing command: service list, backend list, conntrack "
				"list or counters (see --help)\n");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		size_t want = cmds[i].verb ? 2 : 1;

		if (strcmp(argv[0], cmds[i].obj) != 0)
			continue;
		/* "service" alone means "service list", like cilium-dbg. */
		if ((size_t)argc > want ||
		    (argc == 2 && strcmp(argv[1], cmds[i].verb ? cmds[i].verb : "") != 0)) {
			fprintf(stderr, "sluicectl: '%s': unexpected '%s' (accepted: %s%s%s)\n",
				argv[0], argv[argc > 1 ? 1 : 0], argv[0], cmds[i].verb ? " " : "",
				cmds[i].verb ? cmds[i].verb : "");
			return -EINVAL;
		}
		*cmd = cmds[i].cmd;
		return 0;
	}
	fprintf(stderr,
		"sluicectl: unknown command '%s': accepted are service list, backend list, "
		"conntrack list, counters\n",
		argv[0]);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bpffs", required_argument, NULL, 'b'},
		{"node", required_argument, NULL, 'n'},
		{"output", required_argument, NULL, 'o'},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum insp_fmt fmt = INSP_FMT_TEXT;
	const char *bpffs = NULL, *node = NULL;
	struct insp_out out;
	enum sl_log_level lvl;
	struct insp *in;
	bool absent = false;
	enum cmd cmd;
	int c, err;

	sl_log_set_level(SL_LOG_WARN);
	if (argc > 1 && !strcmp(argv[1], "lab"))
		return lab_exec(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "flows"))
		return flows_main(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bpffs = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json")) {
				fmt = INSP_FMT_JSON;
			} else if (!strcmp(optarg, "text")) {
				fmt = INSP_FMT_TEXT;
			} else {
				fprintf(stderr,
					"sluicectl: -o '%s': accepted values are text, json\n",
					optarg);
				return 2;
			}
			break;
		case 'L':
			if (sl_log_level_parse(optarg, &lvl)) {
				fprintf(stderr,
					"sluicectl: --log-level '%s': accepted values are error, "
					"warn, info, debug\n",
					optarg);
				return 2;
			}
			sl_log_set_level(lvl);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (parse_cmd(argc - optind, argv + optind, &cmd))
		return 2;
	in = insp_open(bpffs, node);
	if (!in)
		return 1;
	insp_out_init(&out, fmt);
	switch (cmd) {
	case CMD_SERVICE:
		err = insp_service_list(in, &out);
		break;
	case CMD_BACKEND:
		err = insp_backend_list(in, &out);
		break;
	case CMD_CONNTRACK:
		err = insp_conntrack_list(in, &out, &absent);
		if (!err && absent && fmt == INSP_FMT_JSON)
			fprintf(stderr,
				"sluicectl: no conntrack maps under %s: the tc NodePort path is "
				"not "
				"loaded on this node\n",
				insp_root(in));
		break;
	case CMD_COUNTERS:
	default:
		err = insp_counters(in, &out);
		break;
	}
	if (!err && out.buf.oom)
		err = -ENOMEM;
	if (!err)
		fwrite(out.buf.data ? out.buf.data : "", 1, out.buf.len, stdout);
	else
		fprintf(stderr, "sluicectl: %s\n", sl_strerror(err));
	insp_out_fini(&out);
	insp_close(in);
	return err ? 1 : 0;
}
