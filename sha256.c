/* sha256.c - SHA-256 message digest.
 * Written from FIPS 180-4 for quinistry; public domain.
 *
 * Section numbers below refer to FIPS PUB 180-4 (August 2015).
 * Words are assembled from bytes explicitly (big-endian, as 3.1 and 5.2.1
 * require), so the code is independent of host byte order and alignment.
 */
#include "sha256.h"

#include <string.h>

/* 4.2.2: first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes. */
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
	0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
	0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
	0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

/* 3.2 / 2.2.2: ROTR^n(x) for 0 < n < 32. The result is cast back to
 * uint32_t so that nothing depends on the width of int. */
static uint32_t rotr(uint32_t x, unsigned n)
{
	return (uint32_t)((x >> n) | (x << (32u - n)));
}

/* 4.1.2: the six logical functions of SHA-256. Ch and Maj are written in
 * the equivalent forms that need one operation fewer. */
static uint32_t ch(uint32_t x, uint32_t y, uint32_t z)
{
	return z ^ (x & (y ^ z));           /* (x AND y) XOR (NOT x AND z) */
}

static uint32_t maj(uint32_t x, uint32_t y, uint32_t z)
{
	return (x & y) | (z & (x | y));     /* majority of each bit */
}

static uint32_t big_sigma0(uint32_t x)
{
	return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22);
}

static uint32_t big_sigma1(uint32_t x)
{
	return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25);
}

static uint32_t small_sigma0(uint32_t x)
{
	return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3);
}

static uint32_t small_sigma1(uint32_t x)
{
	return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10);
}

/* Big-endian byte <-> word conversion (3.1 item 2). */
static uint32_t load_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* 6.2.2: process one 512-bit message block M(i) into the hash state. */
static void compress(uint32_t h[8], const unsigned char *block)
{
	uint32_t w[64];
	uint32_t a, b, c, d, e, f, g, hh, t1, t2;
	int t;

	/* Step 1: prepare the message schedule {W_t}. */
	for (t = 0; t < 16; t++)
		w[t] = load_be32(block + 4 * t);
	for (t = 16; t < 64; t++)
		w[t] = small_sigma1(w[t - 2]) + w[t - 7] +
		       small_sigma0(w[t - 15]) + w[t - 16];

	/* Step 2: initialise the working variables from H(i-1). */
	a = h[0]; b = h[1]; c = h[2]; d = h[3];
	e = h[4]; f = h[5]; g = h[6]; hh = h[7];

	/* Step 3: 64 rounds. All additions are modulo 2^32 (uint32_t). */
	for (t = 0; t < 64; t++) {
		t1 = hh + big_sigma1(e) + ch(e, f, g) + K[t] + w[t];
		t2 = big_sigma0(a) + maj(a, b, c);
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}

	/* Step 4: H(i) = working variables + H(i-1). */
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* 5.3.3: initial hash value H(0), the first 32 bits of the fractional
 * parts of the square roots of the first 8 primes. */
void sha256_init(struct sha256 *s)
{
	s->h[0] = 0x6a09e667;
	s->h[1] = 0xbb67ae85;
	s->h[2] = 0x3c6ef372;
	s->h[3] = 0xa54ff53a;
	s->h[4] = 0x510e527f;
	s->h[5] = 0x9b05688c;
	s->h[6] = 0x1f83d9ab;
	s->h[7] = 0x5be0cd19;
	s->len = 0;
	s->n = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	/* memcpy with a NULL pointer is undefined even for zero bytes, and
	 * callers may legitimately pass (NULL, 0). */
	if (len == 0)
		return;
	s->len += (uint64_t)len;

	/* Top up a partially filled block first. */
	if (s->n > 0) {
		size_t take = 64 - s->n;
		if (take > len)
			take = len;
		memcpy(s->buf + s->n, p, take);
		s->n += take;
		p += take;
		len -= take;
		if (s->n < 64)
			return;
		compress(s->h, s->buf);
		s->n = 0;
	}

	/* Whole blocks straight from the caller's memory: no copy needed,
	 * since load_be32 reads bytes and has no alignment requirement. */
	while (len >= 64) {
		compress(s->h, p);
		p += 64;
		len -= 64;
	}

	/* Keep the tail for the next call or for sha256_final. */
	if (len > 0) {
		memcpy(s->buf, p, len);
		s->n = len;
	}
}

void sha256_final(struct sha256 *s, unsigned char out[32])
{
	/* 5.1.1: the message length in bits, l, goes in the last 64 bits.
	 * s->len counts bytes; SHA-256 is defined for l < 2^64, so the
	 * multiplication modulo 2^64 is exact for every valid input. */
	uint64_t bits = s->len * 8u;
	int i;

	/* 5.1.1: append the bit "1" (0x80, as messages are whole bytes)... */
	s->buf[s->n++] = 0x80;

	/* ...then k zero bits so that l + 1 + k = 448 (mod 512). If fewer
	 * than 8 bytes remain in this block, the length needs one more. */
	if (s->n > 56) {
		memset(s->buf + s->n, 0, 64 - s->n);
		compress(s->h, s->buf);
		s->n = 0;
	}
	memset(s->buf + s->n, 0, 56 - s->n);

	/* ...and finally l as a 64-bit big-endian integer. */
	store_be32(s->buf + 56, (uint32_t)(bits >> 32));
	store_be32(s->buf + 60, (uint32_t)bits);
	compress(s->h, s->buf);

	/* 6.2.2: the digest is H(N)_0 || ... || H(N)_7, big-endian. */
	for (i = 0; i < 8; i++)
		store_be32(out + 4 * i, s->h[i]);

	/* Do not leave message-derived data lying around in the state. */
	memset(s->buf, 0, sizeof s->buf);
	s->n = 0;
}

void sha256_hex(const unsigned char digest[32], char out[65])
{
	static const char hexdig[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hexdig[digest[i] >> 4];
		out[2 * i + 1] = hexdig[digest[i] & 0x0f];
	}
	out[64] = '\0';
}

void sha256_digest_hex(const void *data, size_t len, char out[65])
{
	struct sha256 s;
	unsigned char d[32];

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, d);
	sha256_hex(d, out);
}
