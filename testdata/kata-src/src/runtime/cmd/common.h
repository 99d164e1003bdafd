/* Shared by the runtime stand-ins: print the values the build baked in. */
#include <stdio.h>
#include <string.h>

static int print_version(const char *name, int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
		printf("%s : %s\n   commit   : %s\n   default hypervisor : %s\n"
		       "   config : %s (fallback %s)\n",
		       name, VERSION, COMMIT, DEFAULT_HYPERVISOR, CONFIG_PATH, SYSCONFIG_PATH);
		return 1;
	}
	return 0;
}
