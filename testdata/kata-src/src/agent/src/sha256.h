/* Minimal SHA-256 (FIPS 180-4) so the agent stand-in can log the digest of
 * the policy it loaded without linking a crypto library. */
#include <stddef.h>
#include <stdint.h>

void sha256(const unsigned char *data, size_t len, unsigned char out[32]);
