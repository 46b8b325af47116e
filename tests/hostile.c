/*
 * hostile.c: table-driven hostile-client test for quinistry's HTTP/1.1 parser.
 *
 * Usage: hostile PORT     (server on 127.0.0.1:PORT)
 * Optional env (default = spec values; tests/hostile.sh reads them from
 * quinistry.c): QH_HEAD_MAX (8192), QH_TARGET_MAX (2048), QH_HEADERS_MAX (64).
 *
 * Each row: raw request bytes (explicit length, so NUL is allowed), the exact
 * status(es) expected in order, and what must happen to the connection
 * afterwards (closed by the server with a clean FIN, kept open, or either).
 * A kept-open connection is proven usable by a second request on it.
 * After EVERY row a new connection fetches the manifest, which must be 200
 * with exactly the body fetched at start.  The follow-up is folded into the
 * row's line: a row is `ok` only if the row AND its follow-up passed.
 * Diagnostics for failures are printed as `# ` lines.
 * Exit 1 if any line is `not ok`.
 */
#include "tool.h"
#include <signal.h>

#define RESP_MS 2000  /* a response must start+finish within this */
#define CLOSE_MS 2000 /* after the response, FIN must arrive within this */

static int port;
static long head_max = 8192, target_max = 2048, headers_max = 64;
static char *base_body; /* manifest body from the first fetch */
static size_t base_len;

/* ------------------------------------------------------------------ I/O */

/* a blocking connection to the server; -1 on failure (errno) */
static int connect_server(void)
{
    return dial(port, 0, 0);
}

/* write everything; split>0: pieces of `split` bytes with 2 ms pauses.
   Returns 0 or the errno of the failed write. */
static int send_split(int fd, const char *p, size_t n, size_t split)
{
    size_t off = 0;
    while (off < n) {
        size_t k = n - off;
        if (split && k > split)
            k = split;
        int e = send_all(fd, p + off, k, now_ms() + RESP_MS);
        if (e)
            return e;
        off += k;
        if (split && off < n)
            usleep(2000);
    }
    return 0;
}

/* ------------------------------------------------------------ responses */

struct resp {
    int status;
    char head[RESP_HEAD_MAX + 1];
    long clen;
    char *body;
    size_t blen;
};

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* header `name` of r: the number of such fields, the first one's value in
   out */
static int hdr_get(const struct resp *r, const char *name, char *out, size_t outlen)
{
    return head_field(r->head, strlen(r->head), name, out, outlen);
}

static void escape(const char *p, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < outlen; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r') { out[o++] = '\\'; out[o++] = 'r'; }
        else if (ch == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (ch == '\\') { out[o++] = '\\'; out[o++] = '\\'; }
        else if (ch < 0x20 || ch >= 0x7f) o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
        else out[o++] = (char)ch;
    }
    if (o + 8 >= outlen && outlen > 4) {
        memcpy(out + outlen - 4, "...", 4);
        return;
    }
    out[o] = 0;
}

/* why read_response stopped before the head was complete */
static void head_failure(const struct rbuf *c, int rc, int e, char *err, size_t errlen)
{
    char esc[200];
    escape(c->buf, c->len, esc, sizeof esc);
    if (rc == RESP_BIG)
        snprintf(err, errlen, "response head > %d bytes", RESP_HEAD_MAX + 1);
    else if (rc == RESP_EOF)
        snprintf(err, errlen, c->len ? "EOF inside response head (got \"%s\")"
                                     : "connection closed without a response", esc);
    else if (rc == RESP_ERR)
        snprintf(err, errlen, "read error %s%s%s", strerror(e),
                 c->len ? " after partial head " : "", c->len ? esc : "");
    else
        snprintf(err, errlen, c->len ? "incomplete response head within %d ms"
                                     : "no response within %d ms", RESP_MS);
}

/* what every response must carry; 0 or fills err */
static int head_ok(const struct resp *r, const struct head *h, char *err, size_t errlen)
{
    char v[256];
    if (!h->status) {
        char esc[120];
        escape(r->head, h->len > 60 ? 60 : h->len, esc, sizeof esc);
        snprintf(err, errlen, "bad status line \"%s\"", esc);
        return -1;
    }
    if (h->ncl != 1) {
        snprintf(err, errlen, "%d: %d Content-Length headers in response", r->status, h->ncl);
        return -1;
    }
    if (h->clen < 0) {
        hdr_get(r, "Content-Length", v, sizeof v);
        snprintf(err, errlen, "%d: bad Content-Length \"%s\"", r->status, v);
        return -1;
    }
    if (hdr_get(r, "Date", NULL, 0) != 1) {
        snprintf(err, errlen, "%d: response lacks Date", r->status);
        return -1;
    }
    if (hdr_get(r, "Docker-Distribution-API-Version", v, sizeof v) != 1 || strcmp(v, "registry/2.0")) {
        snprintf(err, errlen, "%d: response lacks Docker-Distribution-API-Version: registry/2.0", r->status);
        return -1;
    }
    return 0;
}

/* read one response; is_head: no body follows. Returns 0 or fills err. */
static int read_resp(struct rbuf *c, int is_head, long long deadline, struct resp *r,
                     char *err, size_t errlen)
{
    struct head h;
    memset(r, 0, sizeof *r);
    int rc = read_response(c, is_head, deadline, &h), e = errno;
    if (!h.len) {
        head_failure(c, rc, e, err, errlen);
        return -1;
    }
    memcpy(r->head, c->buf, h.len);
    r->head[h.len] = 0;
    r->status = h.status;
    r->clen = (long)h.clen;
    if (head_ok(r, &h, err, errlen))
        return -1;
    if (rc != RESP_OK) {
        snprintf(err, errlen, "%d: body truncated: %zu of %ld bytes (%s)", r->status,
                 c->len - h.len, r->clen,
                 rc == RESP_EOF ? "EOF" : rc == RESP_TIMEOUT ? "timeout" : strerror(e));
        return -1;
    }
    r->blen = (size_t)h.body;
    r->body = malloc(r->blen + 1);
    if (!r->body)
        abort();
    memcpy(r->body, c->buf + h.len, r->blen);
    r->body[r->blen] = 0;
    rb_drop(c, h.len + r->blen);
    return 0;
}

/* body has "code" : "CODE" somewhere (whitespace tolerant) */
static int json_has_code(const char *body, size_t blen, const char *code)
{
    const char *p = body, *e = body + blen;
    while ((p = memmem(p, (size_t)(e - p), "\"code\"", 6))) {
        const char *q = p + 6;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q < e && *q == ':') {
            q++;
            while (q < e && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
                q++;
            size_t cl = strlen(code);
            if ((size_t)(e - q) >= cl + 2 && q[0] == '"' && !memcmp(q + 1, code, cl) && q[cl + 1] == '"')
                return 1;
        }
        p += 6;
    }
    return 0;
}

