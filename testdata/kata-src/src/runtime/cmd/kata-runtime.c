/* kata-runtime stand-in for the uvmbuild demo: reports its build settings. */
#include "common.h"

int main(int argc, char **argv)
{
	if (print_version("kata-runtime", argc, argv))
		return 0;
	fprintf(stderr, "kata-runtime: demo stand-in; run with --version\n");
	return 2;
}
