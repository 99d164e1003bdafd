/*
 * kata-agent stand-in for the uvmbuild demo. It logs what it was built with
 * and, when built with AGENT_POLICY=yes, loads the policy the real agent loads
 * (/etc/kata-opa/default-policy.rego) and logs its path, size, SHA-256 and the
 * rule names it declares, so a booted UVM shows which policy was measured in.
 * Then it idles like a service.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sha256.h"

#define POLICY_PATH "/etc/kata-opa/default-policy.rego"

static int load_policy(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL, d[32];
	size_t len = 0, cap = 0, n;
	char *line, *save;
	int i;

	if (!f) {
		printf("kata-agent: cannot open policy %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			buf = realloc(buf, cap + 1);
			if (!buf)
				return -1;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	sha256(buf, len, d);
	printf("kata-agent: loaded policy %s (%zu bytes, sha256 ", path, len);
	for (i = 0; i < 32; i++)
		printf("%02x", d[i]);
	printf(")\n");
	buf[len] = 0;
	for (line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "package ", 8) == 0 || strncmp(line, "default ", 8) == 0)
			printf("kata-agent: policy: %s\n", line);
	}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("kata-agent %s (%s, libc %s, features: %s)\n", VERSION, BUILD_TYPE, LIBC, FEATURES);
		return 0;
	}
	printf("kata-agent: starting version %s (%s build, libc %s, features: %s)\n",
	       VERSION, BUILD_TYPE, LIBC, FEATURES);
#ifdef AGENT_POLICY
	if (load_policy(argc > 2 && strcmp(argv[1], "--policy") == 0 ? argv[2] : POLICY_PATH) != 0)
		return 1;
	if (argc > 2)
		return 0;
#endif
#ifdef AGENT_DEBUG
	printf("kata-agent: debug build, verbose logging on\n");
#endif
	fflush(stdout);
	for (;;)
		pause();
}
