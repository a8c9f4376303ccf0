// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzz target for the typed Kubernetes objects (lib/k8s_*.c): the bytes are
 * parsed as JSON and decoded as every kind. A decode either fails with
 * -SL_ERR_INVALID and a message, or the object must round-trip:
 * encode(decode(json)) == json, decode(encode(x)) == x, and the same after
 * editing typed metadata (which exercises the canonical-encoding path). The
 * text decoder (k8s_obj_decode_text) must accept only what the tree decoder
 * accepts, with the same typed values. Any mismatch aborts so libFuzzer (and the corpus replay in
 * make test) reports it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                                       \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz_k8s: kind %d: %s\n", (int)kind, what); \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* Decodes enc as kind and checks it equals want; frees everything. */
static void fuzz_redecode(enum k8s_kind kind, struct json_object *enc, const void *want)
{
	void *again = NULL;
	char err[256];
	int rc = k8s_obj_decode(kind, enc, &again, err, sizeof(err));

	if (rc == -ENOMEM)
		return;
	FUZZ_CHECK(rc == 0, "encoded object does not decode");
	FUZZ_CHECK(k8s_obj_equal(kind, want, again), "decode(encode(x)) != x");
	k8s_obj_free(kind, again);
}

/* The text decoder on the same bytes: nothing the tree refused, the same values. */
static void fuzz_text(enum k8s_kind kind, const uint8_t *data, size_t size, const void *tree)
{
	void *fast = NULL;
	char err[256] = "";
	int rc = k8s_obj_decode_text(kind, (const char *)data, size, &fast, err, sizeof(err));

	if (rc == -ENOMEM)
		return;
	FUZZ_CHECK(rc == 0 || rc == -SL_ERR_INVALID, "text decode: unexpected error code");
	FUZZ_CHECK(rc == 0 || err[0], "text decode: error without a message");
	FUZZ_CHECK(rc || tree, "text decode accepts what the tree decoder refuses");
	/* json-c also takes NaN and Infinity, which the text decoder does not. */
	if (tree && !rc)
		FUZZ_CHECK(k8s_obj_equal_typed(kind, tree, fast),
			   "text decode: typed values differ");
	k8s_obj_free(kind, fast);
}

/* Edits typed metadata the way controllers do and checks the round trip again. */
static void fuzz_edit(enum k8s_kind kind, void *obj)
{
	struct k8s_meta *meta = (struct k8s_meta *)k8s_obj_meta(kind, obj);
	struct json_object *enc;

	FUZZ_CHECK(meta != NULL, "no metadata");
	if (k8s_strmap_set(&meta->labels, "sluice.io/fuzz", "1"))
		return;
	meta->generation++;
	meta->creation_timestamp.sec = 1715677964;
	if (meta->finalizers.n)
		k8s_strlist_fini(&meta->finalizers);
	if (meta->n_owner_references)
		meta->owner_references[0].controller = K8S_TRI_TRUE;
	enc = k8s_obj_encode(kind, obj);
	if (!enc) {
		FUZZ_CHECK(errno == ENOMEM, "edited object does not encode");
		return;
	}
	fuzz_redecode(kind, enc, obj);
	json_object_put(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *doc = sl_json_parse((const char *)data, size, NULL, 0), *copy;
	enum k8s_kind kind;

	/* Kind detection must cope with any document (or none); the loop
	 * below decodes as every kind regardless of what it says. */
	(void)k8s_kind_from_json(doc);
	if (!doc) {
		for (kind = K8S_KIND_UNKNOWN + 1; kind < K8S_KIND_MAX; kind++)
			fuzz_text(kind, data, size, NULL);
		return 0;
	}
	/* json-c accepts NaN even in strict mode and NaN != NaN: such a document is
	 * not equal to its own copy, so no round trip could be checked. */
	copy = sl_json_clone(doc);
	if (!copy || !sl_json_equal(doc, copy)) {
		json_object_put(copy);
		json_object_put(doc);
		return 0;
	}
	json_object_put(copy);
	for (kind = K8S_KIND_UNKNOWN + 1; kind < K8S_KIND_MAX; kind++) {
		struct json_object *enc;
		void *obj = NULL, *clone;
		char err[256] = "";
		int rc = k8s_obj_decode(kind, doc, &obj, err, sizeof(err));

		if (rc) {
			FUZZ_CHECK(rc == -SL_ERR_INVALID || rc == -ENOMEM, "unexpected error code");
			FUZZ_CHECK(obj == NULL, "failed decode returned an object");
			FUZZ_CHECK(err[0] != '\0', "error without a message");
			if (rc == -SL_ERR_INVALID)
				fuzz_text(kind, data, size, NULL);
			continue;
		}
		fuzz_text(kind, data, size, obj);
		enc = k8s_obj_encode(kind, obj);
		FUZZ_CHECK(enc || errno == ENOMEM, "decoded object does not encode");
		if (enc) {
			FUZZ_CHECK(sl_json_equal(enc, doc), "encode(decode(json)) != json");
			fuzz_redecode(kind, enc, obj);
			json_object_put(enc);
		}
		clone = k8s_obj_clone(kind, obj);
		FUZZ_CHECK(clone || errno == ENOMEM, "clone failed");
		if (clone) {
			FUZZ_CHECK(k8s_obj_equal(kind, obj, clone), "clone differs");
			k8s_obj_free(kind, clone);
		}
		fuzz_edit(kind, obj);
		k8s_obj_free(kind, obj);
	}
	json_object_put(doc);
	return 0;
}
