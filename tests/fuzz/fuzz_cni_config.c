// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for sluice-cni's network-config parser (cni_conf_parse), run for every
 * command so the GC list and VERSION paths are covered too. Any input must end in a parsed
 * config or an error object with a spec code; crashes, leaks and UB fail. The corpus in
 * tests/fuzz/corpus/cni_config/ replays in `make test`.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum cni_cmd cmds[] = {CNI_CMD_ADD, CNI_CMD_GC, CNI_CMD_VERSION};
	struct sl_buf out = SL_BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct cni_error e = {0};
		struct cni_conf *c = cni_conf_parse((const char *)data, size, cmds[i], &e);

		if (!c && (e.code <= 0 || !e.msg[0]))
			abort(); /* every refusal must say why */
		if (!c)
			cni_error_json(&e, NULL, &out);
		cni_conf_free(c);
	}
	sl_buf_fini(&out);
	return 0;
}