/* nothing may follow the last response the request asked for; 0 or
   fills err */
static int extra_bytes(const struct rbuf *c, char *err, size_t errlen)
{
    if (c->len) {
        char esc[160];
        escape(c->buf, c->len, esc, sizeof esc);
        snprintf(err, errlen, "%zu extra bytes after response: \"%s\"", c->len, esc);
        return -1;
    }
    return 0;
}

/* After the last response: the server must close with a FIN (read()==0)
   within CLOSE_MS, with no extra bytes. */
static int expect_close(struct rbuf *c, char *err, size_t errlen)
{
    if (extra_bytes(c, err, errlen))
        return -1;
    long n = rb_fill(c, now_ms() + CLOSE_MS);
    if (n == 0)
        return 0;
    if (n == -2)
        snprintf(err, errlen, "connection not closed within %d ms", CLOSE_MS);
    else if (n == -1)
        snprintf(err, errlen, "connection reset (%s) instead of a clean close", strerror(errno));
    else {
        char esc[160];
        escape(c->buf, c->len, esc, sizeof esc);
        snprintf(err, errlen, "extra data instead of close: \"%s\"", esc);
    }
    return -1;
}

static const char PROBE[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";

/* kept-open connection must serve another request */
static int expect_open(struct rbuf *c, char *err, size_t errlen)
{
    if (extra_bytes(c, err, errlen))
        return -1;
    if (send_split(c->fd, PROBE, sizeof PROBE - 1, 0)) {
        snprintf(err, errlen, "connection unusable after response (write: %s)", strerror(errno));
        return -1;
    }
    struct resp r;
    char e2[400];
    if (read_resp(c, 0, now_ms() + RESP_MS, &r, e2, sizeof e2)) {
        snprintf(err, errlen, "connection should stay open but 2nd request failed: %s", e2);
        resp_free(&r);
        return -1;
    }
    int st = r.status;
    resp_free(&r);
    if (st != 200) {
        snprintf(err, errlen, "2nd request on kept-open connection got %d", st);
        return -1;
    }
    return 0;
}

static const char MANIFEST_REQ[] = "GET /v2/quinistry/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n";

/* one request on a fresh connection; returns status or -1 */
static int fetch(const char *req, size_t len, int is_head, struct resp *r, char *err, size_t errlen)
{
    int fd = connect_server();
    if (fd < 0) {
        snprintf(err, errlen, "connect: %s", strerror(errno));
        memset(r, 0, sizeof *r);
        return -1;
    }
    struct rbuf c;
    rb_open(&c, fd);
    int rc = -1;
    if (send_split(fd, req, len, 0))
        snprintf(err, errlen, "write: %s", strerror(errno));
    else if (!read_resp(&c, is_head, now_ms() + RESP_MS, r, err, errlen))
        rc = r->status;
    rb_close(&c);
    return rc;
}

static int followup(char *err, size_t errlen)
{
    struct resp r;
    char e2[400];
    int st = fetch(MANIFEST_REQ, sizeof MANIFEST_REQ - 1, 0, &r, e2, sizeof e2);
    int rc = 0;
    if (st < 0) {
        snprintf(err, errlen, "follow-up manifest GET failed: %s", e2);
        rc = -1;
    } else if (st != 200) {
        snprintf(err, errlen, "follow-up manifest GET got %d", st);
        rc = -1;
    } else if (r.blen != base_len || memcmp(r.body, base_body, base_len)) {
        snprintf(err, errlen, "follow-up manifest body differs (%zu vs %zu bytes)", r.blen, base_len);
        rc = -1;
    }
    resp_free(&r);
    return rc;
}

/* ----------------------------------------------------------------- rows */

enum { ANY = 0, OPEN, CLOSE };

struct row {
    const char *name;
    const char *req;
    size_t len;
    int st[4];         /* expected statuses in order; st[0]==0: client sends and closes, no response read */
    int alt[3];        /* other acceptable statuses for the last response */
    int conn;          /* ANY / OPEN / CLOSE after the last response */
    const char *code;  /* JSON error code required in the last response */
    const char *hdr;   /* "Name: value" required in the last response */
    unsigned head;     /* bit i: response i answers a HEAD (no body) */
    int split;         /* send in pieces of this many bytes */
    int v10;           /* HTTP/1.0 close: "Connection: close" header not required */
};

#define RQ(s) .req = (s), .len = sizeof(s) - 1
#define H "Host: x\r\n"
#define GET(path) "GET " path " HTTP/1.1\r\n" H "\r\n"
#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"

static const struct row rows[] = {
    /* --- Request line: RFC 9112 §3 (request-line = method SP request-target SP
       HTTP-version, single SP), §2.3 (HTTP-version = "HTTP/" DIGIT "." DIGIT,
       case-sensitive), §2.2 (bare CR invalid; a server SHOULD ignore at least
       one empty line before the request-line).  Spec: malformed request line,
       bare LF, bare CR, HTTP/0.9 -> 400 + close; HTTP/2.0 / 3.0 -> 505 + close.
       RFC 9110 §6.2/§2.5: an unknown minor version of 1.x is handled as 1.1;
       a major version the server does not implement -> 505 (§15.6.6). */
    {.name = "request line without version", RQ("GET /v2/quinistry/manifests/latest\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "request line with empty version (trailing SP)", RQ("GET /v2/ \r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "HTTP/0.9 simple request 'GET /\\r\\n' (nothing more sent)", RQ("GET /\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "HTTP/0.9 simple request followed by empty line", RQ("GET /\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "two spaces after method", RQ("GET  /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "two spaces before version", RQ("GET /v2/  HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "trailing space after version", RQ("GET /v2/ HTTP/1.1 \r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "leading space before method", RQ(" GET /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "tab as request-line separator", RQ("GET\t/v2/\tHTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "method only", RQ("GET\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "bare LF line endings everywhere", RQ("GET /v2/ HTTP/1.1\nHost: x\n\n"), .st = {400}, .conn = CLOSE},
    {.name = "bare LF ending one header line", RQ("GET /v2/ HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "bare LF as final empty line", RQ("GET /v2/ HTTP/1.1\r\n" H "\n"), .st = {400}, .conn = CLOSE},
    {.name = "bare CR ending request line", RQ("GET /v2/ HTTP/1.1\r" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "bare CR inside header value", RQ("GET /v2/ HTTP/1.1\r\n" H "X-A: a\rb\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "HTTP/2 connection preface", RQ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), .st = {505}, .conn = CLOSE},
    {.name = "HTTP/2.0 version in HTTP/1 syntax", RQ("GET /v2/ HTTP/2.0\r\n" H "\r\n"), .st = {505}, .conn = CLOSE},
    {.name = "HTTP/3.0 version", RQ("GET /v2/ HTTP/3.0\r\n" H "\r\n"), .st = {505}, .conn = CLOSE},
    {.name = "HTTP/0.9 as explicit version (major 0 unsupported)", RQ("GET /v2/ HTTP/0.9\r\n" H "\r\n"), .st = {505}, .conn = CLOSE},
    {.name = "version HTTP/1 (no minor)", RQ("GET /v2/ HTTP/1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "version lowercase http/1.1", RQ("GET /v2/ http/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "version HTTP/1.10 (two-digit minor)", RQ("GET /v2/ HTTP/1.10\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "version HTTP/1.1x (junk after)", RQ("GET /v2/ HTTP/1.1x\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "version HTTP/1.9 handled as HTTP/1.1", RQ("GET /v2/ HTTP/1.9\r\n" H "\r\n"), .st = {200}, .conn = OPEN},
    {.name = "empty line before request line is ignored", RQ("\r\nGET /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {200}, .conn = OPEN},
    {.name = "TLS ClientHello bytes", RQ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" "abcdefgh\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "origin-form target without leading slash", RQ("GET v2/ HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},

    /* --- Methods: RFC 9110 §9.1 (method = token, case-sensitive), §5.6.2
       (tchar), §15.6.2 (501 for an unrecognized method), §15.5.6 (405 + Allow).
       Spec: POST/PUT/PATCH/DELETE under /v2/ -> 405 UNSUPPORTED, Allow: GET, HEAD;
       other methods -> 501; a request carrying a body -> response + close.
       RFC 9110 §10.1.1: with Expect: 100-continue, a final status that can be
       decided from the head alone must be sent immediately. */
    {.name = "'@' in method", RQ("G@T /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "'{' in method", RQ("GE{T /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "NUL in method", RQ("GE\0T /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "lowercase 'get' is an unknown method", RQ("get /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {501}},
    {.name = "OPTIONS /v2/", RQ("OPTIONS /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {501}},
    {.name = "OPTIONS *", RQ("OPTIONS * HTTP/1.1\r\n" H "\r\n"), .st = {501}},
    {.name = "TRACE /v2/", RQ("TRACE /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {501}},
    {.name = "FOO /v2/", RQ("FOO /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {501}},
    /* MAX_METHOD: a method longer than any we know is refused as soon as
       it is seen, not after the head fills the buffer */
    {.name = "40-byte method, nothing after it -> 501 at once",
     RQ("ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ"), .st = {501}, .conn = CLOSE},
    {.name = "CONNECT authority-form", RQ("CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"), .st = {501}},
    {.name = "POST /v2/quinistry/blobs/uploads/ -> 405", RQ("POST /v2/quinistry/blobs/uploads/ HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"),
     .st = {405}, .code = "UNSUPPORTED", .hdr = "Allow: GET, HEAD"},
    {.name = "PUT manifest -> 405", RQ("PUT /v2/quinistry/manifests/latest HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"),
     .st = {405}, .code = "UNSUPPORTED", .hdr = "Allow: GET, HEAD"},
    {.name = "PATCH upload -> 405", RQ("PATCH /v2/quinistry/blobs/uploads/abc HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"),
     .st = {405}, .code = "UNSUPPORTED", .hdr = "Allow: GET, HEAD"},
    {.name = "DELETE manifest -> 405", RQ("DELETE /v2/quinistry/manifests/latest HTTP/1.1\r\n" H "\r\n"),
     .st = {405}, .code = "UNSUPPORTED", .hdr = "Allow: GET, HEAD"},
    {.name = "DELETE blob -> 405", RQ("DELETE /v2/quinistry/blobs/sha256:" Z64 " HTTP/1.1\r\n" H "\r\n"),
     .st = {405}, .code = "UNSUPPORTED", .hdr = "Allow: GET, HEAD"},
    {.name = "POST /v2/ with a 3-byte body -> 405 + close", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\nabc"),
     .st = {405}, .conn = CLOSE, .code = "UNSUPPORTED", .hdr = "Allow: GET, HEAD"},
    {.name = "POST with valid chunked body -> 405 + close",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
     .st = {405}, .conn = CLOSE, .code = "UNSUPPORTED"},
    {.name = "PUT chunked with chunk-ext and trailer -> 405 + close",
     RQ("PUT /v2/quinistry/manifests/latest HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"),
     .st = {405}, .conn = CLOSE, .code = "UNSUPPORTED"},
    {.name = "Transfer-Encoding: Chunked (coding names are case-insensitive) -> 405 + close",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"), .st = {405}, .conn = CLOSE},
    {.name = "POST with Expect: 100-continue gets 405 at once, body never sent",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n"), .st = {405}, .conn = CLOSE},
    {.name = "request smuggled in a POST body is not executed",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 30\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"), .st = {405}, .conn = CLOSE},
    {.name = "HEAD /v2/", RQ("HEAD /v2/ HTTP/1.1\r\n" H "\r\n"), .st = {200}, .conn = OPEN, .head = 1},

    /* --- Header fields: RFC 9110 §5.1 (field-name = token), §5.5 (CR, LF, NUL
       in a value: reject or replace; other CTLs are not field-vchar; HTAB and
       obs-text are allowed); RFC 9112 §5 (field-line = name ":" OWS value
       OWS), §5.1 (no whitespace between name and colon: MUST 400), §5.2
       (obs-fold: reject with 400 or replace), §2.2 (whitespace-preceded line
       before the first field: reject or ignore).  Spec: all of these -> 400 + close. */
    {.name = "'@' in header name", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Fo@o: y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "space inside header name", RQ("GET /v2/ HTTP/1.1\r\n" H "X Foo: y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "control byte in header name", RQ("GET /v2/ HTTP/1.1\r\n" H "X-\x01" "Foo: y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "non-ASCII byte in header name", RQ("GET /v2/ HTTP/1.1\r\n" H "X-\xc3\xa9: y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "empty header name", RQ("GET /v2/ HTTP/1.1\r\n" H ": y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "space before colon (Host : x)", RQ("GET /v2/ HTTP/1.1\r\nHost : x\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "tab before colon", RQ("GET /v2/ HTTP/1.1\r\n" H "X-A\t: y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "header line without colon", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "obs-fold with SP", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\r\n b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "obs-fold with HTAB", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\r\n\tb\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "whitespace line before first header", RQ("GET /v2/ HTTP/1.1\r\n Host: x\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "NUL in header value", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\0b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "0x01 in header value", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\x01" "b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "ESC in header value", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\x1b[0m\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "DEL in header value", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\x7f" "b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "NUL in Host value", RQ("GET /v2/ HTTP/1.1\r\nHost: x\0y\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "HTAB inside header value is fine", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: a\tb\r\n\r\n"), .st = {200}, .conn = OPEN},
    {.name = "obs-text (UTF-8) in header value is fine", RQ("GET /v2/ HTTP/1.1\r\n" H "X-Foo: caf\xc3\xa9\r\n\r\n"), .st = {200}, .conn = OPEN},
    {.name = "OWS around header value is fine", RQ("GET /v2/ HTTP/1.1\r\nHost:  \t x \t \r\n\r\n"), .st = {200}, .conn = OPEN},
    {.name = "header names are case-insensitive (hOsT)", RQ("GET /v2/ HTTP/1.1\r\nhOsT: x\r\n\r\n"), .st = {200}, .conn = OPEN},

    /* --- Host and target forms: RFC 9112 §3.2 (HTTP/1.1 without Host, more
       than one Host, or an invalid Host value: MUST 400; empty Host is allowed
       when the target has no authority), §3.2.2 (absolute-form MUST be
       accepted; its authority overrides Host), §9.3 / RFC 9112 Appendix C.2.2
       (HTTP/1.0: close unless keep-alive, answered with Connection: keep-alive). */
    {.name = "HTTP/1.1 without Host", RQ("GET /v2/ HTTP/1.1\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "duplicate Host (different values)", RQ("GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "duplicate Host (same value)", RQ("GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "Host with a space inside (invalid value)", RQ("GET /v2/ HTTP/1.1\r\nHost: a b\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "empty Host value is allowed", RQ("GET /v2/ HTTP/1.1\r\nHost:\r\n\r\n"), .st = {200}, .conn = OPEN},
    {.name = "HTTP/1.0 without Host is fine and closes", RQ("GET /v2/quinistry/manifests/latest HTTP/1.0\r\n\r\n"), .st = {200}, .conn = CLOSE, .v10 = 1},
    {.name = "HTTP/1.0 with Connection: keep-alive stays open",
     RQ("GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), .st = {200}, .conn = OPEN, .hdr = "Connection: keep-alive"},
    {.name = "HTTP/1.1 Connection: close is honoured", RQ("GET /v2/ HTTP/1.1\r\n" H "Connection: close\r\n\r\n"), .st = {200}, .conn = CLOSE},
    {.name = "absolute-form target", RQ("GET http://x/v2/ HTTP/1.1\r\n" H "\r\n"), .st = {200}, .conn = OPEN},
    {.name = "absolute-form target overrides a different Host", RQ("GET http://127.0.0.1/v2/quinistry/tags/list HTTP/1.1\r\nHost: other\r\n\r\n"),
     .st = {200}, .conn = OPEN},

    /* --- Message body framing: RFC 9112 §6.1 (unknown transfer coding ->
       SHOULD 501; CL together with TE -> treat as error, close), §6.3 (invalid
       or conflicting Content-Length -> 400 + close), §7.1 (chunked grammar);
       RFC 9110 §8.6 (Content-Length = 1*DIGIT), §15.5.14 (413); RFC 9110 §9.3.1
       (GET body has no semantics).  Spec: GET/HEAD carrying a body, dup/bad/
       negative CL, CL+TE -> 400 + close; TE other than chunked -> 501; CL
       > 1 MiB -> 413.  Malformed chunked bodies: the spec does not say whether
       the body is parsed before the 405 is decided, so 400 (parsed, invalid)
       and 405 (answered from the head, body discarded by lingering close) are
       both accepted: what matters is that nothing after it is executed (close). */
    {.name = "GET with a Content-Length body", RQ("GET /v2/ HTTP/1.1\r\n" H "Content-Length: 4\r\n\r\nabcd"), .st = {400}, .conn = CLOSE},
    {.name = "HEAD with a Content-Length body", RQ("HEAD /v2/ HTTP/1.1\r\n" H "Content-Length: 4\r\n\r\nabcd"), .st = {400}, .conn = CLOSE, .head = 1},
    {.name = "GET with a chunked body", RQ("GET /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "GET with Content-Length: 0 (no body) is fine", RQ("GET /v2/ HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"), .st = {200}},
    {.name = "duplicate Content-Length (same value)", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), .st = {400}, .conn = CLOSE},
    {.name = "conflicting Content-Length", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length list '3, 3'", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 3, 3\r\n\r\nabc"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length non-numeric", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: abc\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length negative", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length with plus sign", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: +3\r\n\r\nabc"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length hex", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 0x3\r\n\r\nabc"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length empty", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length:\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length '3 4'", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 3 4\r\n\r\nabcd"), .st = {400}, .conn = CLOSE},
    {.name = "Content-Length 2000000 (> 1 MiB)", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 2000000\r\n\r\nabc"), .st = {413}, .conn = CLOSE},
    {.name = "Content-Length 26 digits (overflows 64 bits, > 1 MiB)",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999999\r\n\r\nabc"), .st = {413}, .conn = CLOSE},
    {.name = "Content-Length with Transfer-Encoding: chunked",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "Transfer-Encoding: gzip", RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\nabc"), .st = {501}, .conn = CLOSE},
    {.name = "Transfer-Encoding: gzip, chunked", RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), .st = {501}, .conn = CLOSE},
    {.name = "chunked: non-hex chunk size", RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
     .st = {400}, .alt = {405}, .conn = CLOSE},
    {.name = "chunked: data longer than chunk size", RQ("PUT /v2/quinistry/manifests/latest HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n"),
     .st = {400}, .alt = {405}, .conn = CLOSE},
    {.name = "chunked: negative chunk size", RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n"),
     .st = {400}, .alt = {405}, .conn = CLOSE},
    {.name = "chunked: chunk size overflows 64 bits",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff1\r\nabc\r\n0\r\n\r\n"),
     .st = {400}, .alt = {405, 413}, .conn = CLOSE},
    {.name = "chunked: bare LF after chunk size", RQ("PUT /v2/quinistry/manifests/latest HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"),
     .st = {400}, .alt = {405}, .conn = CLOSE},
    {.name = "chunked: body followed by a smuggled request",
     RQ("POST /v2/ HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n" H "\r\n"),
     .st = {405}, .conn = CLOSE},

    /* --- Paths: RFC 3986 §2.1 (pct-encoded = "%" HEXDIG HEXDIG), §5.2.4 (dot
       segments), §6.2.2.2 (decoding unreserved %XX is equivalent).  Spec: %00,
       %2F, invalid %-escapes, '..'/'.' segments -> 400 (+ close, listed with
       the protocol errors).  Raw CTL / SP / non-ASCII bytes cannot appear in a
       request-target (RFC 9112 §3.2, RFC 3986 §2) -> malformed request line. */
    {.name = "%00 in path", RQ(GET("/v2/quinistry/manifests/lat%00est")), .st = {400}, .conn = CLOSE},
    {.name = "%2F in path", RQ(GET("/v2/quinistry%2Fmanifests/latest")), .st = {400}, .conn = CLOSE},
    {.name = "%2f (lowercase) in name", RQ(GET("/v2/library%2fquinistry/manifests/latest")), .st = {400}, .conn = CLOSE},
    {.name = "%zz invalid escape", RQ(GET("/v2/%zz")), .st = {400}, .conn = CLOSE},
    {.name = "%4 truncated escape at end", RQ(GET("/v2/quinistry/manifests/latest%4")), .st = {400}, .conn = CLOSE},
    {.name = "%4/ truncated escape mid-path", RQ(GET("/v2/%4/quinistry/manifests/latest")), .st = {400}, .conn = CLOSE},
    {.name = "lone % in path", RQ(GET("/v2/quinistry/manifests/%")), .st = {400}, .conn = CLOSE},
    {.name = "/../ segment", RQ(GET("/v2/../v2/")), .st = {400}, .conn = CLOSE},
    {.name = "/./ segment", RQ(GET("/v2/./")), .st = {400}, .conn = CLOSE},
    {.name = "'..' inside repository path", RQ(GET("/v2/quinistry/../quinistry/manifests/latest")), .st = {400}, .conn = CLOSE},
    {.name = "trailing /.. segment", RQ(GET("/v2/quinistry/manifests/..")), .st = {400}, .conn = CLOSE},
    {.name = "%2e%2e encoded dot segment", RQ(GET("/v2/%2e%2e/v2/")), .st = {400}, .conn = CLOSE},
    {.name = "raw NUL in target", RQ("GET /v2/\0 HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "raw 0x01 in target", RQ("GET /v2/\x01 HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "raw DEL in target", RQ("GET /v2/\x7f HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "raw 0xff byte in target", RQ("GET /v2/\xff HTTP/1.1\r\n" H "\r\n"), .st = {400}, .conn = CLOSE},
    {.name = "%6c (unreserved 'l') in tag decodes to latest", RQ(GET("/v2/quinistry/manifests/%6catest")), .st = {200}, .conn = OPEN},
    {.name = "query string on /v2/ is ignored", RQ(GET("/v2/?a=b&c")), .st = {200}, .conn = OPEN},

    /* --- Registry errors: OCI distribution spec ("Error Codes" table, name and
       reference grammar, digest grammar of the OCI image spec: sha256 encoded
       part = 64 lowercase hex), docker/distribution: names longer than 255
       characters are NAME_INVALID.  Spec: other repo 404 NAME_UNKNOWN; unknown
       tag/digest 404 MANIFEST_UNKNOWN; unknown blob 404 BLOB_UNKNOWN;
       malformed digest 400 DIGEST_INVALID; malformed name 400 NAME_INVALID;
       other paths 404.  These are not protocol errors: keep-alive holds. */
    {.name = "other repository -> NAME_UNKNOWN", RQ(GET("/v2/other/manifests/latest")), .st = {404}, .conn = OPEN, .code = "NAME_UNKNOWN"},
    {.name = "two-component repository -> NAME_UNKNOWN", RQ(GET("/v2/library/quinistry/manifests/latest")), .st = {404}, .conn = OPEN, .code = "NAME_UNKNOWN"},
    {.name = "other repository blob -> NAME_UNKNOWN", RQ(GET("/v2/other/blobs/sha256:" Z64)), .st = {404}, .conn = OPEN, .code = "NAME_UNKNOWN"},
    {.name = "other repository tags -> NAME_UNKNOWN", RQ(GET("/v2/other/tags/list")), .st = {404}, .conn = OPEN, .code = "NAME_UNKNOWN"},
    {.name = "unknown tag -> MANIFEST_UNKNOWN", RQ(GET("/v2/quinistry/manifests/nope")), .st = {404}, .conn = OPEN, .code = "MANIFEST_UNKNOWN"},
    {.name = "unknown manifest digest -> MANIFEST_UNKNOWN", RQ(GET("/v2/quinistry/manifests/sha256:" Z64)), .st = {404}, .conn = OPEN, .code = "MANIFEST_UNKNOWN"},
    {.name = "unknown blob -> BLOB_UNKNOWN", RQ(GET("/v2/quinistry/blobs/sha256:" Z64)), .st = {404}, .conn = OPEN, .code = "BLOB_UNKNOWN"},
    {.name = "HEAD unknown blob -> 404 without body", RQ("HEAD /v2/quinistry/blobs/sha256:" Z64 " HTTP/1.1\r\n" H "\r\n"), .st = {404}, .conn = OPEN, .head = 1},
    {.name = "short digest -> DIGEST_INVALID", RQ(GET("/v2/quinistry/blobs/sha256:abc")), .st = {400}, .conn = OPEN, .code = "DIGEST_INVALID"},
    {.name = "uppercase-hex digest -> DIGEST_INVALID",
     RQ(GET("/v2/quinistry/blobs/sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789")), .st = {400}, .conn = OPEN, .code = "DIGEST_INVALID"},
    {.name = "65-hex sha256 digest -> DIGEST_INVALID", RQ(GET("/v2/quinistry/blobs/sha256:" Z64 "0")), .st = {400}, .conn = OPEN, .code = "DIGEST_INVALID"},
    {.name = "blob reference without algorithm -> DIGEST_INVALID", RQ(GET("/v2/quinistry/blobs/notadigest")), .st = {400}, .conn = OPEN, .code = "DIGEST_INVALID"},
    {.name = "manifest digest with non-hex -> DIGEST_INVALID", RQ(GET("/v2/quinistry/manifests/sha256:xyz")), .st = {400}, .conn = OPEN, .code = "DIGEST_INVALID"},
    {.name = "uppercase repository name -> NAME_INVALID", RQ(GET("/v2/Quinistry/manifests/latest")), .st = {400}, .conn = OPEN, .code = "NAME_INVALID"},
    {.name = "name with '..' inside a component -> NAME_INVALID", RQ(GET("/v2/quin..istry/manifests/latest")), .st = {400}, .conn = OPEN, .code = "NAME_INVALID"},
    {.name = "name starting with '-' -> NAME_INVALID", RQ(GET("/v2/-quinistry/manifests/latest")), .st = {400}, .conn = OPEN, .code = "NAME_INVALID"},
    {.name = "name with '!' -> NAME_INVALID", RQ(GET("/v2/qu!nistry/manifests/latest")), .st = {400}, .conn = OPEN, .code = "NAME_INVALID"},
    {.name = "path outside /v2/ -> 404", RQ(GET("/foo")), .st = {404}, .conn = OPEN},
    {.name = "/ -> 404", RQ(GET("/")), .st = {404}, .conn = OPEN},
    {.name = "tags/list -> 200", RQ(GET("/v2/quinistry/tags/list")), .st = {200}, .conn = OPEN},

    /* --- Pipelining: RFC 9112 §9.3.2 (responses in request order); an error
       on a later request still closes after its response. */
    {.name = "valid request then pipelined garbage", RQ(GET("/v2/") "GARBAGE\r\n\r\n"), .st = {200, 400}, .conn = CLOSE},
    {.name = "valid request then pipelined NUL bytes", RQ(GET("/v2/") "\0\0\0\0\r\n\r\n"), .st = {200, 400}, .conn = CLOSE},
    {.name = "two requests, second with Connection: close",
     RQ(GET("/v2/") "GET /v2/quinistry/tags/list HTTP/1.1\r\n" H "Connection: close\r\n\r\n"), .st = {200, 200}, .conn = CLOSE},
    {.name = "HEAD then GET pipelined", RQ("HEAD /v2/quinistry/manifests/latest HTTP/1.1\r\n" H "\r\n" GET("/v2/")), .st = {200, 200}, .conn = OPEN, .head = 1},
    {.name = "404 then 200 pipelined (error responses keep the order)", RQ(GET("/v2/other/tags/list") GET("/v2/")), .st = {404, 200}, .conn = OPEN},

    /* --- Fragmented writes (TCP gives no message boundaries: RFC 9112 §2.1). */
    {.name = "request split into 3-byte writes", RQ(GET("/v2/quinistry/manifests/latest")), .st = {200}, .conn = OPEN, .split = 3},
    {.name = "request split into 1-byte writes (CR and LF apart)", RQ("GET /v2/ HTTP/1.1\r\n" H "X-A: b\r\n\r\n"), .st = {200}, .conn = OPEN, .split = 1},

    /* --- Clients that vanish: server must survive (checked by the follow-up). */
    {.name = "connect and close without sending", RQ(""), .st = {0}},
    {.name = "partial request head then close", RQ("GET /v2/quinistry/manifests/lat"), .st = {0}},
    {.name = "POST with body announced but never sent, then close", RQ("POST /v2/ HTTP/1.1\r\n" H "Content-Length: 100\r\n\r\nab"), .st = {0}},
};

/* --------------------------------------------------------------- runner */

static void run_row(const struct row *w)
{
    char why[1200] = "", got[128] = "";
    struct resp r;
    memset(&r, 0, sizeof r);
    int ok = 1, nst = 0;
    while (nst < 4 && w->st[nst])
        nst++;
    int fd = connect_server();
    if (fd < 0) {
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        ok = 0;
        goto follow;
    }
    struct rbuf c;
    rb_open(&c, fd);
    int werr = send_split(fd, w->req, w->len, (size_t)w->split);
    if (nst == 0) {
        rb_close(&c);
        usleep(20000);
        goto follow;
    }
    long long deadline = now_ms() + RESP_MS;
    for (int i = 0; i < nst && ok; i++) {
        resp_free(&r);
        char e[600];
        if (read_resp(&c, (w->head >> i) & 1, deadline, &r, e, sizeof e)) {
            snprintf(why, sizeof why, "response %d: %s%s%s", i + 1, e, werr ? "; write failed: " : "", werr ? strerror(werr) : "");
            ok = 0;
            break;
        }
        size_t gl = strlen(got);
        snprintf(got + gl, sizeof got - gl, "%s%d", i ? "," : "", r.status);
        int good = r.status == w->st[i];
        if (i == nst - 1)
            for (int k = 0; k < 3; k++)
                good |= w->alt[k] && r.status == w->alt[k];
        if (!good) {
            snprintf(why, sizeof why, "response %d: got %d, want %d", i + 1, r.status, w->st[i]);
            ok = 0;
        }
    }
    if (ok && w->code && !json_has_code(r.body ? r.body : "", r.blen, w->code)) {
        char esc[300];
        escape(r.body ? r.body : "", r.blen, esc, sizeof esc);
        snprintf(why, sizeof why, "body lacks \"code\":\"%s\": %s", w->code, esc);
        ok = 0;
    }
    if (ok && w->hdr) {
        char name[64], v[256];
        const char *colon = strchr(w->hdr, ':');
        size_t nl = (size_t)(colon - w->hdr);
        memcpy(name, w->hdr, nl);
        name[nl] = 0;
        if (hdr_get(&r, name, v, sizeof v) != 1 || strcasecmp(v, colon + 2)) {
            snprintf(why, sizeof why, "want header \"%s\"", w->hdr);
            ok = 0;
        }
    }
    char cv[256] = "";
    int has_close = hdr_get(&r, "Connection", cv, sizeof cv) && strcasestr(cv, "close");
    if (ok && w->conn == CLOSE) {
        /* RFC 9112 §9.6: the server announces the close it will make */
        char ce[400] = "";
        int closed = !expect_close(&c, ce, sizeof ce);
        int hdr_bad = !w->v10 && !has_close;
        if (!closed || hdr_bad) {
            snprintf(why, sizeof why, "close expected: %s%s%s%s", hdr_bad ? "response has " : "",
                     hdr_bad ? (cv[0] ? "'Connection: " : "no Connection header") : "", hdr_bad && cv[0] ? cv : "",
                     hdr_bad && cv[0] ? "'" : "");
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, "%s%s", hdr_bad && !closed ? "; " : "", closed ? "" : ce);
            ok = 0;
        }
    }
    if (ok && w->conn == OPEN && has_close) {
        snprintf(why, sizeof why, "response says Connection: close, want keep-alive");
        ok = 0;
    }
    if (ok && w->conn == OPEN && expect_open(&c, why, sizeof why))
        ok = 0;
    rb_close(&c);
follow:;
    char fw[400] = "";
    int fok = !followup(fw, sizeof fw);
    if (!ok || !fok) {
        char req[400];
        escape(w->req, w->len, req, sizeof req);
        printf("# request: \"%s\" (%zu bytes)\n", req, w->len);
        if (r.head[0]) {
            char rh[600];
            escape(r.head, strlen(r.head), rh, sizeof rh);
            printf("# last response head: \"%s\"\n", rh);
        }
    }
    const char *cs = w->conn == CLOSE ? ", closed" : w->conn == OPEN ? ", kept open" : "";
    if (ok && fok)
        report(1, "%s: %s%s; follow-up manifest 200", w->name, nst ? got : "no response expected", cs);
    else
        report(0, "%s: %s%s%s", w->name, ok ? "" : why, (!ok && !fok) ? "; " : "", fok ? "" : fw);
    resp_free(&r);
}

/* ---------------------------------------------------- dynamic rows */

static char *pad(char *p, char ch, size_t n)
{
    memset(p, ch, n);
    return p + n;
}

static struct row dyn[32];
static int ndyn;

static void add(const char *name, char *req, size_t len, int st, int alt, int conn, const char *code)
{
    struct row *w = &dyn[ndyn++];
    memset(w, 0, sizeof *w);
    w->name = strdup(name);
    w->req = req;
    w->len = len;
    w->st[0] = st;
    w->alt[0] = alt;
    w->conn = conn;
    w->code = code;
}

/* build "GET <target> HTTP/1.1\r\nHost: x\r\n<extra>\r\n" */
static char *mkreq(const char *tpre, char tch, size_t tn, const char *tpost, const char *extra, size_t *len)
{
    size_t cap = strlen(tpre) + tn + strlen(tpost) + strlen(extra) + 64;
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "GET %s", tpre);
    p = pad(p, tch, tn);
    p += sprintf(p, "%s HTTP/1.1\r\nHost: x\r\n%s\r\n", tpost, extra);
    *len = (size_t)(p - b);
    return b;
}

static void build_dynamic(const char *config_digest)
{
    char name[200];
    size_t len;
    char *r;

    /* Limits (spec: head max -> 431, target max -> 414, header count -> 431;
       RFC 6585 §5 for 431, RFC 9110 §15.5.15 for 414). */
    char *big = malloc(4096 + 16);
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'v', 4096);
    memcpy(big + 7 + 4096, "\r\n", 3);
    r = mkreq("/v2/", 'a', 0, "", big, &len);
    add("4 KiB header value is fine", r, len, 200, 0, OPEN, NULL);

    /* whole head sized relative to the limit */
    for (int over = 0; over <= 1; over++) {
        long want = over ? head_max + 200 : head_max - 200;
        long fixed = (long)strlen("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n");
        char *extra = malloc((size_t)want + 16);
        memcpy(extra, "X-Pad: ", 7);
        memset(extra + 7, 'p', (size_t)(want - fixed));
        strcpy(extra + 7 + (want - fixed), "\r\n");
        r = mkreq("/v2/", 'a', 0, "", extra, &len);
        snprintf(name, sizeof name, "request head of %zu bytes (limit %ld)", len, head_max);
        add(name, r, len, over ? 431 : 200, 0, over ? CLOSE : OPEN, NULL);
        free(extra);
    }
    /* many header lines of moderate size, under the count limit, over the size limit */
    {
        int n = (int)(headers_max / 2);
        size_t each = (size_t)(head_max / n) + 40;
        char *extra = malloc((size_t)n * (each + 16) + 1), *p = extra;
        for (int i = 0; i < n; i++) {
            p += sprintf(p, "X-H%d: ", i);
            p = pad(p, 'h', each);
            p += sprintf(p, "\r\n");
        }
        *p = 0;
        r = mkreq("/v2/", 'a', 0, "", extra, &len);
        snprintf(name, sizeof name, "%d headers totalling %zu bytes of head", n + 1, len);
        add(name, r, len, 431, 0, CLOSE, NULL);
        free(extra);
    }
    /* header count: exactly the max (Host included) is fine, one more is 431, 200 is 431 */
    long counts[3] = {headers_max, headers_max + 1, 200};
    for (int k = 0; k < 3; k++) {
        char *extra = malloc((size_t)counts[k] * 16 + 1), *p = extra;
        for (long i = 1; i < counts[k]; i++)
            p += sprintf(p, "X-H%ld: v\r\n", i);
        *p = 0;
        r = mkreq("/v2/", 'a', 0, "", extra, &len);
        snprintf(name, sizeof name, "%ld header lines incl. Host (limit %ld)", counts[k], headers_max);
        add(name, r, len, k ? 431 : 200, 0, k ? CLOSE : OPEN, NULL);
        free(extra);
    }
    /* target length */
    size_t qlen = strlen("/v2/?pad=");
    r = mkreq("/v2/?pad=", 'q', (size_t)target_max - 16 - qlen, "", "", &len);
    snprintf(name, sizeof name, "target of %ld bytes (limit %ld) is fine", target_max - 16, target_max);
    add(name, r, len, 200, 0, OPEN, NULL);
    r = mkreq("/v2/?pad=", 'q', (size_t)target_max + 16 - qlen, "", "", &len);
    snprintf(name, sizeof name, "target of %ld bytes (limit %ld) -> 414", target_max + 16, target_max);
    add(name, r, len, 414, 0, CLOSE, NULL);
    r = mkreq("/v2/", 'a', 3000, "", "", &len);
    add("target /v2/ + 3000 bytes -> 414", r, len, 414, 0, CLOSE, NULL);
    r = mkreq("/v2/", 'a', (size_t)head_max + 2000, "", "", &len);
    snprintf(name, sizeof name, "target longer than the whole head limit (%zu bytes) -> 414 or 431", len);
    add(name, r, len, 414, 431, CLOSE, NULL);

    /* absurd names and digests (OCI distribution spec grammar) */
    r = mkreq("/v2/", 'a', 1500, "/manifests/latest", "", &len);
    add("1500-char repository name -> NAME_INVALID", r, len, 400, 0, OPEN, "NAME_INVALID");
    {
        /* 400 components "a/a/a/..." */
        char *t = malloc(1000), *p = t;
        for (int i = 0; i < 400; i++)
            p += sprintf(p, "%sa", i ? "/" : "");
        *p = 0;
        size_t cap = strlen(t) + 100;
        r = malloc(cap);
        len = (size_t)snprintf(r, cap, "GET /v2/%s/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n", t);
        add("799-char name of 400 components -> NAME_INVALID", r, len, 400, 0, OPEN, "NAME_INVALID");
        free(t);
    }
    long hexn = target_max - (long)strlen("/v2/quinistry/blobs/sha256:") - 16;
    r = mkreq("/v2/quinistry/blobs/sha256:", 'a', (size_t)hexn, "", "", &len);
    snprintf(name, sizeof name, "blob digest with %ld hex chars -> DIGEST_INVALID", hexn);
    add(name, r, len, 400, 0, OPEN, "DIGEST_INVALID");
    hexn = target_max - (long)strlen("/v2/quinistry/manifests/sha256:") - 16;
    r = mkreq("/v2/quinistry/manifests/sha256:", 'b', (size_t)hexn, "", "", &len);
    snprintf(name, sizeof name, "manifest digest with %ld hex chars -> DIGEST_INVALID", hexn);
    add(name, r, len, 400, 0, OPEN, "DIGEST_INVALID");
    r = mkreq("/v2/quinistry/blobs/sha256:", 'c', (size_t)target_max * 2, "", "", &len);
    snprintf(name, sizeof name, "blob digest with %ld hex chars -> 414", target_max * 2);
    add(name, r, len, 414, 0, CLOSE, NULL);

    if (config_digest) {
        size_t cap = 200;
        r = malloc(cap);
        len = (size_t)snprintf(r, cap, "HEAD /v2/quinistry/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", config_digest);
        add("HEAD config blob -> 200 without body", r, len, 200, 0, OPEN, NULL);
        dyn[ndyn - 1].head = 1;
        r = malloc(cap);
        char up[100];
        snprintf(up, sizeof up, "%s", config_digest);
        for (char *p = up + 7; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 32);
        len = (size_t)snprintf(r, cap, "GET /v2/quinistry/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", up);
        add("config digest in uppercase hex -> DIGEST_INVALID", r, len, 400, 0, OPEN, "DIGEST_INVALID");
        r = malloc(cap);
        len = (size_t)snprintf(r, cap, "GET /v2/quinistry/blobs/%s/ HTTP/1.1\r\nHost: x\r\n\r\n", config_digest);
        add("config digest with trailing slash -> not 200", r, len, 404, 400, OPEN, NULL);
    }
}

/* ------------------------------------------------------- special tests */

static int ref_status(const char *req, struct resp *r)
{
    char e[400];
    int st = fetch(req, strlen(req), 0, r, e, sizeof e);
    if (st < 0)
        printf("# %s\n", e);
    return st;
}

static void test_pipeline50(void)
{
    const char *reqs[4] = {
        "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v2/quinistry/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /v2/quinistry/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v2/quinistry/tags/list HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    struct resp ref[4];
    memset(ref, 0, sizeof ref);
    char why[600] = "";
    int ok = 1;
    for (int k = 0; k < 4; k++)
        if (k != 2 && ref_status(reqs[k], &ref[k]) != 200) {
            snprintf(why, sizeof why, "reference fetch %d failed", k);
            ok = 0;
        }
    int fd = ok ? connect_server() : -1;
    if (ok && fd < 0) {
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        ok = 0;
    }
    if (ok) {
        char *all = malloc(50 * 80), *p = all;
        for (int i = 0; i < 50; i++)
            p += sprintf(p, "%s", reqs[i % 4]);
        struct rbuf c;
        rb_open(&c, fd);
        send_split(fd, all, (size_t)(p - all), 0);
        free(all);
        long long deadline = now_ms() + 5000;
        for (int i = 0; i < 50 && ok; i++) {
            struct resp r;
            char e[400];
            int k = i % 4;
            if (read_resp(&c, k == 2, deadline, &r, e, sizeof e)) {
                snprintf(why, sizeof why, "response %d: %s", i + 1, e);
                ok = 0;
            } else if (r.status != 200) {
                snprintf(why, sizeof why, "response %d: status %d", i + 1, r.status);
                ok = 0;
            } else if (k == 2 ? (size_t)r.clen != ref[1].blen
                              : (r.blen != ref[k].blen || memcmp(r.body, ref[k].body, r.blen))) {
                snprintf(why, sizeof why, "response %d: body/length does not match request %d (out of order?)", i + 1, i + 1);
                ok = 0;
            }
            resp_free(&r);
        }
        rb_close(&c);
    }
    for (int k = 0; k < 4; k++)
        resp_free(&ref[k]);
    char fw[400] = "";
    int fok = !followup(fw, sizeof fw);
    if (ok && fok)
        report(1, "pipelining: 50 requests (GET/GET/HEAD/GET mix) in one write -> 50 responses in order; follow-up manifest 200");
    else
        report(0, "pipelining: 50 requests in one write: %s %s", why, fw);
}

/* the next response on c is 200 with the manifest fetched at start; 0 or
   fills why */
static int manifest_answer(struct rbuf *c, char *why, size_t whylen)
{
    struct resp r;
    int rc = read_resp(c, 0, now_ms() + RESP_MS, &r, why, whylen);
    if (!rc && (r.status != 200 || r.blen != base_len || memcmp(r.body, base_body, base_len))) {
        snprintf(why, whylen, "got %d / %zu bytes", r.status, r.blen);
        rc = -1;
    }
    resp_free(&r);
    return rc;
}

static void send_bytewise(int fd)
{
    for (size_t i = 0; i < sizeof MANIFEST_REQ - 1; i++) {
        send_split(fd, MANIFEST_REQ + i, 1, 0);
        usleep(3000);
    }
}

static void send_then_shut(int fd)
{
    send_split(fd, MANIFEST_REQ, sizeof MANIFEST_REQ - 1, 0);
    shutdown(fd, SHUT_WR);
}

/* the manifest request, sent by `how`, gets the manifest; close_after:
   and then the server closes */
static void test_manifest_sent(void (*how)(int), int close_after, const char *what)
{
    char why[600] = "";
    int ok = 0;
    int fd = connect_server();
    if (fd >= 0) {
        struct rbuf c;
        rb_open(&c, fd);
        how(fd);
        ok = !manifest_answer(&c, why, sizeof why) &&
             !(close_after && expect_close(&c, why, sizeof why));
        rb_close(&c);
    }
    report(ok, "%s%s%s", what, ok ? "" : ": ", why);
}

static void test_abort(const char *layer_digest)
{
    char why[600] = "";
    int ok = 1;
    if (!layer_digest) {
        report(0, "client resets mid-body: no layer digest in manifest");
        return;
    }
    for (int round = 0; round < 20 && ok; round++) {
        int fd = connect_server();
        if (fd < 0) {
            snprintf(why, sizeof why, "connect: %s", strerror(errno));
            ok = 0;
            break;
        }
        char req[300];
        int n = snprintf(req, sizeof req, "GET /v2/quinistry/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", layer_digest);
        send_split(fd, req, (size_t)n, 0);
        char b[4096];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, RESP_MS) == 1)
            if (read(fd, b, sizeof b) < 0) {
            }
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd); /* RST */
    }
    if (ok && followup(why, sizeof why))
        ok = 0;
    report(ok, "20 clients reset (RST) mid-way through the layer blob; follow-up manifest 200%s%s", ok ? "" : ": ", why);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
        fprintf(stderr, "usage: hostile PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *e;
    if ((e = getenv("QH_HEAD_MAX")) && atol(e) > 0)
        head_max = atol(e);
    if ((e = getenv("QH_TARGET_MAX")) && atol(e) > 0)
        target_max = atol(e);
    if ((e = getenv("QH_HEADERS_MAX")) && atol(e) > 0)
        headers_max = atol(e);

    struct resp r;
    char err[400];
    int st = fetch(MANIFEST_REQ, sizeof MANIFEST_REQ - 1, 0, &r, err, sizeof err);
    if (st != 200) {
        report(0, "baseline GET /v2/quinistry/manifests/latest: %s", st < 0 ? err : "not 200");
        return 1;
    }
    base_body = r.body;
    base_len = r.blen;
    report(1, "baseline GET /v2/quinistry/manifests/latest -> 200 (%zu bytes)", base_len);
    char *config = digest_after(base_body, "\"config\"");
    char *layer = digest_after(base_body, "\"layers\"");
    printf("# limits: head %ld, target %ld, headers %ld; config %s; layer %s\n", head_max, target_max, headers_max,
           config ? config : "?", layer ? layer : "?");

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        run_row(&rows[i]);
    build_dynamic(config);
    for (int i = 0; i < ndyn; i++)
        run_row(&dyn[i]);
    test_pipeline50();
    test_manifest_sent(send_bytewise, 0,
                       "manifest request sent 1 byte per write (3 ms apart) -> "
                       "200 with the manifest");
    test_manifest_sent(send_then_shut, 1,
                       "client half-closes (SHUT_WR) right after the request -> "
                       "still gets 200 + manifest, then server closes");
    test_abort(layer);
    printf("# hostile: %zu table rows + %d generated rows + 4 special tests, %d failed\n",
           sizeof rows / sizeof rows[0], ndyn, failures);
    return failures ? 1 : 0;
}
