/* sha256.h - SHA-256 message digest.
 * Written from FIPS 180-4 for quinistry; public domain.
 */
#ifndef QUINISTRY_SHA256_H
#define QUINISTRY_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Streaming state. Treat the fields as private. */
struct sha256 {
	uint32_t h[8];          /* intermediate hash value H(i), FIPS 180-4 6.2 */
	uint64_t len;           /* total message bytes seen so far */
	unsigned char buf[64];  /* partial block not yet compressed */
	size_t n;               /* bytes used in buf (always < 64 between calls) */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; the state must be re-initialised before reuse. */
void sha256_final(struct sha256 *s, unsigned char out[32]);
/* Lowercase hex, NUL-terminated (64 digits + NUL). */
void sha256_hex(const unsigned char digest[32], char out[65]);
/* One-shot: hex digest of data[0..len). */
void sha256_digest_hex(const void *data, size_t len, char out[65]);

#endif
