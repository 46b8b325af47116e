/* test_sha256.c - checks sha256.c against the FIPS 180-2/180-4 example
 * vectors and against itself (streaming vs one-shot).
 *
 *   test_sha256          run the checks, print ok/not ok lines, exit 1 on failure
 *   test_sha256 FILE     print the lowercase hex SHA-256 of FILE and exit
 *
 * Build: cc -std=c99 -Wall -Wextra -I. tests/test_sha256.c sha256.c
 */
#include "sha256.h"

#include <stdio.h>
#include <string.h>

static int failures;

static void check(int cond, const char *desc, const char *got, const char *want)
{
	if (cond) {
		printf("ok - sha256: %s\n", desc);
	} else {
		printf("not ok - sha256: %s\n", desc);
		if (got && want)
			fprintf(stderr, "#   got  %s\n#   want %s\n", got, want);
		failures++;
	}
}

static void check_oneshot(const char *desc, const char *msg, const char *want)
{
	char hex[65];

	sha256_digest_hex(msg, strlen(msg), hex);
	check(strcmp(hex, want) == 0, desc, hex, want);
}

/* One million 'a', fed in pieces of 1, 2, ..., 97, 1, 2, ... bytes so that
 * the partial-block buffer is entered and left at every offset. */
static void check_million_a(void)
{
	static const char want[] =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	static unsigned char chunk[97];
	struct sha256 s;
	unsigned char d[32];
	char hex[65];
	size_t left = 1000000, k = 0;

	memset(chunk, 'a', sizeof chunk);
	sha256_init(&s);
	while (left > 0) {
		size_t take = k % 97 + 1;
		if (take > left)
			take = left;
		sha256_update(&s, chunk, take);
		left -= take;
		k++;
	}
	sha256_final(&s, d);
	sha256_hex(d, hex);
	check(strcmp(hex, want) == 0,
	      "one million 'a' in 1..97 byte chunks", hex, want);
}

/* Lengths around the 55/56 and 64 byte padding boundaries of 5.1.1.
 * Expected values were computed with an independent implementation. */
static void check_padding_edges(void)
{
	static const struct { size_t n; const char *want; } v[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
		{ 128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e" }
	};
	unsigned char msg[128];
	char hex[65], desc[64];
	size_t i;

	memset(msg, 'a', sizeof msg);
	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		sha256_digest_hex(msg, v[i].n, hex);
		sprintf(desc, "%u x 'a' (padding boundary)", (unsigned)v[i].n);
		check(strcmp(hex, v[i].want) == 0, desc, hex, v[i].want);
	}
}

/* For every length 0..300: byte-at-a-time updates give the same digest as
 * a single update. Reported as one check to keep the output short. */
static void check_bytewise(void)
{
	unsigned char msg[300];
	char one[65], inc[65], desc[96];
	size_t len, i, bad = (size_t)-1;

	for (i = 0; i < sizeof msg; i++)
		msg[i] = (unsigned char)(i * 131u + 7u);
	for (len = 0; len <= sizeof msg; len++) {
		struct sha256 s;
		unsigned char d[32];

		sha256_digest_hex(msg, len, one);
		sha256_init(&s);
		for (i = 0; i < len; i++)
			sha256_update(&s, msg + i, 1);
		sha256_final(&s, d);
		sha256_hex(d, inc);
		if (strcmp(one, inc) != 0) {
			bad = len;
			break;
		}
	}
	if (bad == (size_t)-1) {
		check(1, "lengths 0..300 byte-by-byte equal one-shot", NULL, NULL);
	} else {
		sprintf(desc, "lengths 0..300 byte-by-byte equal one-shot (differs at %u)",
		        (unsigned)bad);
		check(0, desc, inc, one);
	}
}

/* sha256_update(s, NULL, 0) is allowed and changes nothing. */
static void check_null_empty(void)
{
	static const char want[] =
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	struct sha256 s;
	unsigned char d[32];
	char hex[65];

	sha256_init(&s);
	sha256_update(&s, NULL, 0);
	sha256_final(&s, d);
	sha256_hex(d, hex);
	check(strcmp(hex, want) == 0, "update(NULL, 0) on empty message", hex, want);
}

static int hash_file(const char *path)
{
	static unsigned char buf[65536];
	struct sha256 s;
	unsigned char d[32];
	char hex[65];
	size_t got;
	FILE *f = fopen(path, "rb");

	if (!f) {
		perror(path);
		return 1;
	}
	sha256_init(&s);
	while ((got = fread(buf, 1, sizeof buf, f)) > 0)
		sha256_update(&s, buf, got);
	if (ferror(f)) {
		perror(path);
		fclose(f);
		return 1;
	}
	fclose(f);
	sha256_final(&s, d);
	sha256_hex(d, hex);
	printf("%s\n", hex);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2)
		return hash_file(argv[1]);
	if (argc > 2) {
		fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
		return 2;
	}

	/* Example vectors from the NIST "SHA-256 examples" (CSRC). */
	check_oneshot("empty string", "",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_oneshot("\"abc\"", "abc",
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_oneshot("448-bit message",
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check_oneshot("896-bit message",
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
	    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	check_million_a();
	check_padding_edges();
	check_bytewise();
	check_null_empty();

	return failures ? 1 : 0;
}
