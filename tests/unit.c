/*
 * Unit tests for quinistry's static functions: the request parser, the
 * request semantics (Accept negotiation, framing), routing helpers, ranges,
 * entity tags, the JSON emitter and the tar writer. The program is included
 * whole, with its main renamed, so nothing has to be exported for testing.
 *
 * Build: cc -std=c99 -I. tests/unit.c sha256.c -o unit && ./unit
 */
#define main quinistry_main
#include "../quinistry.c"
#undef main

static int failures, checks;

static void expect(int cond, const char *what)
{
	checks++;
	if (!cond)
		failures++;
	printf("%s - unit: %s\n", cond ? "ok" : "not ok", what);
}

/* the HTTP status code of a status; 0 for S_OK, as request_info() means it */
static int code(enum status st)
{
	return st == S_OK ? 0 : statuses[st].code;
}

static long parse(const char *s, struct request *rq)
{
	return parse_request(s, strlen(s), rq);
}

/* The parser must say "incomplete" for every proper prefix of a valid
 * request, and give the exact length for the whole. */
static void test_prefixes(const char *req, const char *name)
{
	struct request rq;
	size_t n = strlen(req), k;
	int all = 1;
	char what[160];

	for (k = 0; k < n; k++)
		if (parse_request(req, k, &rq) != PARSE_INCOMPLETE)
			all = 0;
	snprintf(what, sizeof what, "every prefix of %s is incomplete", name);
	expect(all, what);
	snprintf(what, sizeof what, "%s parses to its full length", name);
	expect(parse_request(req, n, &rq) == (long)n, what);
}

