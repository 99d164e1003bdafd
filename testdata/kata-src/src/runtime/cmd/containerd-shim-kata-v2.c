/* containerd-shim-kata-v2 stand-in for the uvmbuild demo: reports its build settings. */
#include "common.h"

int main(int argc, char **argv)
{
	if (print_version("containerd-shim-kata-v2", argc, argv))
		return 0;
	fprintf(stderr, "containerd-shim-kata-v2: demo stand-in; run with --version\n");
	return 2;
}
