// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the watch-stream decoder (lib/client.c) with arbitrary bytes cut
 * into arbitrary chunks, the way libcurl hands a stream over. The first byte
 * picks the chunk size; a small line limit makes the over-long-line path
 * reachable. The callback reads the fields a real consumer reads.
 */
#include <stdint.h>
#include <string.h>

#include "sluice/client.h"
#include "sluice/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_event(const struct sl_watch_event *ev, void *arg)
{
	size_t *n = arg;
	const char *rv = json_object_get_string(
		sl_json_path(ev->object, "metadata", "resourceVersion", (char *)NULL));
	int64_t code;

	if (ev->type == SL_WATCH_ERROR)
		sl_json_get_int(ev->object, "code", &code);
	(*n)++;
	/* Stop on a particular event count to exercise the stop path. */
	return rv && !strcmp(rv, "stop") ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_watch_decoder *d;
	size_t chunk, n = 0;
	int rc = 0;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	d = sl_watch_decoder_new(4096, fuzz_event, &n);
	if (!d)
		return 0;
	for (size_t off = 0; off < size && !rc; off += chunk)
		rc = sl_watch_decoder_feed(d, (const char *)data + off,
					   size - off < chunk ? size - off : chunk);
	if (!rc)
		rc = sl_watch_decoder_finish(d);
	/* Errors are sticky and always explained. */
	if (rc && sl_watch_decoder_feed(d, "\n", 1) != rc)
		__builtin_trap();
	if (rc < 0 && !sl_watch_decoder_error(d)[0])
		__builtin_trap();
	if (sl_watch_decoder_events(d) != n)
		__builtin_trap();
	sl_watch_decoder_free(d);
	return 0;
}