static void test_parser(void)
{
	static const char podman[] =
	    "GET /v2/quinistry/manifests/latest HTTP/1.1\r\n"
	    "Host: 127.0.0.1:8080\r\n"
	    "User-Agent: containers/5.23.1 (github.com/containers/image)\r\n"
	    "Accept: application/vnd.oci.image.manifest.v1+json\r\n"
	    "Accept: application/vnd.docker.distribution.manifest.v2+json\r\n"
	    "Accept: application/vnd.docker.distribution.manifest.v1+prettyjws\r\n"
	    "Accept: application/vnd.docker.distribution.manifest.v1+json\r\n"
	    "Accept: application/vnd.docker.distribution.manifest.list.v2+json\r\n"
	    "Accept: application/vnd.oci.image.index.v1+json\r\n"
	    "Docker-Distribution-Api-Version: registry/2.0\r\n"
	    "Accept-Encoding: gzip\r\n\r\n";
	static const char two[] =
	    "GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n"
	    "HEAD /v2/quinistry/tags/list HTTP/1.1\r\nHost: a\r\n\r\n";
	struct request rq;
	long n, m;
	char big[MAX_HEAD + 64];
	size_t i;

	test_prefixes(podman, "podman's manifest request");
	test_prefixes("GET / HTTP/1.0\r\n\r\n", "a minimal HTTP/1.0 request");
	test_prefixes("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	    "a request after an empty line");

	n = parse(podman, &rq);
	expect(rq.nheaders == 10, "podman's request has 10 header fields");
	expect(rq.method_len == 3 && memcmp(rq.method, "GET", 3) == 0 &&
	    rq.target_len == 30 && rq.minor == 1, "method, target, version");
	expect(rq.headers[1].value_len == 47 &&
	    rq.headers[1].value[46] == ')', "field values are trimmed and whole");
	(void)n;

	/* pipelining: the first request's length, then the second's */
	n = parse(two, &rq);
	expect(n == 30, "first pipelined request: 30 bytes");
	m = parse_request(two + n, strlen(two) - (size_t)n, &rq);
	expect(m == (long)strlen(two) - n && rq.method_len == 4,
	    "second pipelined request parses from where the first ended");

	n = parse("GET / HTTP/1.1\nHost: x\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "bare LF: 400");
	n = parse("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "bare CR in a value: 400");
	n = parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "obs-fold: 400");
	n = parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "space before colon: 400");
	n = parse("GET / HTTP/1.1\r\nHost\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "no colon: 400");
	n = parse("GET  / HTTP/1.1\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "two spaces: 400");
	n = parse("GET /\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "HTTP/0.9: 400");
	n = parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 505, "HTTP/2 preface: 505");
	n = parse("GET / HTTP/3.0\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 505, "HTTP/3.0: 505");
	n = parse("GET / http/1.1\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "lowercase version: 400");
	n = parse("G(T / HTTP/1.1\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "bad method character: 400");
	n = parse_request("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 25, &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "NUL in a value: 400");
	n = parse("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 400, "DEL in a value: 400");
	n = parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\nHost: x\r\n\r\n", &rq);
	expect(n > 0, "obs-text in a value is allowed");

	memset(big, 'a', sizeof big);
	memcpy(big, "GET /", 5);
	n = parse_request(big, MAX_TARGET + 10, &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 414,
	    "a long target: 414 before the line ends");
	i = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
	while (i + 8 < MAX_HEAD)
		i += (size_t)snprintf(big + i, sizeof big - i, "X: 1\r\n");
	n = parse_request(big, i, &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 431, "too many header fields: 431");
	i = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: ");
	memset(big + i, 'v', MAX_HEAD - i);
	n = parse_request(big, MAX_HEAD, &rq);
	expect(n == PARSE_ERROR && code(rq.status) == 431,
	    "a head filling the buffer: 431");
}

/* request_info on a one-off request */
static int info(const char *s, struct reqinfo *ri)
{
	static struct request rq;

	if (parse(s, &rq) <= 0)
		return -1;
	return code(request_info(&rq, ri));
}

static int chosen(const char *accept_lines)
{
	char buf[2048];
	struct reqinfo ri;
	struct reply r;
	struct request rq;

	snprintf(buf, sizeof buf,
	    "GET /v2/quinistry/manifests/latest HTTP/1.1\r\nHost: x\r\n%s\r\n",
	    accept_lines);
	if (parse(buf, &rq) <= 0 || request_info(&rq, &ri))
		return -1;
	route(&r, &rq, &ri);
	return r.obj == &objects[OBJ_OCI] ? 'O' :
	    r.obj == &objects[OBJ_DOCKER] ? 'D' : '?';
}

/* route a GET of path; returns the status */
static const struct object *last_obj;

static int routed(const char *path)
{
	char buf[1024];
	struct reqinfo ri;
	struct reply r;
	struct request rq;

	snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	if (parse(buf, &rq) <= 0 || request_info(&rq, &ri))
		return -1;
	route(&r, &rq, &ri);
	last_obj = r.obj;
	return statuses[r.st].code;
}

/* The referrers answer for digest d with query q: 'S' the source
 * artifact listed, 'E' the empty index, else '?' */
static int referrers(const char *d, const char *q)
{
	char path[256];

	snprintf(path, sizeof path, "/v2/quinistry/referrers/%s%s", d, q);
	if (routed(path) != 200)
		return '?';
	return last_obj == &objects[OBJ_REFERRERS_SOURCE] ? 'S' :
	    last_obj == &objects[OBJ_REFERRERS] ? 'E' : '?';
}

static void test_routes(void)
{
	expect(routed("/v2/") == 200 && routed("/v2") == 200, "base route");
	expect(routed("/v2/quinistry/manifests/latest") == 200, "manifest route");
	expect(routed("/v2/quinistry/tags/list") == 200, "tags route");
	expect(routed("/v2/quinistry/tags/list/") == 404 &&
	    routed("/v2/quinistry/tags/lists") == 404, "tags/list is exact");
	expect(routed("/v2/a/manifests/b/manifests/latest") == 404 &&
	    routed("/v2/a/manifests/b/blobs/sha256:x") == 404,
	    "the last two segments choose the route; nested names are names");
	expect(routed("/v2/quinistry/manifests/") == 404, "empty reference: 404");
	expect(routed("/v2//manifests/latest") == 400, "empty name: NAME_INVALID");
	expect(routed("/v2/manifests/latest") == 404, "no name at all: 404");
	expect(routed("/v2/_catalog?n=1") == 200, "catalog route");
	expect(referrers(objects[OBJ_OCI].digest, "") == 'S' &&
	    referrers(objects[OBJ_OCI].digest, "?artifactType=" AT_SOURCE) == 'S' &&
	    referrers(objects[OBJ_OCI].digest, "?artifactType=a/b") == 'E' &&
	    referrers(objects[OBJ_DOCKER].digest, "") == 'E' &&
	    referrers(objects[OBJ_SOURCE].digest, "") == 'E',
	    "referrers: the source artifact for the OCI manifest, filtered by type");
}

static void test_semantics(void)
{
	struct reqinfo ri;

	expect(chosen("") == 'D', "no Accept: Docker");
	expect(chosen("Accept: " MT_OCI "\r\n") == 'O', "Accept OCI: OCI");
	expect(chosen("Accept: " MT_OCI "\r\nAccept: " MT_DOCKER "\r\n") == 'D',
	    "Accept OCI and Docker on two lines: Docker");
	expect(chosen("Accept: " MT_DOCKER ";;q=0, " MT_OCI "\r\n") == 'O' &&
	    chosen("Accept: " MT_DOCKER "; ;q=0, " MT_OCI "\r\n") == 'O',
	    "an empty parameter before q=0 (RFC 9110 5.6.6): still q=0");
	expect(chosen("Accept: " MT_DOCKER ";q=0, " MT_OCI "\r\n") == 'O',
	    "Docker refused with q=0: OCI");
	expect(chosen("Accept: */*;q=0.1, " MT_DOCKER ";q=0.000\r\n") == 'O',
	    "*/* but Docker q=0.000: OCI");
	expect(chosen("Accept: application/*\r\n") == 'D', "application/*: Docker");
	expect(chosen("Accept: " MT_OCI " ; charset=x ; q=1\r\n") == 'O',
	    "parameters and spaces around them");
	expect(chosen("Accept: text/html\r\n") == 'D',
	    "an Accept naming neither: Docker");
	expect(chosen("Accept: " MT_OCI ";q=0\r\n") == 'D',
	    "OCI refused, Docker unnamed: Docker");

	expect(info("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &ri) == 0 && ri.keep,
	    "1.1 is persistent");
	expect(info("GET / HTTP/1.0\r\n\r\n", &ri) == 0 && !ri.keep,
	    "1.0 closes");
	expect(info("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &ri) == 0 &&
	    ri.keep, "1.0 with keep-alive is persistent");
	expect(info("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n",
	    &ri) == 0 && !ri.keep, "close in a token list");
	expect(info("GET / HTTP/1.1\r\n\r\n", &ri) == 400, "no Host: 400");
	expect(info("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &ri) == 400,
	    "two Hosts: 400");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
	    "Content-Length: 1\r\n\r\n", &ri) == 400, "duplicate Content-Length: 400");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	    &ri) == 400, "negative Content-Length: 400");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    &ri) == 413, "a Content-Length past 64 bits is too large: 413");
	expect(info("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", &ri) == 400,
	    "a Host with a space: 400");
	expect(info("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &ri) == 0 &&
	    info("GET / HTTP/1.1\r\nHost:\r\n\r\n", &ri) == 0,
	    "IPv6 literal and empty Host are valid");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
	    &ri) == 413, "Content-Length over MAX_BODY: 413");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", &ri) == 400, "CL with TE: 400");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	    &ri) == 501, "unknown transfer coding: 501");
	expect(info("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	    &ri) == 0 && ri.has_body && !ri.keep, "chunked body: answer, then close");
	expect(info("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n",
	    &ri) == 400, "GET with a body: 400");
}

static int split(const char *target, struct target *t)
{
	return split_target(target, strlen(target), t);
}

static void test_helpers(void)
{
	struct target t;
	uint64_t a, b;

	expect(parse_range("bytes=0-9", 9, 100, &a, &b) == 1 && a == 0 && b == 9,
	    "range a-b");
	expect(parse_range("bytes=90-", 9, 100, &a, &b) == 1 && a == 90 && b == 99,
	    "range a-");
	expect(parse_range("bytes=-10", 9, 100, &a, &b) == 1 && a == 90 && b == 99,
	    "range -n");
	expect(parse_range("bytes=-500", 10, 100, &a, &b) == 1 && a == 0,
	    "range -n larger than the blob: all of it");
	expect(parse_range("bytes=100-", 10, 100, &a, &b) == -1,
	    "range starting at the end: unsatisfiable");
	expect(parse_range("bytes=5-1", 9, 100, &a, &b) == 0, "range b<a: ignored");
	expect(parse_range("bytes=1-2,4-5", 13, 100, &a, &b) == 0,
	    "multiple ranges: ignored");
	expect(parse_range("items=1-2", 9, 100, &a, &b) == 0, "other unit: ignored");
	expect(parse_range("bytes=99999999999999999999999-", 30, 100, &a, &b) == 0,
	    "overflowing range: ignored");

	expect(valid_name("quinistry", 9) && valid_name("a/b-c/d__e.f", 12),
	    "valid names");
	expect(!valid_name("A", 1) && !valid_name("a//b", 4) &&
	    !valid_name("a___b", 5) && !valid_name("-a", 2) &&
	    !valid_name("a-", 2), "invalid names");
	expect(digest_kind("sha256:0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef", 71) == 1, "sha256 digest");
	expect(digest_kind("sha256:abc", 10) == 0 && digest_kind("md5:ab", 6) == 0,
	    "malformed digests");
	expect(routed("/v2/quinistry/manifests/.x") == 404 &&
	    routed("/v2/quinistry/manifests/v2") == 404 &&
	    routed("/v2/quinistry/manifests/LATEST") == 404,
	    "invalid and unknown tags alike: MANIFEST_UNKNOWN");

	expect(split("/v2/%71uinistry", &t) == 0 && t.path_len == 13 &&
	    strcmp(t.path, "/v2/quinistry") == 0, "percent-decoding");
	expect(split("/a/%2e%2e/b", &t) == -1, "encoded dot-dot is refused");
	expect(split("/a/%2F", &t) == -1 && split("/a%0", &t) == -1,
	    "encoded slash, short escape");
	expect(split("/a/..", &t) == -1 && split("/a/./b", &t) == -1 &&
	    split("/a/.", &t) == -1, "dot segments are refused");
	expect(split("/a/.b/..c/.../", &t) == 0, "dotted names are not dot segments");
	expect(split("http://h:1/v2/x?n=1", &t) == 0 &&
	    strcmp(t.path, "/v2/x") == 0 && t.query_len == 3,
	    "absolute-form: scheme and authority dropped, query split off");

	expect(etag_matches("\"sha256:x\"", 10, "sha256:x") &&
	    etag_matches("W/\"y\", \"sha256:x\"", 17, "sha256:x") &&
	    etag_matches("*", 1, "sha256:x") &&
	    !etag_matches("\"sha256:xy\"", 11, "sha256:x"), "entity tags");
}

/* The source tar holds the four build inputs, in order, each 0644, and
 * the artifact names the empty config, that tar and the OCI manifest. */
static void test_source(void)
{
	static const char *names[4] = {
		"Makefile", "quinistry.c", "sha256.c", "sha256.h"
	};
	const unsigned char *t = objects[OBJ_SOURCE].data;
	size_t off = 0, len;
	char want[1024];
	int i, good = 0;

	for (i = 0; i < 4 && off + 512 <= objects[OBJ_SOURCE].len; i++) {
		const struct ustar *h = (const struct ustar *)(t + off);

		len = strtoul(h->size, NULL, 8);
		good += strcmp(h->name, names[i]) == 0 &&
		    strcmp(h->mode, "0000644") == 0 && h->typeflag == '0' &&
		    strcmp(h->uid, "0000000") == 0 &&
		    strcmp(h->gid, "0000000") == 0 &&
		    strcmp(h->mtime, "00000000000") == 0 &&
		    memcmp(h->magic, "ustar", 6) == 0;
		off += 512 + len + tar_pad(len);
	}
	expect(good == 4 && off + 1024 == objects[OBJ_SOURCE].len,
	    "source tar: the build inputs, 0644 0:0 mtime 0, then the end");
	snprintf(want, sizeof want, "{\"schemaVersion\":2,\"mediaType\":"
	    "\"%s\",\"artifactType\":\"%s\",\"config\":{\"mediaType\":"
	    "\"application/vnd.oci.empty.v1+json\",\"size\":2,\"digest\":"
	    "\"%s\"},\"layers\":[{\"mediaType\":\"%s\",\"size\":%zu,"
	    "\"digest\":\"%s\"}],\"subject\":{\"mediaType\":\"%s\","
	    "\"size\":%zu,\"digest\":\"%s\"}}", MT_OCI, AT_SOURCE,
	    objects[OBJ_EMPTY].digest, MT_OCI_LAYER, objects[OBJ_SOURCE].len,
	    objects[OBJ_SOURCE].digest, MT_OCI, objects[OBJ_OCI].len,
	    objects[OBJ_OCI].digest);
	expect(strcmp(manifest_json[2], want) == 0 && strcmp(
	    objects[OBJ_EMPTY].digest, "sha256:44136fa355b3678a1146ad16f7e8649"
	    "e94fb4fc21fe77e8310c060f61caaff8a") == 0,
	    "the source artifact manifest, byte for byte; the empty config");
}

static void test_image(void)
{
	static unsigned char fake[1000];
	unsigned char *h;
	unsigned sum = 0;
	char cs[8], want[1024];
	int i;

	memset(fake, 0x5a, sizeof fake);
	self_bin = fake;
	self_len = sizeof fake;
	build_image();
	h = layer;
	expect(layer_len == 512 + 1024 + 1024, "layer: header, padded data, end");
	for (i = 0; i < 512; i++)
		sum += i >= 148 && i < 156 ? ' ' : h[i];
	snprintf(cs, sizeof cs, "%06o", sum);
	expect(memcmp(h + 148, cs, 6) == 0 && h[154] == 0 && h[155] == ' ',
	    "tar header checksum");
	expect(memcmp(h + 124, "00000001750", 11) == 0, "tar size field in octal");
	expect(strstr(config_json, objects[OBJ_LAYER].digest) != NULL,
	    "config diff_ids name the layer digest");
	expect(strstr(manifest_json[0], objects[OBJ_CONFIG].digest) != NULL &&
	    strstr(manifest_json[1], objects[OBJ_CONFIG].digest) != NULL,
	    "both manifests name the config");
	snprintf(want, sizeof want, "{\"schemaVersion\":2,\"mediaType\":"
	    "\"%s\",\"config\":{\"mediaType\":\"application/vnd.oci.image."
	    "config.v1+json\",\"size\":%zu,\"digest\":\"%s\"},\"layers\":[{"
	    "\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":"
	    "%zu,\"digest\":\"%s\"}]}", MT_OCI, objects[OBJ_CONFIG].len,
	    objects[OBJ_CONFIG].digest, layer_len, objects[OBJ_LAYER].digest);
	expect(strcmp(manifest_json[1], want) == 0,
	    "the OCI manifest is the image-spec document, byte for byte");
	test_source();
}

/* Every status has a code and a reason; errors have a body, registry
 * errors a JSON one naming their code; every head carries Date. */
static void test_statuses(void)
{
	int st, bad = 0, heads = 0;
	struct reply r;
	char out[MAX_RESPONSE_HEAD], want[128];
	uint64_t blen;

	for (st = 0; st < S_COUNT; st++) {
		const struct status_def *d = &statuses[st];

		bad += d->code < 200 || d->code > 599 || !d->reason ||
		    !*d->reason || (d->code >= 400) != (d->body != NULL) ||
		    (d->error && !strstr(d->body, d->error)) ||
		    (d->close && d->code < 400);
		memset(&r, 0, sizeof r);
		r.st = (enum status)st;
		r.obj = &objects[OBJ_LAYER];
		r.last = 9;
		snprintf(want, sizeof want, "HTTP/1.1 %d %s\r\nDate: ", d->code,
		    d->reason);
		heads += render_head(out, sizeof out, &r, 0, &blen) > 0 &&
		    strncmp(out, want, strlen(want)) == 0;
	}
	expect(bad == 0, "status table: codes, reasons, bodies, error codes");
	expect(heads == S_COUNT, "every status renders a head with Date");
	expect(field_id("Content-LENGTH", 14) == F_CONTENT_LENGTH &&
	    field_id("content-lengths", 15) == F_OTHER &&
	    field_id("hosts", 5) == F_OTHER, "field lookup ignores case only");
}

static void test_numbers(void)
{
	uint64_t v = 7;
	char out[8];

	expect(parse_dec("0", 1, &v) == 0 && v == 0 &&
	    parse_dec("18446744073709551615", 20, &v) == 0 && v == UINT64_MAX,
	    "decimal numbers up to 2^64-1");
	expect(parse_dec("99999999999999999999", 20, &v) == 0 &&
	    v == UINT64_MAX, "a decimal past 64 bits saturates");
	expect(parse_dec("", 0, &v) < 0 && parse_dec("1a", 2, &v) < 0 &&
	    parse_dec("+1", 2, &v) < 0 && parse_dec("-1", 2, &v) < 0,
	    "only digits are a decimal number");
	expect(pct_decode("a%41+", 5, out, sizeof out, 1) == 3 &&
	    strcmp(out, "aA+") == 0, "percent-decoding keeps '+'");
	expect(pct_decode("a%2Fb", 5, out, sizeof out, 0) == 3 &&
	    pct_decode("a%2fb", 5, out, sizeof out, 1) < 0,
	    "an escaped '/' is refused in a path only");
	expect(pct_decode("%01", 3, out, sizeof out, 0) == 1 &&
	    pct_decode("%01", 3, out, sizeof out, 1) < 0,
	    "escaped control bytes are refused in a path only");
	expect(pct_decode("%00", 3, out, sizeof out, 0) < 0 &&
	    pct_decode("%4", 2, out, sizeof out, 0) < 0 &&
	    pct_decode("%zz", 3, out, sizeof out, 0) < 0,
	    "%00 and bad escapes are refused");
	expect(pct_decode("abcdefgh", 8, out, sizeof out, 0) < 0 &&
	    pct_decode("abcdefg", 7, out, sizeof out, 0) == 7,
	    "decoding stops at the output's size");
}

/* The timeout lists: each stays sorted, poll()'s timeout is the nearest
 * deadline, expiry closes exactly the connections past theirs, and pfds[]
 * stays dense. A head that times out gets a 408 with Date. */
static void test_timeouts(void)
{
	enum { N = 8 };
	static struct pollfd pf[N + 2];
	static struct conn *sc[N + 2];
	struct conn *cs[N];
	char got[512];
	int i, sv[2], dense = 1;
	ssize_t n;

	pfds = pf;
	slot_conn = sc;
	nslots = 0;
	for (i = 0; i < T_NONE; i++)
		list_head[i].next = list_head[i].prev = &list_head[i];
	add_slot(-1);
	add_slot(-1);
	for (i = 0; i < N; i++) {   /* as conn_open() does it */
		cs[i] = calloc(1, sizeof *cs[i]);
		cs[i]->fd = -1;
		cs[i]->list = T_NONE;
		cs[i]->slot = add_slot(-1);
		slot_conn[cs[i]->slot] = cs[i];
		nconns++;
		now_ms = 100000 + i * 10;
		list_enter(cs[i], T_IDLE);
	}
	now_ms = 100000 + IDLE_TIMEOUT_MS - 100;
	expect(poll_timeout() == 100, "poll() waits for the nearest deadline");
	now_ms = 100000 + IDLE_TIMEOUT_MS + 25;
	expire_timeouts();
	expect(nconns == N - 3 && list_head[T_IDLE].next == cs[3],
	    "expiry closes exactly those past their deadline, oldest first");
	for (i = 2; i < nslots; i++)
		dense &= slot_conn[i]->slot == i && slot_conn[i]->fd == -1;
	expect(dense && nslots == N - 3 + 2, "pfds[] stays dense");
	list_enter(cs[3], T_IDLE);
	expect(list_head[T_IDLE].prev == cs[3] && list_head[T_IDLE].next == cs[4],
	    "a restarted timeout moves to the tail");

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0) {
		cs[4]->fd = sv[0];
		cs[4]->buf = malloc(sizeof *cs[4]->buf);
		memcpy(cs[4]->buf->in, "GET /v2/ HT", 11);
		cs[4]->buf->len = 11;
		list_enter(cs[4], T_HEAD);
		now_ms += HEAD_TIMEOUT_MS;
		expire_timeouts();
		n = read(sv[1], got, sizeof got - 1);
		got[n > 0 ? n : 0] = '\0';
		close(sv[1]);
	} else {
		got[0] = '\0';
	}
	expect(strncmp(got, "HTTP/1.1 408 Request Timeout\r\nDate: ", 36) == 0 &&
	    strstr(got, "Connection: close\r\n") &&
	    strstr(got, "\r\n\r\n408 request timeout\n"),
	    "a head past HEAD_TIMEOUT_MS gets a 408 with Date, then a close");
	while (list_head[T_IDLE].next != &list_head[T_IDLE])
		conn_close(list_head[T_IDLE].next);
	expect(nslots == 2 && nconns == 0, "all closed");
}

/* format_addr() of an -l address, into cap bytes */
static const char *addr(const char *listen, size_t cap)
{
	static char out[64];
	struct sockaddr_storage ss;
	socklen_t sl;

	parse_listen(listen, &ss, &sl);
	format_addr((struct sockaddr *)&ss, out, cap);
	return out;
}

/* The log's formatting: sb_fmt(), addresses, untrusted text. */
static void test_log(void)
{
	char out[64], txt[64];
	struct sb b = { out, 0, sizeof out, 0 };

	sb_fmt(&b, "%s|%u|%03u|%U|%05U", "x", 0u, 7u, UINT64_MAX, (uint64_t)0);
	expect(!b.overflow && b.len == 34 &&
	    memcmp(out, "x|0|007|18446744073709551615|00000", 34) == 0,
	    "sb_fmt: strings, numbers, zero padding, 64 bits");
	b.len = 0;
	b.cap = 5;
	sb_fmt(&b, "%u%s", 1234u, "56");
	expect(b.overflow, "sb_fmt: past its capacity it says so");

	expect(strcmp(addr("192.0.2.255:8080", 64), "192.0.2.255:8080") == 0,
	    "format_addr: IPv4");
	expect(strcmp(addr("[::ffff:10.0.0.1]:1", 64), "10.0.0.1:1") == 0,
	    "format_addr: IPv4 on [::]");
	expect(strcmp(addr("[2001:db8::1]:1", 64), "[2001:db8::1]:1") == 0,
	    "format_addr: IPv6");
	expect(strcmp(addr("192.0.2.255:8080", 8), "192.0.2") == 0,
	    "format_addr: cut to its buffer");

	log_text(txt, sizeof txt, "a\"b\\c\n", 6, 100, 1);
	expect(strcmp(txt, "\"a\\\"b\\\\c\\x0a\"") == 0,
	    "log_text: quotes, backslashes and control bytes escaped");
	log_text(txt, sizeof txt, "abcdef", 6, 3, 0);
	expect(strcmp(txt, "abc...") == 0, "log_text: shortened");
	log_text(txt, sizeof txt, NULL, 0, 3, 1);
	expect(strcmp(txt, "-") == 0, "log_text: nothing is -");
}

int main(void)
{
	update_clock();
	test_image();
	test_parser();
	test_semantics();
	test_routes();
	test_helpers();
	test_statuses();
	test_numbers();
	test_timeouts();
	test_log();
	printf("# unit: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
