/*
 * libFuzzer harness over the request parser, the request semantics, the
 * router and the response head renderer: the code that reads what a client
 * sends, and the log's escaping of it. The input is treated as a
 * connection's byte stream and parsed as pipelined requests, as conn_run()
 * does. Besides the sanitizers' checks it asserts the parser's contract:
 * the consumed length stays in the buffer, every field points into it, and
 * no proper prefix of a complete head is itself complete; and the log's:
 * what a client sent comes out as printable ASCII with every quote and
 * backslash escaped, so no client can forge or split a log line.
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

/* log_text() of n untrusted bytes, quoted as the User-Agent is */
static void check_log_text(const char *s, size_t n, size_t max)
{
	char out[sizeof ((struct iobuf *)0)->log_ua];
	size_t i, len;

	log_text(out, sizeof out, s, n, max, 1);
	len = strlen(out);
	must(len >= 2 && out[0] == '"' && out[len - 1] == '"');
	for (i = 1; i + 1 < len; i++) {
		must(out[i] >= 0x20 && out[i] <= 0x7e && out[i] != '"');
		if (out[i] == '\\')
			i++; /* an escape: \" \\ or \xNN */
	}
	must(i == len - 1);
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
		check_log_text(rq.target, rq.target_len, LOG_UA_MAX);
		for (i = 0; i < rq.nheaders; i++)
			check_log_text(rq.headers[i].value,
			    rq.headers[i].value_len, LOG_UA_MAX);
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
