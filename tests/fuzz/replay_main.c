// SPDX-License-Identifier: Apache-2.0
/*
 * Replays a libFuzzer corpus without libFuzzer: every file under the given
 * directories (or single files) goes through LLVMFuzzerTestOneInput once.
 * Built with ASan/UBSan in the test build, so a corpus entry that crashes or
 * leaks fails `make test`. Prints one "ok - <target>/<file>" line per input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f) {
		printf("not ok - %s (cannot open)\n", path);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
		printf("not ok - %s (cannot read)\n", path);
		fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	printf("ok - %s\n", path);
	return 0;
}

static int replay(const char *path)
{
	struct stat st;
	struct dirent **ents;
	int n, rc = 0;

	if (stat(path, &st)) {
		printf("not ok - %s (missing corpus)\n", path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	n = scandir(path, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char child[4096];
		if (ents[i]->d_name[0] != '.') {
			snprintf(child, sizeof(child), "%s/%s", path, ents[i]->d_name);
			rc |= replay(child);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++)
		rc |= replay(argv[i]);
	return rc;
}
