/* tardev-snapshotter stand-in for the uvmbuild demo (the real one is Rust). */
#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argc;
	printf("tardev-snapshotter %s (uvmbuild demo stand-in)\n", VERSION);
	return argv[1] ? 0 : 2;
}
