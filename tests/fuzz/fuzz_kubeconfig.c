// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzz target for kubeconfig reading (lib/kubeconfig.c): arbitrary bytes go
 * through the YAML-subset reader sl_yaml_parse() and the lookup
 * sl_kubeconfig_parse() (current-context, then a named context).
 *
 * Invariants beyond "no crash, no leak, no UB": a failure returns NULL /
 * -EINVAL / -ENOMEM with a message (a document that is just a null scalar
 * reads as NULL without one: it is JSON null, not an error); a success of sl_kubeconfig_parse names
 * a non-empty server and hands back the store its strings point into; a mapping or sequence the
 * reader returns, written back as JSON, reads back equal (JSON is the reader's other input form). A
 * broken invariant aborts.
 *
 * tokenFile names are resolved against a directory that does not exist; an
 * absolute one is read (bounded to 4 MiB by the reader), so stdin is
 * /dev/null here in case an input names /dev/stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/client.h"
#include "sluice/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                          \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "fuzz_kubeconfig: %s\n", what); \
			abort();                                        \
		}                                                       \
	} while (0)

static void fuzz_stdin_off(void)
{
	static bool done;
	int fd;

	if (done)
		return;
	done = true;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
}

static void fuzz_yaml(const char *text, size_t len)
{
	char err[256] = "";
	struct json_object *doc, *again, *copy;
	const char *js;
	size_t jlen;

	errno = 0;
	doc = sl_yaml_parse(text, len, err, sizeof(err));
	if (!doc) {
		/* A document that is only a null scalar (null, Null, ~) is JSON
		 * null, which json-c spells NULL: no error, no message. */
		if (errno == 0 && err[0] == '\0')
			return;
		/* errno 0 is tolerated: sl_json_parse's NUL-byte refusal does not
		 * set it (reported; tighten once lib/json.c sets EINVAL there). */
		FUZZ_CHECK(errno == 0 || errno == EINVAL || errno == ENOMEM,
			   "sl_yaml_parse: errno not EINVAL/ENOMEM");
		FUZZ_CHECK(err[0] != '\0', "sl_yaml_parse failed without a message");
		return;
	}
	copy = sl_json_clone(doc);
	/* NaN is not equal to itself: no round trip to compare. */
	if (copy && sl_json_equal(doc, copy) &&
	    (json_object_is_type(doc, json_type_object) ||
	     json_object_is_type(doc, json_type_array))) {
		js = sl_json_str(doc, &jlen);
		if (js && jlen && js[0] == '{') {
			again = sl_yaml_parse(js, jlen, err, sizeof(err));
			FUZZ_CHECK(again || errno == ENOMEM,
				   "the reader's own JSON does not read back");
			if (again)
				FUZZ_CHECK(sl_json_equal(doc, again), "JSON round trip differs");
			json_object_put(again);
		}
	}
	json_object_put(copy);
	json_object_put(doc);
}

static void fuzz_kubeconfig(const char *text, size_t len, const char *context)
{
	struct sl_client_opts o;
	struct json_object *store = NULL;
	char err[512] = "";
	int rc = sl_kubeconfig_parse("/nonexistent-sluice-fuzz/kubeconfig", text, len, context, &o,
				     &store, err, sizeof(err));

	if (rc) {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM,
			   "sl_kubeconfig_parse: unexpected error code");
		FUZZ_CHECK(err[0] != '\0', "sl_kubeconfig_parse failed without a message");
		FUZZ_CHECK(strstr(err, "kubeconfig") != NULL, "message does not name the file");
	} else {
		FUZZ_CHECK(o.server && o.server[0], "success without a server");
		FUZZ_CHECK(store != NULL, "success without a store");
	}
	json_object_put(store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The parsers take (text, len): an exact-size copy without a
	 * terminator lets ASan see any read past len. */
	char *text = malloc(size ? size : 1);

	if (!text)
		return 0;
	fuzz_stdin_off();
	memcpy(text, data, size);
	fuzz_yaml(text, size);
	fuzz_kubeconfig(text, size, NULL);
	fuzz_kubeconfig(text, size, "fuzz");
	free(text);
	return 0;
}
