/*
 * libFuzzer harness over the request parser, the request semantics, the
 * router and the response head renderer: the code that reads what a client
 * sends. The input is treated as a connection's byte stream and parsed as
 * pipelined requests, as conn_run() does. Besides the sanitizers' checks it
 * asserts the parser's contract: the consumed length stays in the buffer,
 * every field points into it, and no proper prefix of a complete head is
 * itself complete.
 *
 * Build: clang -g -fsanitize=fuzzer,address,undefined -I. \
 *        tests/fuzz_request.c sha256.c -o fuzz_request   (make fuzz)
 */
#define main quinistry_main
#include "../quinistry.c"
#undef main

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char fake[4096];
	static char buf[MAX_HEAD];
	static int ready;
	size_t off = 0, len = size < MAX_HEAD ? size : MAX_HEAD;

	if (!ready) {
		self_bin = fake;
		self_len = sizeof fake;
		build_image();
		update_clock();
		ready = 1;
	}
	/* a private copy: reads past the end are then caught by ASan */
	memcpy(buf, data, len);
	while (off < len) {
		struct request rq;
		struct reqinfo ri;
		struct reply r;
		char out[MAX_RESPONSE_HEAD];
		uint64_t blen;
		long n = parse_request(buf + off, len - off, &rq);
		size_t i;

		if (n == PARSE_INCOMPLETE)
			break;
		if (n == PARSE_ERROR) {
			must(statuses[rq.status].code >= 400);
			break;
		}
		must(n > 0 && (size_t)n <= len - off);
		must(rq.method >= buf + off && rq.target + rq.target_len <= buf + off + n);
		for (i = 0; i < rq.nheaders; i++)
			must(rq.headers[i].name >= buf + off &&
			    rq.headers[i].value + rq.headers[i].value_len <=
			    buf + off + n);
		{
			struct request r2;
			must(parse_request(buf + off, (size_t)n - 1, &r2) ==
			    PARSE_INCOMPLETE);
		}
		memset(&r, 0, sizeof r);
		if (request_info(&rq, &ri) == 0) {
			route(&r, &rq, &ri);
			must(r.obj || statuses[r.st].body);
			must(render_head(out, sizeof out, &r, ri.keep, &blen) > 0);
			if (!statuses[r.st].body)
				must(blen <= r.obj->len);
		}
		off += (size_t)n;
	}
	return 0;
}
