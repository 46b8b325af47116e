/*
 * quinistry - a Docker registry quine.
 *
 * At start-up the program reads its own executable (/proc/self/exe), wraps
 * it in a container image made in memory (one uncompressed tar layer that
 * holds the binary as /quinistry, a config JSON, a Docker and an OCI
 * manifest) and serves that image as quinistry:latest over the pull side of
 * the OCI Distribution Specification v1.1 (the Docker Registry HTTP API V2).
 * Pull it, run it, and the container serves the very same image again: same
 * bytes, same digests, at every generation, because everything it serves is
 * a function of the binary's bytes alone.
 *
 * Endpoints (all GET and HEAD; nothing can be pushed, the registry is
 * read-only by design):
 *   /v2/                                   API version check: 200 {}
 *   /v2/quinistry/manifests/<tag|digest>   tag "latest"; the Docker, OCI
 *                                          and source manifests by digest
 *   /v2/quinistry/blobs/<digest>           configs, layer, source; ranges
 *   /v2/quinistry/tags/list?n=&last=       {"name":"quinistry","tags":[..]}
 *   /v2/_catalog?n=&last=                  {"repositories":["quinistry"]}
 *   /v2/quinistry/referrers/<digest>       an OCI image index: for the
 *                                          OCI manifest, the source artifact
 * The binary carries its own source (quinistry.c, sha256.c, sha256.h, the
 * Makefile), served as an OCI 1.1 artifact whose subject is the image:
 * rebuilt with the same toolchain, it makes this binary byte for byte.
 *
 * Build: `make` (static, musl-gcc when present), then `./quinistry`, or
 * `./quinistry export > quinistry.tar` to write the image for docker load,
 * podman load or ctr images import, or `./quinistry source | tar x`.
 *
 * Design: libc only, one thread, one poll() loop over every connection,
 * non-blocking sockets, HTTP/1.1 parsed by hand. Linux-specific where it
 * pays: /proc/self/exe, accept4(), deferred accept, socket options that
 * accepted sockets inherit.
 * The file reads top to bottom: limits, types, utilities, the image, HTTP
 * parsing, request semantics, routes, the connection state machine, the
 * event loop, main.
 */
#define _GNU_SOURCE /* accept4(), pipe2(), MSG_MORE, TCP_QUICKACK */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

#define VERSION "1.0.0"

/* ==== Limits ====
 *
 * Every bound in one place: nothing a client sends may make the server
 * allocate, block or wait without limit.
 */

/* One buffer per head (clients send < 1 KiB); 431 past it (RFC 6585 5) */
#define MAX_HEAD 8192
/* Our longest route is ~110 bytes (RFC 9112 3); 414 past it */
#define MAX_TARGET 2048
#define MAX_HEADERS 64          /* fields per request; 431 past it */
#define MAX_METHOD 16           /* ours are at most 6 bytes; 501 past it */
#define MAX_NAME 255            /* distribution-spec "Pulling manifests" */
/* A body is never read: answered, then closed; 413 past this */
#define MAX_BODY (1024 * 1024)
/* -c: an idle connection costs ~150 bytes, a busy one ~10 KiB more */
#define DEFAULT_MAX_CONNS 16384
#define HARD_MAX_CONNS (1 << 20)
#define FD_RESERVE 16           /* descriptors for listener, pipe, stdio */
/* A head's first byte to its last, however it trickles (slowloris): 408 */
#define HEAD_TIMEOUT_MS 10000
/* -t: between requests; behind a load balancer, above the balancer's */
#define IDLE_TIMEOUT_MS 60000
#define MAX_IDLE_TIMEOUT_S 3600
#define WRITE_TIMEOUT_MS 10000  /* a response that makes no progress */
/* Draining input after our last response (RFC 9112 9.6, see conn_send) */
#define LINGER_TIMEOUT_MS 2000
#define SHUTDOWN_GRACE_MS 500   /* SIGTERM: for responses under way */
#define ACCEPT_BURST 128        /* per pass: a flood cannot starve others */
#define ACCEPT_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define LISTEN_BACKLOG 4096
/* TCP_DEFER_ACCEPT: a connection comes with its request (`make bench`
 * 2026-11-30: ~30% less CPU per new connection); a silent one after 1 s */
#define DEFER_ACCEPT_S 1
/* Per connection: autotuned, clients that never read pin megabytes */
#define SNDBUF_BYTES (128 * 1024)
#define MAX_RESPONSE_HEAD 1024  /* ours are under 600 bytes */
#define SPARE_BUFS 64           /* buffers kept for reuse (see buf_get) */
#define LOG_BUF (64 * 1024)     /* log lines gathered per loop pass */
#define LOG_TARGET_MAX 200      /* longer targets are shortened in the log */
#define LOG_UA_MAX 120          /* and so are User-Agents */
#define MAX_SELF (64 * 1024 * 1024) /* a larger executable is not us */
#define MAX_JSON 2048           /* config and manifests are ~500 bytes */

/* ==== Types ====
 *
 * An object is anything served with a digest, its fixed fields rendered at
 * start-up. A request points into its connection's buffer, which exists
 * only while a request or response is under way.
 */

/* A string literal and its length, counted by the compiler. */
#define S(lit) (lit), (sizeof(lit) - 1)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum {
	OBJ_BASE, OBJ_DOCKER, OBJ_OCI, OBJ_CONFIG, OBJ_LAYER, OBJ_TAGS,
	OBJ_TAGS_EMPTY, OBJ_CATALOG, OBJ_CATALOG_EMPTY, OBJ_REFERRERS,
	OBJ_SOURCE_MANIFEST, OBJ_EMPTY, OBJ_SOURCE, OBJ_REFERRERS_SOURCE,
	OBJ_COUNT
};

struct object {
	const char *what;           /* for the log: manifest, config, layer.. */
	const unsigned char *data;
	size_t len;
	int ranges;                 /* blobs answer Range requests */
	char digest[72];            /* "sha256:<hex>" */
	char fields[320];           /* Content-Type..ETag, rendered once */
	size_t fields_len;
};

enum status {
	S_OK, S_PARTIAL, S_NOT_MODIFIED, S_BAD_REQUEST, S_NAME_INVALID,
	S_DIGEST_INVALID, S_PAGINATION, S_NOT_FOUND, S_NAME_UNKNOWN,
	S_MANIFEST_UNKNOWN, S_BLOB_UNKNOWN, S_UNSUPPORTED, S_TIMEOUT,
	S_TOO_LARGE, S_URI_TOO_LONG, S_RANGE, S_HEAD_TOO_LARGE,
	S_NOT_IMPLEMENTED, S_VERSION, S_COUNT
};

struct header {
	const char *name, *value;
	size_t name_len, value_len;
};

struct request {
	const char *method, *target;
	size_t method_len, target_len;
	int minor;                  /* HTTP/1.<minor> */
	size_t nheaders;
	struct header headers[MAX_HEADERS];
	enum status status;         /* when parsing fails: the answer */
};

/* The fields we act on; names are case-insensitive (RFC 9110 5.1). */
enum {
	F_HOST, F_CONTENT_LENGTH, F_TRANSFER_ENCODING, F_CONNECTION, F_ACCEPT,
	F_RANGE, F_IF_NONE_MATCH, F_IF_RANGE, F_USER_AGENT, F_OTHER
};

/* What routing and framing need from the fields, gathered in one pass. */
struct reqinfo {
	int method;                 /* index into methods[], or -1 */
	int keep;                   /* keep the connection open afterwards */
	int has_body;
	int accept_oci, accept_docker;
	/* counted while reading the fields */
	int hosts, lengths, te, conn_close, conn_keep, have_accept;
	uint64_t clen;
	int spec[2], q[2];          /* Accept: best match per manifest type */
	struct header field[F_OTHER]; /* the last of each field we know */
};

/* What to answer: a status and, for content, the object and its range. */
struct reply {
	enum status st;
	const struct object *obj;
	uint64_t first, last;       /* byte range of obj for 206 */
	int by_tag;                 /* negotiated: add Vary: Accept */
	int allow;                  /* add Allow: GET, HEAD (405) */
	int filters;                /* add OCI-Filters-Applied */
};

/* READ a head, SEND a response, LINGER: shut down, draining until EOF */
enum { C_READ, C_SEND, C_LINGER };
/* Timeout lists, each oldest first: a list's nearest deadline is its head. */
enum { T_HEAD, T_IDLE, T_WRITE, T_LINGER, T_NONE };

struct iobuf {
	size_t len;                 /* request bytes in in[] */
	char out[MAX_RESPONSE_HEAD];
	char log_method[4 * MAX_METHOD + 8];    /* for the log line, kept */
	char log_target[4 * LOG_TARGET_MAX + 8]; /* till the response is out */
	char log_ua[4 * LOG_UA_MAX + 8];
	const char *log_what;
	int log_status;
	char in[MAX_HEAD];
};

struct conn {
	int fd;
	int slot;                   /* index in pfds[] */
	unsigned char state, list, keep;
	unsigned char linger;       /* unread input may follow: drain on close */
	union {                     /* the client's address */
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} peer;
	int64_t since;              /* when the current timeout began, ms */
	int64_t start_us;           /* the request's first byte, for the log */
	struct conn *prev, *next;   /* its timeout list, or free_conns */
	struct iobuf *buf;
	size_t out_len, out_off;    /* response head in buf->out */
	const unsigned char *body;
	size_t body_len, body_off;
};

/* ==== Global state ====
 *
 * One process serves one image: the image, the connection table and the
 * loop's clock are file-scope.
 */

static unsigned char *self_bin;
static size_t self_len;
static unsigned char *layer;
static size_t layer_len;
static char config_json[MAX_JSON], manifest_json[3][MAX_JSON];
static char referrers_json[MAX_JSON];
static struct object objects[OBJ_COUNT];

static int opt_quiet;
static long opt_max_conns = DEFAULT_MAX_CONNS;

static int64_t now_ms, now_us;      /* monotonic, cached once per pass */
static time_t now_wall;             /* for Date and the log */
static char date_field[64];
static size_t date_len;

static struct pollfd *pfds;         /* [0] listener, [1] signal pipe, conns */
static struct conn **slot_conn;     /* the connection of each pfds[] slot */
static int nslots;
static long nconns;
static struct conn list_head[T_NONE];   /* sentinels of the timeout lists */
static int64_t list_timeout[T_NONE] = {
	HEAD_TIMEOUT_MS, IDLE_TIMEOUT_MS, WRITE_TIMEOUT_MS, LINGER_TIMEOUT_MS
};
static int listen_fd = -1;
static int64_t accept_resume;       /* listener paused until then (0: not) */
static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t stop_requested; /* the signal's number */

/* Closed connections and spare buffers are kept for reuse: malloc() and
 * free() per connection cost ~1,600 instructions, and freeing a buffer
 * costs musl a madvise() call. `make bench` 2026-12-01, server CPU per
 * HEAD: 13.4 us without the spare buffers, 11.5 us with them. */
static struct conn *free_conns;
static struct iobuf *spare[SPARE_BUFS];
static int nspare;
static char log_buf[LOG_BUF];
static size_t log_len;

/* ==== Utilities ====
 *
 * A bounded string builder, the JSON emitter, the clock, the parsers every
 * part shares and the request log.
 */

/* A bounded string builder for the response head, and on it a printf()
 * of our own for the log line: %s a string, %u an unsigned, %U a
 * uint64_t; %0Nu and %0NU give at least N digits. */
struct sb {
	char *p;
	size_t len, cap;
	int overflow;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_str(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_num(struct sb *b, uint64_t v, int digits)
{
	char tmp[24];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v || (i > 0 && sizeof tmp - i < (size_t)digits));
	sb_put(b, tmp + i, sizeof tmp - i);
}

static void sb_fmt(struct sb *b, const char *fmt, ...)
{
	const char *p = fmt, *s;
	int digits;
	va_list ap;

	va_start(ap, fmt);
	for (;;) {
		for (s = p; *p && *p != '%'; p++)
			;
		sb_put(b, s, (size_t)(p - s));
		if (!*p++)
			break;
		digits = *p == '0' ? p[1] - '0' : 1;
		p += *p == '0' ? 2 : 0;
		if (*p == 's') {
			sb_str(b, va_arg(ap, const char *));
		} else {
			sb_num(b, *p == 'U' ? va_arg(ap, uint64_t) :
			    va_arg(ap, unsigned), digits);
		}
		p++;
	}
	va_end(ap);
}

/* Start-up errors: the message and, for a usage error (2), a hint. */
static void die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("quinistry: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(status == 2 ? "\ntry 'quinistry --help'\n" : "\n", stderr);
	exit(status);
}

/* JSON from a printf template: fixed key order, no whitespace, so the
 * digest is byte-stable. Our values need no escaping. */
static size_t json_fmt(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		die(1, "JSON document too large");
	return (size_t)n;
}

/* Once per loop pass. Date: RFC 9110 6.6.1, as an IMF-fixdate (5.6.7) */
static void update_clock(void)
{
	struct timespec ts;
	time_t t = time(NULL);
	struct tm tm;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	now_ms = now_us / 1000;
	if (t == now_wall && date_len)
		return;
	now_wall = t;
	gmtime_r(&t, &tm);
	date_len = strftime(date_field, sizeof date_field,
	    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static int eqn(const char *a, size_t n, const char *b, size_t bn)
{
	return n == bn && memcmp(a, b, n) == 0;
}

/* Case-insensitive; our strings hold no NUL, so strncasecmp() serves. */
static int ieqn(const char *a, size_t n, const char *b, size_t bn)
{
	return n == bn && strncasecmp(a, b, n) == 0;
}

static int hexval(int c)
{
	c = c >= 'A' && c <= 'F' ? c + 32 : c;
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
	    c - 'a' + 10 : -1;
}

/* n digits, nothing else; past 64 bits it saturates at UINT64_MAX */
static int parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x > (UINT64_MAX - 9) / 10 ? UINT64_MAX :
		    x * 10 + (uint64_t)(s[i] - '0');
	}
	*out = x;
	return n ? 0 : -1;
}

/* Percent-escapes (RFC 3986 2.1) decoded into out; -1 for a bad escape,
 * %00 or overflow, and in a path for an escaped '/' or a control byte, so
 * no two spellings of a path route apart. ('+' is a space only in forms.) */
static long pct_decode(const char *p, size_t n, char *out, size_t cap,
    int path)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)p[i];

		if (c == '%') {
			int h1 = i + 2 < n ? hexval(p[i + 1]) : -1;
			int h2 = i + 2 < n ? hexval(p[i + 2]) : -1;

			if (h1 < 0 || h2 < 0 || (h1 | h2) == 0 ||
			    (path && h1 * 16 + h2 == '/'))
				return -1;
			c = h1 * 16 + h2;
			i += 2;
		}
		if ((path && (c < 0x20 || c == 0x7f)) || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (long)o;
}

/* write() all of p, retrying after signals; -1 on error. */
static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* "1.2.3.4:5" or "[::1]:5"; an IPv4 client of [::] as IPv4 */
static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	const struct sockaddr_in6 *a6 = (const void *)sa;
	const struct sockaddr_in *a4 = (const void *)sa;
	int v6 = sa->sa_family == AF_INET6;
	const unsigned char *ip = v6 ? a6->sin6_addr.s6_addr + 12 :
	    (const unsigned char *)&a4->sin_addr;
	unsigned port = ntohs(v6 ? a6->sin6_port : a4->sin_port);
	struct sb b = { out, 0, cap - 1, 0 };
	char ip6[INET6_ADDRSTRLEN] = "?";

	if (!v6 || IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
		sb_fmt(&b, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], port);
	} else {
		inet_ntop(AF_INET6, &a6->sin6_addr, ip6, sizeof ip6);
		sb_fmt(&b, "[%s]:%u", ip6, port);
	}
	out[b.len] = '\0';
}

/* Untrusted text for the log, so that no client can forge or split a
 * line: '"' and '\' escaped, bytes outside printable ASCII as \xNN,
 * shortened to max bytes of input, quoted if asked; nothing is "-". */
static void log_text(char *dst, size_t cap, const char *src, size_t n,
    size_t max, int quote)
{
	size_t i, o = 0;

	if (quote && src)
		dst[o++] = '"';
	for (i = 0; src && i < n && i < max && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch == '"' || ch == '\\' || ch < 0x20 || ch > 0x7e)
			o += (size_t)snprintf(dst + o, cap - o, ch == '"' ||
			    ch == '\\' ? "\\%c" : "\\x%02x", ch);
		else
			dst[o++] = (char)ch;
	}
	dst[o] = '\0'; /* the loop left room for these */
	strcat(dst, i < n ? "..." : o ? "" : "-");
	strcat(dst, quote && src ? "\"" : "");
}

static void log_flush(void)
{
	(void)write_all(2, log_buf, log_len); /* a lost log must not stop us */
	log_len = 0;
}

/* A line for the log, gathered and written once per loop pass */
#define LOG_LINE (4 * (LOG_TARGET_MAX + LOG_UA_MAX) + 256)
typedef char log_line_fits[LOG_LINE <= LOG_BUF ? 1 : -1];

static void log_printf(const char *fmt, ...)
{
	char line[LOG_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	n = n < 0 ? 0 : (size_t)n < sizeof line ? n : (int)sizeof line - 1;
	if ((size_t)n > sizeof log_buf - log_len)
		log_flush();
	memcpy(log_buf + log_len, line, (size_t)n);
	log_len += (size_t)n;
}

/* One line per request: time (UTC, ms), client, method, target, status,
 * body bytes sent, the time from its first byte to our last, what was
 * served, and the User-Agent. With sb_fmt(), not printf(): `make bench`
 * 2026-12-01 (ONLY=head,headlog, two runs each), server CPU per HEAD with
 * the log on 11.7 and 12.3 us (10.3 and 10.5 with -q); with printf() 15.0
 * and 15.0 us (callgrind: 3,600 instructions a line, 17,900 with it). */
static void log_request(const struct conn *c, uint64_t bytes)
{
	static time_t sec = -1;
	static char stamp[32];      /* "2026-12-01T18:52:03." */
	const struct iobuf *b = c->buf;
	struct timespec wall, mono;
	struct sb line = { log_buf, 0, LOG_LINE, 0 };
	uint64_t us;
	char addr[64];
	struct tm tm;

	if (opt_quiet || !b)
		return;
	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	if (wall.tv_sec != sec) {
		sec = wall.tv_sec;
		gmtime_r(&sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S.", &tm);
	}
	us = (uint64_t)((int64_t)mono.tv_sec * 1000000 + mono.tv_nsec / 1000 -
	    c->start_us);
	format_addr(&c->peer.sa, addr, sizeof addr);
	if (LOG_LINE > sizeof log_buf - log_len)
		log_flush();
	line.p += log_len;
	sb_fmt(&line, "%s%03uZ %s %s %s %u %U %U.%03ums %s %s\n", stamp,
	    (unsigned)(wall.tv_nsec / 1000000), addr, b->log_method,
	    b->log_target, (unsigned)b->log_status, bytes, us / 1000,
	    (unsigned)(us % 1000), b->log_what, b->log_ua);
	log_len += line.overflow ? 0 : line.len;
}

/* ==== The image ====
 *
 * Built at start-up from our own executable: a ustar layer, the config and
 * two manifests. No clock, host or path leaks in, so the same binary always
 * yields the same digests: the fixed point the project is named for.
 */

/* Read the whole of /proc/self/exe (argv[0] where /proc is missing). */
static int read_self(const char *path)
{
	struct stat st;
	size_t off = 0;
	int fd = open(path, O_RDONLY);

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > 0 && st.st_size <= MAX_SELF &&
	    (self_bin = malloc((size_t)st.st_size))) {
		self_len = (size_t)st.st_size;
		while (off < self_len) {
			ssize_t n = read(fd, self_bin + off, self_len - off);

			if (n <= 0 && !(n < 0 && errno == EINTR))
				break;
			off += n > 0 ? (size_t)n : 0;
		}
	}
	if (fd >= 0)
		close(fd);
	if (self_bin && off == self_len)
		return 0;
	free(self_bin);
	self_bin = NULL;
	return -1;
}

/* A POSIX ustar header (pax, "ustar Interchange Format"). */
struct ustar {
	char name[100], mode[8], uid[8], gid[8], size[12], mtime[12];
	char chksum[8], typeflag, linkname[100], magic[6], version[2];
	char uname[32], gname[32], devmajor[8], devminor[8], prefix[155];
	char pad[12];
};
typedef char ustar_is_one_block[sizeof(struct ustar) == 512 ? 1 : -1];

/* All but name, size and type fixed (0:0, mtime 0): contents alone count */
static void tar_header(struct ustar *h, const char *name, size_t size,
    char type, unsigned mode)
{
	const unsigned char *p = (const unsigned char *)h;
	unsigned sum = 0;
	size_t i;

	memset(h, 0, sizeof *h);
	snprintf(h->name, sizeof h->name, "%s", name);
	snprintf(h->mode, sizeof h->mode, "%07o", mode);
	snprintf(h->uid, sizeof h->uid, "%07o", 0u);
	snprintf(h->gid, sizeof h->gid, "%07o", 0u);
	snprintf(h->size, sizeof h->size, "%011llo", (unsigned long long)size);
	snprintf(h->mtime, sizeof h->mtime, "%011o", 0u);
	h->typeflag = type;
	memcpy(h->magic, "ustar", sizeof h->magic); /* NUL-terminated */
	memcpy(h->version, "00", sizeof h->version);
	snprintf(h->devmajor, sizeof h->devmajor, "%07o", 0u);
	snprintf(h->devminor, sizeof h->devminor, "%07o", 0u);
	/* The checksum is summed with its own field read as spaces. */
	memset(h->chksum, ' ', sizeof h->chksum);
	for (i = 0; i < sizeof *h; i++)
		sum += p[i];
	snprintf(h->chksum, sizeof h->chksum, "%06o", sum);
	h->chksum[7] = ' ';
}

static size_t tar_pad(size_t n)
{
	return (512 - n % 512) % 512;
}

struct tar_file {
	const char *name;           /* a trailing '/' makes it a directory */
	const void *data;
	size_t len;
	unsigned mode;
};

/* A whole archive in memory: each file's header, data and padding, then
 * two zero blocks (the end of archive). */
static unsigned char *tar_make(const struct tar_file *f, size_t n,
    size_t *len)
{
	size_t i, off = 0, total = 1024;
	unsigned char *t;

	for (i = 0; i < n; i++)
		total += 512 + f[i].len + tar_pad(f[i].len);
	if (!(t = calloc(1, total)))
		die(1, "out of memory");
	for (i = 0; i < n; i++) {
		tar_header((struct ustar *)(t + off), f[i].name, f[i].len,
		    f[i].name[strlen(f[i].name) - 1] == '/' ? '5' : '0',
		    f[i].mode);
		if (f[i].len)
			memcpy(t + off + 512, f[i].data, f[i].len);
		off += 512 + f[i].len + tar_pad(f[i].len);
	}
	*len = total;
	return t;
}

/* The build inputs, put in by the assembler from the build directory
 * while it assembles this very file: by construction the bytes that were
 * built. `quinistry source` writes them; the registry serves them as an
 * artifact whose subject is the image. */
#define EMBED(sym, file) \
	__asm__(".section .rodata." #sym ",\"a\"\n" #sym ":\n.incbin \"" \
	    file "\"\n" #sym "_end:\n.previous"); \
	extern const char sym[], sym##_end[]
EMBED(src_makefile, "Makefile");
EMBED(src_main, "quinistry.c");
EMBED(src_sha_c, "sha256.c");
EMBED(src_sha_h, "sha256.h");
#define SOURCE(name, sym) { name, sym, (size_t)(sym##_end - sym), 0644 }

/* GOARCH names, as the image spec's config "architecture" asks. */
#if defined(__x86_64__)
#define ARCH "amd64"
#elif defined(__aarch64__)
#define ARCH "arm64"
#elif defined(__i386__)
#define ARCH "386"
#elif defined(__arm__)
#define ARCH "arm"
#elif defined(__riscv) && __riscv_xlen == 64
#define ARCH "riscv64"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define ARCH "ppc64le"
#elif defined(__s390x__)
#define ARCH "s390x"
#else
#define ARCH "unknown"
#endif

#define MT_DOCKER "application/vnd.docker.distribution.manifest.v2+json"
#define MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_EMPTY "application/vnd.oci.empty.v1+json"
#define MT_JSON "application/json"
#define MT_BLOB "application/octet-stream"
/* The source artifact's type (image-spec manifest.md "artifactType") */
#define AT_SOURCE "application/vnd.quinistry.source.v1"

/* Docker-Content-Digest (distribution-spec), ETag (RFC 9110 8.8.3) */
static void set_object(int i, const char *what, const char *type,
    const void *data, size_t len)
{
	struct object *o = &objects[i];
	char hex[65], digest[sizeof o->digest];

	o->what = what;
	o->data = data;
	o->len = len;
	o->ranges = strcmp(type, MT_BLOB) == 0;
	sha256_digest_hex(data, len, hex);
	snprintf(digest, sizeof digest, "sha256:%s", hex);
	memcpy(o->digest, digest, sizeof digest);
	o->fields_len = (size_t)snprintf(o->fields, sizeof o->fields,
	    "Content-Type: %s\r\nDocker-Content-Digest: %s\r\nETag: \"%s\"\r\n%s",
	    type, digest, digest,
	    o->ranges ? "Accept-Ranges: bytes\r\n" : "");
}

/* The image in two vocabularies, Docker schema 2 and OCI, and the source
 * as an OCI 1.1 artifact (image-spec manifest.md, "Guidelines for
 * Artifact Usage"): an artifactType, the empty config, one layer, and the
 * OCI image manifest as its subject. mediaType is the Content-Type each
 * is served with (skopeo checks it). */
static const struct manifest_def {
	int obj;
	const char *what, *type, *artifact, *config_type;
	int config;
	const char *layer_type;
	int layer, subject;         /* subject: an OCI manifest, or -1 */
} manifest_defs[] = {
	{ OBJ_DOCKER, "docker-manifest", MT_DOCKER, NULL,
	    "application/vnd.docker.container.image.v1+json", OBJ_CONFIG,
	    "application/vnd.docker.image.rootfs.diff.tar", OBJ_LAYER, -1 },
	{ OBJ_OCI, "oci-manifest", MT_OCI, NULL,
	    "application/vnd.oci.image.config.v1+json", OBJ_CONFIG,
	    MT_OCI_LAYER, OBJ_LAYER, -1 },
	{ OBJ_SOURCE_MANIFEST, "source-manifest", MT_OCI, AT_SOURCE, MT_EMPTY,
	    OBJ_EMPTY, MT_OCI_LAYER, OBJ_SOURCE, OBJ_OCI },
};

/* A descriptor (image-spec descriptor.md): mediaType, size, digest */
#define DESC "{\"mediaType\":\"%s\",\"size\":%zu,\"digest\":\"%s\"}"

static void build_manifest(const struct manifest_def *m, char *out)
{
	const struct object *c = &objects[m->config], *l = &objects[m->layer];
	char artifact[128] = "", subject[256] = "";
	size_t n;

	if (m->artifact)
		snprintf(artifact, sizeof artifact, "\"artifactType\":\"%s\",",
		    m->artifact);
	if (m->subject >= 0)
		snprintf(subject, sizeof subject, ",\"subject\":" DESC, MT_OCI,
		    objects[m->subject].len, objects[m->subject].digest);
	n = json_fmt(out, MAX_JSON, "{\"schemaVersion\":2,\"mediaType\":\"%s\","
	    "%s\"config\":" DESC ",\"layers\":[" DESC "]%s}", m->type, artifact,
	    m->config_type, c->len, c->digest, m->layer_type, l->len,
	    l->digest, subject);
	set_object(m->obj, m->what, m->type, out, n);
}

/* The small fixed answers. */
static const struct fixed {
	int obj;
	const char *what, *type, *body;
} fixed_objects[] = {
	{ OBJ_BASE, "base", MT_JSON, "{}" },
	{ OBJ_TAGS, "tags", MT_JSON, "{\"name\":\"quinistry\",\"tags\":[\"latest\"]}" },
	{ OBJ_TAGS_EMPTY, "tags", MT_JSON, "{\"name\":\"quinistry\",\"tags\":[]}" },
	{ OBJ_CATALOG, "catalog", MT_JSON, "{\"repositories\":[\"quinistry\"]}" },
	{ OBJ_CATALOG_EMPTY, "catalog", MT_JSON, "{\"repositories\":[]}" },
	{ OBJ_REFERRERS, "referrers", MT_INDEX,
	    "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":[]}" },
	/* image-spec manifest.md "Guidance for an Empty Descriptor" */
	{ OBJ_EMPTY, "empty-config", MT_BLOB, "{}" },
};

/* The layer holds "quinistry", 0755. The config (image-spec config.md)
 * runs it as nobody; diff_ids names the uncompressed layer. The source
 * tar has the layer's fixed metadata, so its digests too are a function
 * of the binary alone. */
static void build_image(void)
{
	struct tar_file bin = { "quinistry", self_bin, self_len, 0755 };
	struct tar_file src[] = {
		SOURCE("Makefile", src_makefile), SOURCE("quinistry.c", src_main),
		SOURCE("sha256.c", src_sha_c), SOURCE("sha256.h", src_sha_h),
	};
	unsigned char *tar;
	size_t i, n;

	layer = tar_make(&bin, 1, &layer_len);
	set_object(OBJ_LAYER, "layer", MT_BLOB, layer, layer_len);
	n = json_fmt(config_json, sizeof config_json,
	    "{\"architecture\":\"" ARCH "\",\"os\":\"linux\",\"config\":{"
	    "\"User\":\"65534:65534\",\"ExposedPorts\":{\"8080/tcp\":{}},"
	    "\"Entrypoint\":[\"/quinistry\"]},"
	    "\"created\":\"1970-01-01T00:00:00Z\","
	    "\"history\":[{\"created\":\"1970-01-01T00:00:00Z\","
	    "\"created_by\":\"quinistry: its own executable as /quinistry\"}],"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
	    objects[OBJ_LAYER].digest);
	set_object(OBJ_CONFIG, "config", MT_BLOB, config_json, n);
	tar = tar_make(src, COUNT(src), &n);
	set_object(OBJ_SOURCE, "source", MT_BLOB, tar, n);
	for (i = 0; i < COUNT(fixed_objects); i++)
		set_object(fixed_objects[i].obj, fixed_objects[i].what,
		    fixed_objects[i].type, fixed_objects[i].body,
		    strlen(fixed_objects[i].body));
	for (i = 0; i < COUNT(manifest_defs); i++)
		build_manifest(&manifest_defs[i], manifest_json[i]);
	/* "Listing Referrers": the artifact's descriptor with its type */
	n = json_fmt(referrers_json, sizeof referrers_json,
	    "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":"
	    "[{\"mediaType\":\"" MT_OCI "\",\"size\":%zu,\"digest\":\"%s\","
	    "\"artifactType\":\"" AT_SOURCE "\"}]}",
	    objects[OBJ_SOURCE_MANIFEST].len, objects[OBJ_SOURCE_MANIFEST].digest);
	set_object(OBJ_REFERRERS_SOURCE, "referrers", MT_INDEX, referrers_json,
	    n);
}

/* `quinistry export`: a docker-archive (manifest.json) and an OCI image
 * layout (image-layout.md) in one tar, for docker, podman and ctr. */
static unsigned char *export_image(size_t *len)
{
	static const int blobs[3] = { OBJ_OCI, OBJ_CONFIG, OBJ_LAYER };
	char index[MAX_JSON], manifest[MAX_JSON], path[3][80];
	struct tar_file f[8] = {
		{ "oci-layout", S("{\"imageLayoutVersion\":\"1.0.0\"}"), 0644 },
		{ "index.json", index, 0, 0644 },
		{ "manifest.json", manifest, 0, 0644 },
		{ "blobs/", NULL, 0, 0755 }, { "blobs/sha256/", NULL, 0, 0755 },
	};
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(path[i], sizeof path[i], "blobs/sha256/%s",
		    strchr(objects[blobs[i]].digest, ':') + 1);
		f[5 + i] = (struct tar_file){ path[i], objects[blobs[i]].data,
		    objects[blobs[i]].len, 0644 };
	}
	f[1].len = json_fmt(index, sizeof index, "{\"schemaVersion\":2,"
	    "\"mediaType\":\"" MT_INDEX "\",\"manifests\":[{\"mediaType\":\""
	    MT_OCI "\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
	    "\"io.containerd.image.name\":\"docker.io/library/quinistry:latest\","
	    "\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
	    objects[OBJ_OCI].digest, objects[OBJ_OCI].len);
	f[2].len = json_fmt(manifest, sizeof manifest, "[{\"Config\":\"%s\","
	    "\"RepoTags\":[\"quinistry:latest\"],\"Layers\":[\"%s\"]}]",
	    path[1], path[2]);
	return tar_make(f, COUNT(f), len);
}

/* ==== HTTP parsing ====
 *
 * parse_request() reads a head (RFC 9112 2-5) in place, as picohttpparser
 * does: no allocation, no copy; it returns the head's length, or
 * PARSE_INCOMPLETE (for every proper prefix of a valid head), or
 * PARSE_ERROR with rq->status set. So pipelined requests simply follow.
 * It is strict where leniency invites smuggling and injection: bare CR or
 * LF, obs-fold, space before a colon and control bytes get 400.
 */

#define PARSE_INCOMPLETE (-2)
#define PARSE_ERROR (-1)

static int is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* tchar, RFC 9110 5.6.2: ALPHA, DIGIT and !#$%&'*+-.^_`|~ */
static int is_tchar(int c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* request-target: VCHAR (RFC 9112 3.2) */
static int is_vchar(int c)
{
	return c > 0x20 && c < 0x7f;
}

/* field-value: VCHAR, obs-text, SP and HTAB (RFC 9110 5.5) */
static int is_field_byte(int c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static long parse_fail(struct request *rq, enum status st)
{
	rq->status = st;
	return PARSE_ERROR;
}

/* method SP request-target SP HTTP-version CRLF (RFC 9112 3) */
static long parse_request_line(const char *buf, size_t len,
    struct request *rq)
{
	static const char proto[] = "HTTP/x.x\r\n";
	size_t i = 0, start, k;

	/* RFC 9112 2.2: ignore empty lines before the request. */
	while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
		i += 2;
	for (start = i; i < len && is_tchar((unsigned char)buf[i]); i++)
		;
	if (i == len || (buf[i] == '\r' && i + 1 == len && i == start))
		return i - start > MAX_METHOD ?
		    parse_fail(rq, S_NOT_IMPLEMENTED) : PARSE_INCOMPLETE;
	if (buf[i] != ' ' || i == start)
		return parse_fail(rq, S_BAD_REQUEST);
	if (i - start > MAX_METHOD)
		return parse_fail(rq, S_NOT_IMPLEMENTED);
	rq->method = buf + start;
	rq->method_len = i - start;
	for (start = ++i; i < len && i - start < MAX_TARGET &&
	    is_vchar((unsigned char)buf[i]); i++)
		;
	if (i < len && i - start == MAX_TARGET && is_vchar((unsigned char)buf[i]))
		return parse_fail(rq, S_URI_TOO_LONG);
	if (i == len)
		return PARSE_INCOMPLETE;
	if (i == start || buf[i] != ' ') /* no target, HTTP/0.9, CTL */
		return parse_fail(rq, S_BAD_REQUEST);
	rq->target = buf + start;
	rq->target_len = i - start;
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (2.3) */
	for (k = 0, i++; k < sizeof proto - 1; k++, i++) {
		if (i == len)
			return PARSE_INCOMPLETE;
		if (proto[k] == 'x' ? buf[i] < '0' || buf[i] > '9' :
		    buf[i] != proto[k])
			return parse_fail(rq, S_BAD_REQUEST);
	}
	/* we speak 1.x; others (the HTTP/2 preface too) get 505 (15.6.6) */
	if (buf[i - 5] != '1')
		return parse_fail(rq, S_VERSION);
	rq->minor = buf[i - 3] - '0';
	return (long)i;
}

/* name ":" OWS value OWS CRLF (RFC 9112 5) to the empty line; obs-fold
 * (5.2) has an empty name and is refused */
static long parse_fields(const char *buf, size_t len, size_t i,
    struct request *rq)
{
	for (;;) {
		struct header *h = &rq->headers[rq->nheaders];
		size_t start, end;

		if (i == len || (buf[i] == '\r' && i + 1 == len))
			return PARSE_INCOMPLETE;
		if (buf[i] == '\r')
			return buf[i + 1] == '\n' ? (long)(i + 2) :
			    parse_fail(rq, S_BAD_REQUEST);
		if (rq->nheaders == MAX_HEADERS)
			return parse_fail(rq, S_HEAD_TOO_LARGE);
		for (start = i; i < len && is_tchar((unsigned char)buf[i]); i++)
			;
		if (i == len)
			return PARSE_INCOMPLETE;
		/* no whitespace between name and colon (5.1), no empty name */
		if (buf[i] != ':' || i == start)
			return parse_fail(rq, S_BAD_REQUEST);
		h->name = buf + start;
		h->name_len = i - start;
		for (i++; i < len && (buf[i] == ' ' || buf[i] == '\t'); i++)
			;
		for (start = i; i < len && is_field_byte((unsigned char)buf[i]); i++)
			;
		if (i == len || (buf[i] == '\r' && i + 1 == len))
			return PARSE_INCOMPLETE;
		if (buf[i] != '\r' || buf[i + 1] != '\n')
			return parse_fail(rq, S_BAD_REQUEST);
		for (end = i; end > start && (buf[end - 1] == ' ' ||
		    buf[end - 1] == '\t'); end--)
			;
		h->value = buf + start;
		h->value_len = end - start;
		rq->nheaders++;
		i += 2;
	}
}

static long parse_request(const char *buf, size_t len, struct request *rq)
{
	long n;

	rq->nheaders = 0;
	rq->status = S_OK;
	n = parse_request_line(buf, len, rq);
	if (n >= 0)
		n = parse_fields(buf, len, (size_t)n, rq);
	/* A head that fills the buffer without ending never will. */
	if (n == PARSE_INCOMPLETE && len >= MAX_HEAD)
		return parse_fail(rq, S_HEAD_TOO_LARGE);
	return n;
}

/* ==== Request semantics ====
 *
 * The method, whether the connection stays open, the framing, and the
 * fields that choose what is sent. A framing error closes the connection:
 * the next request can no longer be found safely (RFC 9112 6.3).
 */

enum { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE, M_COUNT };
/* push and delete (distribution-spec "Pushing") are known, and refused */
static const struct method {
	const char *name;
	size_t len;
	int write;
} methods[M_COUNT] = {
	[M_GET] = { S("GET"), 0 }, [M_HEAD] = { S("HEAD"), 0 },
	[M_POST] = { S("POST"), 1 }, [M_PUT] = { S("PUT"), 1 },
	[M_PATCH] = { S("PATCH"), 1 }, [M_DELETE] = { S("DELETE"), 1 },
};

static const struct field {
	const char *name;
	size_t len;
} fields[F_OTHER] = {
	[F_HOST] = { S("host") },
	[F_CONTENT_LENGTH] = { S("content-length") },
	[F_TRANSFER_ENCODING] = { S("transfer-encoding") },
	[F_CONNECTION] = { S("connection") },
	[F_ACCEPT] = { S("accept") },
	[F_RANGE] = { S("range") },
	[F_IF_NONE_MATCH] = { S("if-none-match") },
	[F_IF_RANGE] = { S("if-range") },
	[F_USER_AGENT] = { S("user-agent") },
};

static int field_id(const char *name, size_t n)
{
	int i;

	for (i = 0; i < F_OTHER && !ieqn(name, n, fields[i].name, fields[i].len);
	    i++)
		;
	return i;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The next element [*s, *e) of a list (RFC 9110 5.6.1); 0 at the end */
static int list_next(const char *v, size_t n, size_t *i, size_t *s,
    size_t *e)
{
	const char *comma;

	while (*i < n && (is_ows(v[*i]) || v[*i] == ','))
		(*i)++;
	if (*i >= n)
		return 0;
	*s = *i;
	comma = memchr(v + *i, ',', n - *i);
	*i = comma ? (size_t)(comma - v) : n;
	for (*e = *i; *e > *s && is_ows(v[*e - 1]); (*e)--)
		;
	return 1;
}

/* Does the comma-separated field value contain this token? */
static int has_token(const char *v, size_t n, const char *token, size_t tn)
{
	size_t i = 0, s, e;

	while (list_next(v, n, &i, &s, &e))
		if (ieqn(v + s, e - s, token, tn))
			return 1;
	return 0;
}

static const struct field manifest_types[2] = { { S(MT_DOCKER) }, { S(MT_OCI) } };

/* The q parameter of v[k..e) in thousandths (RFC 9110 12.4.2); a
 * malformed one counts as 1; empty parameters (";;") are allowed (5.6.6) */
static int range_q(const char *v, size_t k, size_t e)
{
	int q = 1000, scale;
	size_t i;

	for (; k < e; k++) {
		if (v[k] != ';')
			continue;
		for (i = k + 1; i < e && is_ows(v[i]); i++)
			;
		if (i + 1 >= e || (v[i] | 0x20) != 'q' || v[i + 1] != '=')
			continue;
		/* qvalue = "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")] */
		q = i + 2 < e && v[i + 2] == '0' ? 0 : 1000;
		if (q == 0 && i + 3 < e && v[i + 3] == '.')
			for (i += 4, scale = 100; i < e && scale && v[i] >= '0' &&
			    v[i] <= '9'; i++, scale /= 10)
				q += (v[i] - '0') * scale;
	}
	return q;
}

/* RFC 9110 12.5.1: per manifest type, the most specific matching range
 * (spec -1 none, 0 any, 1 application/any, 2 the type) gives its q */
static void accept_scan(struct reqinfo *st, const char *v, size_t n)
{
	size_t i = 0, s, e, te, k;

	while (list_next(v, n, &i, &s, &e)) {
		int q, wild;

		for (te = s; te < e && v[te] != ';' && !is_ows(v[te]); te++)
			;
		q = range_q(v, te, e);
		wild = ieqn(v + s, te - s, S("*/*")) ? 0 :
		    ieqn(v + s, te - s, S("application/*")) ? 1 : -1;
		for (k = 0; k < 2 && te > s; k++) {
			int spec = wild >= 0 ? wild : ieqn(v + s, te - s,
			    manifest_types[k].name, manifest_types[k].len) ? 2 : -1;

			if (spec > st->spec[k] ||
			    (spec == st->spec[k] && spec >= 0 && q > st->q[k])) {
				st->spec[k] = spec;
				st->q[k] = q;
			}
		}
	}
}

/* uri-host [":" port] characters (RFC 3986 3.2.2); empty is allowed */
static int valid_host(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_alnum((unsigned char)v[i]) && v[i] != '.' && v[i] != ':' &&
		    !(v[i] && strchr("-_~!$&'()*+,;=[]%", v[i])))
			return 0;
	return 1;
}

static enum status read_field(const struct header *h, struct reqinfo *f)
{
	const char *v = h->value;
	size_t n = h->value_len;
	int id = field_id(h->name, h->name_len);

	if (id < F_OTHER)
		f->field[id] = *h;
	switch (id) {
	case F_HOST:
		f->hosts++;
		return valid_host(v, n) ? S_OK : S_BAD_REQUEST;
	case F_CONTENT_LENGTH: /* RFC 9112 6.3: one valid length, or 400 */
		return parse_dec(v, n, &f->clen) || f->lengths++ ?
		    S_BAD_REQUEST : S_OK;
	case F_TRANSFER_ENCODING: /* 6.1: chunked last; we know no other */
		f->te++;
		return ieqn(v, n, S("chunked")) ? S_OK : S_NOT_IMPLEMENTED;
	case F_CONNECTION:
		f->conn_close |= has_token(v, n, S("close"));
		f->conn_keep |= has_token(v, n, S("keep-alive"));
		break;
	case F_ACCEPT:
		f->have_accept = 1;
		accept_scan(f, v, n);
		break;
	}
	return S_OK;
}

/* Returns S_OK, or the status with which to refuse the request. */
static enum status request_info(const struct request *rq,
    struct reqinfo *ri)
{
	enum status st;
	size_t i;

	memset(ri, 0, sizeof *ri);
	ri->spec[0] = ri->spec[1] = -1;
	for (ri->method = M_COUNT - 1; ri->method >= 0 &&
	    !eqn(rq->method, rq->method_len, methods[ri->method].name,
	    methods[ri->method].len); ri->method--)
		;
	for (i = 0; i < rq->nheaders; i++)
		if ((st = read_field(&rq->headers[i], ri)) != S_OK)
			return st;
	/* RFC 9112 3.2: a 1.1 request without exactly one Host is a 400;
	 * 6.1: Transfer-Encoding with Content-Length may be smuggling, and
	 * chunked does not exist in HTTP/1.0. */
	if (ri->hosts > 1 || (rq->minor >= 1 && ri->hosts == 0) ||
	    (ri->te && (ri->lengths || rq->minor == 0 || ri->te > 1)))
		return S_BAD_REQUEST;
	if (ri->clen > MAX_BODY)
		return S_TOO_LARGE;
	ri->has_body = ri->te || ri->clen > 0;
	/* RFC 9110 9.3.1: content in a GET has no defined meaning. */
	if (ri->has_body && ri->method >= 0 && !methods[ri->method].write)
		return S_BAD_REQUEST;
	/* RFC 9112 9.3: 1.1 is persistent unless "close", 1.0 only with
	 * "keep-alive"; a body we will not read ends the connection. */
	ri->keep = !ri->conn_close && (rq->minor >= 1 || ri->conn_keep) &&
	    !ri->has_body;
	/* No Accept: anything is acceptable (RFC 9110 12.5.1); else a type
	 * whose best-matching range has q > 0. */
	ri->accept_docker = !ri->have_accept || (ri->spec[0] >= 0 && ri->q[0]);
	ri->accept_oci = !ri->have_accept || (ri->spec[1] >= 0 && ri->q[1]);
	return S_OK;
}

/* ==== Routes ====
 *
 * The target becomes a decoded path and a query, matched against a table.
 * Names and digests are checked against the distribution-spec grammars
 * first, so a malformed reference gets its own error code. Every response
 * comes from one table of statuses.
 */

/* distribution-spec "Error Codes"; nothing of the request is echoed */
#define REG(st, reason, code, msg, detail) { st, reason, code, \
	"{\"errors\":[{\"code\":\"" code "\",\"message\":\"" msg \
	"\",\"detail\":\"" detail "\"}]}", 0 }

/* code, reason (RFC 9110 15), registry error, body, close afterwards */
static const struct status_def {
	int code;
	const char *reason, *error, *body;
	int close;
} statuses[S_COUNT] = {
	[S_OK] = { 200, "OK", NULL, NULL, 0 },
	[S_PARTIAL] = { 206, "Partial Content", NULL, NULL, 0 },
	[S_NOT_MODIFIED] = { 304, "Not Modified", NULL, NULL, 0 },
	[S_BAD_REQUEST] = { 400, "Bad Request", NULL, "400 bad request\n", 1 },
	[S_NAME_INVALID] = REG(400, "Bad Request", "NAME_INVALID",
	    "invalid repository name",
	    "names are lowercase [a-z0-9] runs joined by . _ __ - or /"),
	[S_DIGEST_INVALID] = REG(400, "Bad Request", "DIGEST_INVALID",
	    "invalid digest", "digests are sha256:<64 lowercase hex> or "
	    "sha512:<128 lowercase hex>"),
	[S_PAGINATION] = REG(400, "Bad Request", "PAGINATION_NUMBER_INVALID",
	    "invalid number of results requested",
	    "n must be a non-negative decimal number"),
	[S_NOT_FOUND] = { 404, "Not Found", NULL, "404 not found\n", 0 },
	[S_NAME_UNKNOWN] = REG(404, "Not Found", "NAME_UNKNOWN",
	    "repository name not known to registry",
	    "this registry serves only the repository quinistry"),
	[S_MANIFEST_UNKNOWN] = REG(404, "Not Found", "MANIFEST_UNKNOWN",
	    "manifest unknown",
	    "known references: the tag latest and three manifest digests"),
	[S_BLOB_UNKNOWN] = REG(404, "Not Found", "BLOB_UNKNOWN",
	    "blob unknown to registry",
	    "known blobs: the image's config and layer, the source's config and tar"),
	[S_UNSUPPORTED] = REG(405, "Method Not Allowed", "UNSUPPORTED",
	    "the operation is unsupported",
	    "this registry is read-only: only GET and HEAD"),
	[S_TIMEOUT] = { 408, "Request Timeout", NULL, "408 request timeout\n", 1 },
	[S_TOO_LARGE] = { 413, "Content Too Large", NULL, "413 content too large\n", 1 },
	[S_URI_TOO_LONG] = { 414, "URI Too Long", NULL, "414 URI too long\n", 1 },
	[S_RANGE] = { 416, "Range Not Satisfiable", NULL, "416 range not satisfiable\n", 0 },
	[S_HEAD_TOO_LARGE] = { 431, "Request Header Fields Too Large", NULL,
	    "431 request header fields too large\n", 1 },
	[S_NOT_IMPLEMENTED] = { 501, "Not Implemented", NULL, "501 not implemented\n", 1 },
	[S_VERSION] = { 505, "HTTP Version Not Supported", NULL,
	    "505 HTTP version not supported\n", 1 },
};

/* name = component ("/" component)*, component = [a-z0-9]+ (separator
 * [a-z0-9]+)*, separator = [_.] | "__" | -+ */
static int valid_name(const char *s, size_t n)
{
	size_t i = 0, run;

	for (;;) {
		for (run = 0; i < n && ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9')); i++)
			run++;
		if (run == 0 || n > MAX_NAME)
			return 0;
		if (i == n)
			return 1;
		if (s[i] == '_' && i + 1 < n && s[i + 1] == '_')
			i += 2;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else if (s[i] == '/' || s[i] == '.' || s[i] == '_')
			i++;
		else
			return 0;
	}
}

/* algorithm ":" encoded, as image-spec descriptor.md registers them */
static int digest_kind(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t alen = colon ? (size_t)(colon - s) : n, i;

	for (i = alen + 1; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	if (colon && eqn(s, alen, S("sha256")) && n - alen - 1 == 64)
		return 1;
	return colon && eqn(s, alen, S("sha512")) && n - alen - 1 == 128 ? 2 : 0;
}

/* "bytes=a-b", "a-" or "-n" (RFC 9110 14.1.1): 1 applies, -1 is a 416, 0
 * ignores it (several ranges, nonsense), which 14.2 allows */
static int parse_range(const char *v, size_t n, uint64_t size,
    uint64_t *first, uint64_t *last)
{
	const char *dash;
	uint64_t a = 0, b = 0;
	size_t an, bn;

	if (n < 6 || !ieqn(v, 6, S("bytes=")) || memchr(v, ',', n) ||
	    !(dash = memchr(v + 6, '-', n - 6)))
		return 0;
	an = (size_t)(dash - v) - 6;
	bn = n - 7 - an;
	if ((an && parse_dec(v + 6, an, &a)) || (bn && parse_dec(dash + 1, bn, &b)) ||
	    (!an && !bn) || a == UINT64_MAX || b == UINT64_MAX || (an && bn && b < a))
		return 0;
	if (an ? a >= size : b == 0 || size == 0)
		return -1;
	*first = an ? a : b >= size ? 0 : size - b; /* "-n": the last n */
	*last = an && bn && b < size ? b : size - 1;
	return 1;
}

/* If-None-Match (RFC 9110 13.1.2): "*" or entity tags, compared weakly. */
static int etag_matches(const char *v, size_t n, const char *digest)
{
	size_t i = 0, s, e, dl = strlen(digest);

	while (list_next(v, n, &i, &s, &e)) {
		if (e - s == 1 && v[s] == '*')
			return 1;
		if (e - s >= 2 && v[s] == 'W' && v[s + 1] == '/')
			s += 2;
		if (e - s == dl + 2 && v[s] == '"' && v[e - 1] == '"' &&
		    memcmp(v + s + 1, digest, dl) == 0)
			return 1;
	}
	return 0;
}

/* A found object, with the conditional and range fields applied. */
static void reply_content(struct reply *r, const struct reqinfo *ri, int obj)
{
	const struct object *o = &objects[obj];
	const struct header *inm = &ri->field[F_IF_NONE_MATCH];
	const struct header *range = &ri->field[F_RANGE];
	const struct header *if_range = &ri->field[F_IF_RANGE];
	int rc;

	r->st = S_OK;
	r->obj = o;
	r->first = 0;
	r->last = o->len ? o->len - 1 : 0;
	/* If-None-Match is evaluated before Range (RFC 9110 13.2.2). */
	if (inm->value && etag_matches(inm->value, inm->value_len, o->digest)) {
		r->st = S_NOT_MODIFIED;
		return;
	}
	/* If-Range (RFC 9110 13.1.5): only while the tag matches */
	if (!o->ranges || !range->value || (if_range->value &&
	    !etag_matches(if_range->value, if_range->value_len, o->digest)))
		return;
	rc = parse_range(range->value, range->value_len, o->len, &r->first,
	    &r->last);
	if (rc) /* for 416, r->obj stays: Content-Range needs its size */
		r->st = rc > 0 ? S_PARTIAL : S_RANGE;
}

/* The object among objs[nobjs] whose digest ref is; else unknown_st. */
static void reply_digest(struct reply *r, const struct reqinfo *ri,
    const char *ref, size_t n, const int *objs, size_t nobjs,
    enum status unknown_st)
{
	size_t i;

	r->st = digest_kind(ref, n) ? unknown_st : S_DIGEST_INVALID;
	for (i = 0; i < nobjs && r->st == unknown_st; i++)
		if (eqn(ref, n, objects[objs[i]].digest,
		    strlen(objects[objs[i]].digest)))
			reply_content(r, ri, objs[i]);
}

/* The target: decoded path, raw query, reference (last segment) */
struct target {
	char path[MAX_TARGET + 1];
	size_t path_len;
	const char *ref, *query;
	size_t ref_len, query_len;
};

/* A decoded query parameter, or NULL; *bad for an undecodable one */
static const char *query_param(const struct target *t, const char *key,
    char *out, size_t cap, int *bad)
{
	const char *q = t->query, *end = q + t->query_len, *amp;
	size_t kl = strlen(key);

	for (; q < end; q = amp + 1) {
		amp = memchr(q, '&', (size_t)(end - q));
		amp = amp ? amp : end;
		if ((size_t)(amp - q) <= kl || memcmp(q, key, kl) || q[kl] != '=')
			continue;
		if (pct_decode(q + kl + 1, (size_t)(amp - q) - kl - 1, out, cap,
		    0) >= 0)
			return out;
		*bad = 1;
		return NULL;
	}
	return NULL;
}

/* distribution-spec "Listing Tags": n and last; with one entry, the
 * answer is the full list or the empty one */
static void reply_list(struct reply *r, const struct reqinfo *ri,
    const struct target *t, const char *entry, int full)
{
	char nbuf[32], last[MAX_TARGET];
	const char *nv, *lv;
	uint64_t n = 1;
	int bad = 0;

	nv = query_param(t, "n", nbuf, sizeof nbuf, &bad);
	lv = query_param(t, "last", last, sizeof last, &bad);
	if (bad)
		r->st = S_BAD_REQUEST;
	else if (nv && parse_dec(nv, strlen(nv), &n))
		r->st = S_PAGINATION;
	else /* the empty list is the next object */
		reply_content(r, ri, full + (n == 0 ||
		    (lv && strcmp(lv, entry) >= 0)));
}

static void route_manifest(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	static const int manifests[] = {
		OBJ_DOCKER, OBJ_OCI, OBJ_SOURCE_MANIFEST
	};

	if (memchr(t->ref, ':', t->ref_len)) {
		reply_digest(r, ri, t->ref, t->ref_len, manifests,
		    COUNT(manifests), S_MANIFEST_UNKNOWN);
	} else if (!eqn(t->ref, t->ref_len, S("latest"))) { /* our only tag */
		r->st = S_MANIFEST_UNKNOWN;
	} else {
		reply_content(r, ri, ri->accept_oci && !ri->accept_docker ?
		    OBJ_OCI : OBJ_DOCKER);
		r->by_tag = 1;
	}
}

static void route_blob(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	static const int blobs[] = { OBJ_CONFIG, OBJ_LAYER, OBJ_EMPTY, OBJ_SOURCE };

	reply_digest(r, ri, t->ref, t->ref_len, blobs, COUNT(blobs),
	    S_BLOB_UNKNOWN);
}

/* distribution-spec "Listing Referrers": 200 and an index for any valid
 * digest; the source artifact refers to the OCI image manifest. An
 * artifactType filter keeps what has that type, and the header says it
 * was applied. */
static void route_referrers(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	const struct object *oci = &objects[OBJ_OCI];
	char type[256];
	int bad = 0;
	const char *want = query_param(t, "artifactType", type, sizeof type,
	    &bad);

	if (bad || !digest_kind(t->ref, t->ref_len)) {
		r->st = bad ? S_BAD_REQUEST : S_DIGEST_INVALID;
		return;
	}
	reply_content(r, ri, eqn(t->ref, t->ref_len, oci->digest,
	    strlen(oci->digest)) && (!want || strcmp(want, AT_SOURCE) == 0) ?
	    OBJ_REFERRERS_SOURCE : OBJ_REFERRERS);
	r->filters = want != NULL;
}

static void route_tags(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	reply_list(r, ri, t, "latest", OBJ_TAGS);
}

/* /v2/<name>/<kind>/<ref>: the last two segments choose; the name may
 * hold slashes, even "manifests" */
static const struct route {
	const char *kind;
	const char *fixed_ref;  /* NULL: any reference */
	void (*fn)(struct reply *, const struct reqinfo *,
	    const struct target *);
} routes[] = {
	{ "manifests", NULL, route_manifest },
	{ "blobs", NULL, route_blob },
	{ "referrers", NULL, route_referrers },
	{ "tags", "list", route_tags },
};

/* RFC 9112 3.2, absolute-form too; -1 (400) for a fragment, a bad escape
 * or a dot segment (RFC 3986 3.3), which a registry never needs */
static int split_target(const char *tg, size_t tn, struct target *t)
{
	const char *q;
	long n;

	if (tn > 7 && tg[0] != '/' && (ieqn(tg, 7, S("http://")) ||
	    (tn > 8 && ieqn(tg, 8, S("https://"))))) {
		q = memchr(tg + 8, '/', tn - 8);
		tn = q ? tn - (size_t)(q - tg) : 1;
		tg = q ? q : "/";
	}
	if (tn == 0 || tg[0] != '/' || memchr(tg, '#', tn))
		return -1;
	q = memchr(tg, '?', tn);
	t->query = q ? q + 1 : "";
	t->query_len = q ? (size_t)(tg + tn - q - 1) : 0;
	n = pct_decode(tg, q ? (size_t)(q - tg) : tn, t->path, sizeof t->path, 1);
	if (n < 0)
		return -1;
	t->path_len = (size_t)n;
	for (q = t->path; *q; q++) /* a segment "." or ".." after a '/' */
		if (q[0] == '/' && q[1] == '.' && (q[2] == '/' || !q[2] ||
		    (q[2] == '.' && (q[3] == '/' || !q[3]))))
			return -1;
	return 0;
}

/* routes[] against the path; sets t->ref and the name's length */
static const struct route *match_route(struct target *t, size_t *name_len)
{
	const char *path = t->path;
	size_t pn = t->path_len, ref_at, kind_at, i;

	for (ref_at = pn; ref_at > 4 && path[ref_at - 1] != '/'; ref_at--)
		;
	for (kind_at = ref_at - 1; kind_at > 4 && path[kind_at - 1] != '/';
	    kind_at--)
		;
	if (ref_at <= 4 || kind_at < 5 || ref_at == pn)
		return NULL;
	t->ref = path + ref_at;
	t->ref_len = pn - ref_at;
	*name_len = kind_at - 5;
	for (i = 0; i < COUNT(routes); i++)
		if (eqn(path + kind_at, ref_at - 1 - kind_at, routes[i].kind,
		    strlen(routes[i].kind)) && (!routes[i].fixed_ref ||
		    strcmp(t->ref, routes[i].fixed_ref) == 0))
			return &routes[i];
	return NULL;
}

static void route(struct reply *r, const struct request *rq,
    const struct reqinfo *ri)
{
	const struct route *rt;
	struct target t;
	size_t name_len;
	int v2;

	memset(r, 0, sizeof *r);
	/* 501 whatever the target (RFC 9110 15.6.2): CONNECT and OPTIONS
	 * have their own target forms (RFC 9112 3.2.3-3.2.4) */
	if (ri->method < 0) {
		r->st = S_NOT_IMPLEMENTED;
		return;
	}
	if (split_target(rq->target, rq->target_len, &t)) {
		r->st = S_BAD_REQUEST;
		return;
	}
	v2 = strcmp(t.path, "/v2") == 0 || strncmp(t.path, "/v2/", 4) == 0;
	r->allow = v2 && methods[ri->method].write;
	if (methods[ri->method].write || !v2)
		r->st = r->allow ? S_UNSUPPORTED : S_NOT_FOUND;
	else if (t.path_len <= 4) /* distribution-spec "Determining support" */
		reply_content(r, ri, OBJ_BASE);
	else if (strcmp(t.path, "/v2/_catalog") == 0)
		reply_list(r, ri, &t, "quinistry", OBJ_CATALOG);
	else if (!(rt = match_route(&t, &name_len)))
		r->st = S_NOT_FOUND;
	else if (!valid_name(t.path + 4, name_len))
		r->st = S_NAME_INVALID;
	else if (!eqn(t.path + 4, name_len, S("quinistry")))
		r->st = S_NAME_UNKNOWN;
	else
		rt->fn(r, ri, &t);
}

/* The head's length (0: too big, which our sizes rule out). Built piece
 * by piece, not by sb_fmt() or snprintf(): `make bench` 2026-12-01
 * (ONLY=head), server CPU per HEAD 10.9 us so, 12.4 us with snprintf(). */
static size_t render_head(char *out, size_t cap, const struct reply *r,
    int keep, uint64_t *body_len)
{
	const struct status_def *sd = &statuses[r->st];
	const struct object *o = r->obj;
	struct sb b = { out, 0, cap, 0 };
	uint64_t len = sd->body ? strlen(sd->body) :
	    r->st == S_PARTIAL ? r->last - r->first + 1 : o->len;

	sb_put(&b, S("HTTP/1.1 "));
	sb_num(&b, (uint64_t)sd->code, 1);
	sb_put(&b, S(" "));
	sb_str(&b, sd->reason);
	sb_put(&b, S("\r\n"));
	sb_put(&b, date_field, date_len);
	/* Docker Registry HTTP API V2, "API Version Check" */
	sb_put(&b, S("Docker-Distribution-API-Version: registry/2.0\r\n"));
	if (sd->body)
		sb_str(&b, sd->error ? "Content-Type: " MT_JSON "\r\n" :
		    "Content-Type: text/plain\r\n");
	else
		sb_put(&b, o->fields, o->fields_len);
	/* RFC 9110 14.4: the range sent, or for 416 the blob's length */
	if (r->st == S_PARTIAL || r->st == S_RANGE) {
		sb_put(&b, S("Content-Range: bytes "));
		if (r->st == S_RANGE)
			sb_put(&b, S("*"));
		else {
			sb_num(&b, r->first, 1);
			sb_put(&b, S("-"));
			sb_num(&b, r->last, 1);
		}
		sb_put(&b, S("/"));
		sb_num(&b, o->len, 1);
		sb_put(&b, S("\r\n"));
	}
	/* one tag, other bytes per Accept: caches key on it (RFC 9110 12.5.5) */
	if (r->by_tag)
		sb_put(&b, S("Vary: Accept\r\n"));
	if (r->allow)
		sb_put(&b, S("Allow: GET, HEAD\r\n"));
	if (r->filters)
		sb_put(&b, S("OCI-Filters-Applied: artifactType\r\n"));
	/* HEAD and 304 too: what a GET would carry (RFC 9110 8.6) */
	sb_put(&b, S("Content-Length: "));
	sb_num(&b, len, 1);
	sb_str(&b, keep ? "\r\nConnection: keep-alive\r\n\r\n" :
	    "\r\nConnection: close\r\n\r\n");
	*body_len = r->st == S_NOT_MODIFIED ? 0 : len;
	return b.overflow ? 0 : b.len;
}

/* ==== Connection state machine ====
 *
 * One function per state, as in darkhttpd: conn_read() (and respond),
 * conn_send(), conn_drain(). Each returns when a socket call would block,
 * saying whether there is more to do now. POLLOUT is watched only while a
 * response is blocked, so idle connections never wake the loop.
 */

static void list_unlink(struct conn *c)
{
	if (c->list == T_NONE)
		return;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->list = T_NONE;
}

/* (Re)start c's timeout at its list's tail: the list stays sorted */
static void list_enter(struct conn *c, int which)
{
	struct conn *h = &list_head[which];

	list_unlink(c);
	c->list = (unsigned char)which;
	c->since = now_ms;
	c->prev = h->prev;
	c->next = h;
	h->prev->next = c;
	h->prev = c;
}

static struct iobuf *buf_get(void)
{
	struct iobuf *b = nspare ? spare[--nspare] : malloc(sizeof *b);

	if (b)
		b->len = 0;
	return b;
}

static void buf_free(struct conn *c)
{
	if (c->buf && nspare < SPARE_BUFS)
		spare[nspare++] = c->buf;
	else
		free(c->buf);
	c->buf = NULL;
}

static void conn_close(struct conn *c)
{
	int last = --nslots;

	list_unlink(c);
	close(c->fd);
	buf_free(c);
	/* keep pfds[] dense: the last slot moves into c's */
	pfds[c->slot] = pfds[last];
	slot_conn[c->slot] = slot_conn[last];
	slot_conn[c->slot]->slot = c->slot;
	c->next = free_conns;
	free_conns = c;
	nconns--;
}

/* A client that speaks TLS to the plain port (docker does, to any host
 * it is not told is plain HTTP) gets a 400 and the operator a hint. */
static void log_tls(struct conn *c)
{
	char addr[64];

	c->buf->log_what = "tls-handshake";
	format_addr(&c->peer.sa, addr, sizeof addr);
	if (!opt_quiet)
		log_printf("quinistry: %s: TLS handshake on the plain HTTP port: "
		    "configure the client for HTTP\n", addr);
}

/* A parsed request (used < 0: a failure) into c's response */
static void conn_respond(struct conn *c, long used, const struct request *rq)
{
	struct iobuf *b = c->buf;
	struct reqinfo ri;
	struct reply r;
	uint64_t len;
	enum status refused = used < 0 ? rq->status : request_info(rq, &ri);

	if (used < 0)
		memset(&ri, 0, sizeof ri);
	memset(&r, 0, sizeof r);
	r.st = refused;
	if (refused == S_OK)
		route(&r, rq, &ri);
	c->keep = (unsigned char)(ri.keep && !stop_requested &&
	    !statuses[r.st].close);
	/* A close with unread input resets, destroying the response: drain
	 * unless the client said it sends nothing more (RFC 9112 9.6). */
	c->linger = (unsigned char)(refused || ri.has_body || ri.keep ||
	    (size_t)used < b->len);
	c->out_len = render_head(b->out, sizeof b->out, &r, c->keep, &len);
	c->out_off = c->body_off = 0;
	c->body = statuses[r.st].body ?
	    (const unsigned char *)statuses[r.st].body : r.obj->data + r.first;
	/* HEAD: exactly the GET head, no body (RFC 9110 9.3.2) */
	c->body_len = ri.method == M_HEAD && used > 0 ? 0 : (size_t)len;
	b->log_status = statuses[r.st].code;
	b->log_what = statuses[r.st].body ? "error" : r.obj->what;
	if (!opt_quiet) {
		log_text(b->log_method, sizeof b->log_method, used < 0 ? "" :
		    rq->method, used < 0 ? 0 : rq->method_len, MAX_METHOD, 0);
		log_text(b->log_target, sizeof b->log_target, used < 0 ? "" :
		    rq->target, used < 0 ? 0 : rq->target_len, LOG_TARGET_MAX, 0);
		log_text(b->log_ua, sizeof b->log_ua, ri.field[F_USER_AGENT].value,
		    ri.field[F_USER_AGENT].value_len, LOG_UA_MAX, 1);
	}
	if (used < 0 && b->len > 1 && b->in[0] == 0x16 && b->in[1] == 0x03)
		log_tls(c); /* a TLS record: handshake, version 3.x */
	used = used < 0 ? (long)b->len : used;
	b->len -= (size_t)used;
	memmove(b->in, b->in + used, b->len);
	c->state = C_SEND;
	list_enter(c, T_WRITE);
}

/* Parse what the buffer holds: 1 if a response is now ready to send. */
static int conn_parse(struct conn *c)
{
	struct request rq;
	long used = parse_request(c->buf->in, c->buf->len, &rq);

	if (used == PARSE_INCOMPLETE) {
		c->state = C_READ;
		return 0;
	}
	conn_respond(c, used, &rq);
	return 1;
}

static int conn_read(struct conn *c)
{
	ssize_t n;

	if (!c->buf && !(c->buf = buf_get())) {
		conn_close(c); /* out of memory: shed this one */
		return 0;
	}
	n = recv(c->fd, c->buf->in + c->buf->len, MAX_HEAD - c->buf->len, 0);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (c->buf->len == 0)
			buf_free(c);
		return 0;
	}
	if (n <= 0) {
		conn_close(c);
		return 0;
	}
	if (c->list != T_HEAD) { /* the head's clock starts */
		list_enter(c, T_HEAD);
		c->start_us = now_us;
	}
	c->buf->len += (size_t)n;
	return conn_parse(c);
}

/* One system call: the head and body by sendmsg(), one piece of them by
 * send() (the kernel's shorter path: `make bench` 2026-12-01, server CPU
 * per HEAD 10.6-11.4 us with sendmsg(), 10.0-10.3 us with send()).
 * MSG_MORE: the last response before our close leaves with the FIN (RFC
 * 9293 3.6 lets a FIN ride on data; limits.sh counts the segments). `make
 * bench` (2026-11-30): server CPU per new connection 111-155 ticks per run
 * with it, 137-188 without. */
static ssize_t send_some(struct conn *c)
{
	int more = !c->keep ? MSG_MORE : 0;
	size_t head = c->out_len - c->out_off, body = c->body_len - c->body_off;
	struct iovec iov[2];
	struct msghdr mh;

	if (body == 0 || head == 0)
		return head ? send(c->fd, c->buf->out + c->out_off, head, more) :
		    send(c->fd, c->body + c->body_off, body, more);
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	iov[0].iov_base = c->buf->out + c->out_off;
	iov[0].iov_len = head;
	iov[1].iov_base = (void *)(c->body + c->body_off);
	iov[1].iov_len = body;
	return sendmsg(c->fd, &mh, more);
}

/* 1 when all is out, 0 if the socket is full, -1 on error */
static int send_response(struct conn *c)
{
	while (c->out_off < c->out_len || c->body_off < c->body_len) {
		size_t k = c->out_len - c->out_off;
		ssize_t w = send_some(c);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ?
			    0 : -1;
		k = (size_t)w < k ? (size_t)w : k;
		c->out_off += k;
		c->body_off += (size_t)w - k;
		list_enter(c, T_WRITE);
	}
	return 1;
}

static int conn_send(struct conn *c)
{
	int rc = send_response(c);

	if (rc == 0) {
		pfds[c->slot].events = POLLOUT;
		return 0;
	}
	log_request(c, rc > 0 ? c->body_len : c->body_off);
	if (rc < 0 || (!c->keep && !c->linger)) {
		conn_close(c);
		return 0;
	}
	pfds[c->slot].events = POLLIN;
	if (!c->keep) { /* shut our side, read until the client closes */
		shutdown(c->fd, SHUT_WR);
		buf_free(c);
		c->state = C_LINGER;
		list_enter(c, T_LINGER);
		return 1;
	}
	if (c->buf->len) { /* pipelined: the next head may be whole */
		list_enter(c, T_HEAD);
		c->start_us = now_us;
		return conn_parse(c);
	}
	c->state = C_READ;
	list_enter(c, T_IDLE);
	buf_free(c);
	return 0;
}

static int conn_drain(struct conn *c)
{
	char tmp[4096];
	ssize_t n;

	while ((n = recv(c->fd, tmp, sizeof tmp, 0)) > 0 ||
	    (n < 0 && errno == EINTR))
		;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		conn_close(c);
	return 0;
}

/* Advance c as far as it can go without blocking. */
static void conn_run(struct conn *c)
{
	int more = 1;

	while (more)
		more = c->state == C_READ ? conn_read(c) :
		    c->state == C_SEND ? conn_send(c) : conn_drain(c);
}

/* A head that never completed gets a best-effort 408 (RFC 9110 15.5.9) */
static void conn_expire(struct conn *c)
{
	struct request rq;

	if (c->list == T_HEAD) {
		rq.status = S_TIMEOUT;
		conn_respond(c, PARSE_ERROR, &rq);
		log_request(c, send_response(c) > 0 ? c->body_len : c->body_off);
	}
	conn_close(c);
}

/* ==== Event loop ====
 *
 * Each pass polls every connection, runs the ready ones, accepts a burst,
 * expires timeouts from the heads of their lists and flushes the log.
 * poll() sleeps until the nearest deadline; a signal writes to a pipe.
 */

static void on_signal(int sig)
{
	int saved = errno;
	char ch = (char)sig;
	ssize_t w;

	stop_requested = sig;
	w = write(sig_pipe[1], &ch, 1); /* full: a wake-up is pending */
	(void)w;
	errno = saved;
}

static int add_slot(int fd)
{
	pfds[nslots].fd = fd;
	pfds[nslots].events = POLLIN;
	pfds[nslots].revents = 0;
	return nslots++;
}

/* New: idle until its first byte, usually here already (DEFER_ACCEPT_S) */
static void conn_open(int fd, const struct sockaddr_storage *ss)
{
	struct conn *c = free_conns ? free_conns : malloc(sizeof *c);

	if (!c) {
		close(fd); /* out of memory: refuse this one */
		return;
	}
	free_conns = c == free_conns ? c->next : free_conns;
	memset(c, 0, sizeof *c);
	nconns++;
	c->fd = fd;
	c->list = T_NONE;
	c->state = C_READ;
	memcpy(&c->peer, ss, ss->ss_family == AF_INET6 ?
	    sizeof c->peer.v6 : sizeof c->peer.v4);
	c->slot = add_slot(fd);
	slot_conn[c->slot] = c;
	list_enter(c, T_IDLE);
	conn_run(c);
}

static void accept_burst(void)
{
	int k, fd;

	for (k = 0; k < ACCEPT_BURST; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;

		fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE ||
		    errno == ENOBUFS || errno == ENOMEM)) {
			/* Clients wait in the backlog; look again shortly
			 * instead of spinning on the listener. */
			accept_resume = now_ms + ACCEPT_PAUSE_MS;
			pfds[0].fd = -1;
		}
		if (fd < 0 && (errno == ECONNABORTED || errno == EINTR ||
		    errno == EPROTO))
			continue; /* that one died waiting; try the next */
		if (fd < 0)
			return;
		/* Full: drop the connection idle the longest; if none is
		 * idle, refuse this one. */
		if (nconns >= opt_max_conns &&
		    list_head[T_IDLE].next == &list_head[T_IDLE])
			close(fd);
		else if (nconns >= opt_max_conns)
			conn_close(list_head[T_IDLE].next);
		if (nconns < opt_max_conns)
			conn_open(fd, &ss);
	}
}

static int poll_timeout(void)
{
	int64_t next = accept_resume ? accept_resume : -1, d;
	int i;

	for (i = 0; i < T_NONE; i++) {
		d = list_head[i].next->since + list_timeout[i];
		if (list_head[i].next != &list_head[i] && (next < 0 || d < next))
			next = d;
	}
	return next < 0 ? -1 : next <= now_ms ? 0 : (int)(next - now_ms);
}

static void expire_timeouts(void)
{
	struct conn *h;
	int i;

	for (i = 0; i < T_NONE; i++)
		while ((h = list_head[i].next) != &list_head[i] &&
		    h->since + list_timeout[i] <= now_ms)
			conn_expire(h);
}

/* SIGTERM/SIGINT: stop accepting; idle connections close now, responses
 * under way get SHUTDOWN_GRACE_MS to finish. As PID 1 in a container the
 * kernel delivers SIGTERM only because we handle it. */
static void begin_shutdown(void)
{
	long idle = nconns;
	int i;

	close(listen_fd);
	listen_fd = pfds[0].fd = -1;
	for (i = nslots - 1; i >= 2; i--) {
		if (slot_conn[i]->state == C_SEND)
			slot_conn[i]->keep = 0;
		else
			conn_close(slot_conn[i]);
	}
	log_printf("quinistry: %s: stopping; %ld idle connections closed, %ld "
	    "responses have %d ms to finish\n", stop_requested == SIGINT ?
	    "SIGINT" : "SIGTERM", idle - nconns, nconns, SHUTDOWN_GRACE_MS);
}

/* The ready connections, top down, so that a close, which moves the last
 * slot into the current one, never skips a ready slot. */
static void run_ready(int n)
{
	int i;

	for (i = nslots - 1; i >= 2 && n > 0; i--) {
		short re = pfds[i].revents;

		if (!re)
			continue;
		n--;
		pfds[i].revents = 0;
		if (re & (POLLERR | POLLNVAL))
			conn_close(slot_conn[i]);
		else
			conn_run(slot_conn[i]);
	}
}

static void serve(void)
{
	int64_t deadline = 0;
	char tmp[16];
	int i, n;

	for (i = 0; i < T_NONE; i++)
		list_head[i].next = list_head[i].prev = &list_head[i];
	update_clock();
	for (;;) {
		if (stop_requested && !deadline) {
			begin_shutdown();
			deadline = now_ms + SHUTDOWN_GRACE_MS;
		}
		if (deadline && (nconns == 0 || now_ms >= deadline))
			break;
		n = poll(pfds, (nfds_t)nslots, deadline ?
		    (int)(deadline - now_ms) : poll_timeout());
		if (n < 0 && errno != EINTR) {
			perror("quinistry: poll");
			break;
		}
		update_clock(); /* after errno is read: strftime() may set it */
		if (n < 0 || (pfds[1].revents & POLLIN)) { /* a signal */
			n = (int)read(sig_pipe[0], tmp, sizeof tmp);
			continue;
		}
		if (accept_resume && now_ms >= accept_resume && listen_fd >= 0) {
			accept_resume = 0;
			pfds[0].fd = listen_fd;
		}
		run_ready(n);
		if (pfds[0].revents & POLLIN)
			accept_burst();
		pfds[0].revents = 0;
		expire_timeouts();
		log_flush();
	}
	log_printf("quinistry: stopped; %ld connections cut at the end of the "
	    "grace\n", nconns);
	for (i = nslots - 1; i >= 2; i--)
		conn_close(slot_conn[i]);
	log_flush();
}

/* ==== main ====
 *
 * Start-up is the only place allowed to die: options, reading our own
 * executable, building the image, binding the socket, all before the
 * banner. Then serve() runs until SIGTERM or SIGINT, and we exit 0.
 */

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: quinistry [-l ADDR:PORT] [-c MAXCONN] [-t SECONDS] [-q]\n"
	    "       quinistry export|source [-o FILE]\n\n"
	    "A Docker registry quine: serves its own executable as the image\n"
	    "quinistry:latest over the registry pull protocol (OCI distribution\n"
	    "spec v1.1, Docker Registry HTTP API V2).\n\n"
	    "  -l, --listen ADDR:PORT  address to listen on (default [::]:8080),\n"
	    "                          IPv6 and IPv4; ADDR an IP literal ([::1]\n"
	    "                          for IPv6) or localhost;\n"
	    "                          without -l, PORT=N in the environment sets\n"
	    "                          the port; port 0 picks a free one\n"
	    "  -c, --max-conns N       connections, 1 to %d (default %d); when\n"
	    "                          full, the longest idle one is dropped\n"
	    "  -t, --idle-timeout S    close keep-alive connections idle S seconds,\n"
	    "                          1 to %d (default %d)\n"
	    "  -q, --quiet             no per-request log lines\n"
	    "  -h, --help, --version   this text, or the version\n"
	    "  export [-o FILE]        the image as a tar (docker-archive and OCI\n"
	    "                          layout in one), to FILE or stdout\n"
	    "  source [-o FILE]        the source this binary was built from, a tar\n\n"
	    "The image runs /quinistry, exposes 8080/tcp and runs as user 65534:65534.\n"
	    "health check: GET /v2/ (200 {})\n"
	    "pull: docker pull localhost:8080/quinistry:latest\n",
	    HARD_MAX_CONNS, DEFAULT_MAX_CONNS, MAX_IDLE_TIMEOUT_S,
	    IDLE_TIMEOUT_MS / 1000);
}

/* A whole decimal number in [lo, hi], or -1. */
static long parse_num(const char *s, long lo, long hi)
{
	uint64_t v;

	if (parse_dec(s, strlen(s), &v) || v < (uint64_t)lo || v > (uint64_t)hi)
		return -1;
	return (long)v;
}

/* ADDR:PORT, [IPV6]:PORT, :PORT or PORT; "localhost" means 127.0.0.1. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss,
    socklen_t *sl)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(arg, ':');
	size_t hl = colon ? (size_t)(colon - arg) : 0;
	long port = parse_num(colon ? colon + 1 : arg, 0, 65535);
	char host[128];

	memset(ss, 0, sizeof *ss);
	if (hl >= 2 && arg[0] == '[' && arg[hl - 1] == ']')
		arg++, hl -= 2;
	else if (arg[0] == '[')
		return -1;
	if (port < 0 || hl >= sizeof host)
		return -1;
	snprintf(host, sizeof host, "%.*s", (int)hl, arg);
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		strcpy(host, "0.0.0.0");
	a4->sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		*sl = sizeof *a4;
		return 0;
	}
	a6->sin6_port = htons((unsigned short)port);
	a6->sin6_family = AF_INET6;
	*sl = sizeof *a6;
	return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : -1;
}

/* Options set on the listener, which Linux passes on to accepted sockets:
 * no Nagle (responses are whole sends), a bounded send buffer, deferred
 * accept, and for [::] IPv4 too. Last, delayed ACKs from the first byte:
 * TCP_QUICKACK 0 after listen() (which resets it) puts accepted sockets in
 * Linux's "pingpong" mode, so a request is acknowledged by its response,
 * not by a segment of its own (RFC 9293 3.8.6.3 allows the delay;
 * limits.sh counts the segments). A client that sends a head in two writes
 * without TCP_NODELAY then waits ~40 ms; curl and Go clients set it. */
static int open_listener(const struct sockaddr_storage *ss, socklen_t sl)
{
	static const int one = 1, zero = 0, sndbuf = SNDBUF_BYTES;
	static const int defer = DEFER_ACCEPT_S;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0), saved;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (bind(fd, (const struct sockaddr *)ss, sl) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
	listen_fd = fd;
	return 0;
}

/* Room for as many connections as asked: the soft descriptor limit raised
 * to the hard one, max_conns fitted under it. The tables are calloc'd and
 * handed out in order: pages no connection used are never touched. */
static void setup_tables(void)
{
	struct rlimit rl;
	long fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max < HARD_MAX_CONNS + FD_RESERVE ?
		    rl.rlim_max : HARD_MAX_CONNS + FD_RESERVE;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		fit = (long)rl.rlim_cur - FD_RESERVE;
		if (opt_max_conns > fit) {
			fprintf(stderr, "quinistry: descriptor limit %ld allows "
			    "%ld connections, not %ld\n", (long)rl.rlim_cur,
			    fit < 1 ? 1 : fit, opt_max_conns);
			opt_max_conns = fit < 1 ? 1 : fit;
		}
	}
	pfds = calloc((size_t)opt_max_conns + 2, sizeof *pfds);
	slot_conn = calloc((size_t)opt_max_conns + 2, sizeof *slot_conn);
	if (!pfds || !slot_conn)
		die(1, "out of memory for %ld connections", opt_max_conns);
}

/* The signal pipe and the handlers. */
static void setup_runtime(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		die(1, "pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN; /* a vanished client must not kill us */
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	add_slot(listen_fd);
	add_slot(sig_pipe[0]);
}

/* `export` and `source`: a tar to FILE or stdout, never to a terminal */
static void cmd_write(const char *cmd, const char *out, const void *tar,
    size_t len)
{
	int fd = 1;

	if (!out && isatty(1))
		die(2, "%s writes a tar: redirect it (quinistry %s > %s) or use "
		    "-o FILE", cmd, cmd, strcmp(cmd, "export") ? "source.tar" :
		    "quinistry.tar");
	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		die(1, "%s: %s", out, strerror(errno));
	if (write_all(fd, tar, len) || (out && close(fd) < 0))
		die(1, "%s: %s", cmd, strerror(errno));
}

/* The option getopt_long() just refused: -x, or --long as given. */
static const char *option_name(int argc, char **argv)
{
	static char short_opt[3] = "-?";
	const char *a = optind <= argc ? argv[optind - 1] : "";

	short_opt[1] = (char)optopt;
	return optopt && strncmp(a, "--", 2) != 0 ? short_opt : a;
}

/* The options, for the server or (after "export" or "source") for the
 * command; returns the listen address given, or the output file. */
static const char *parse_options(int argc, char **argv, int command)
{
	static const struct option longs[] = {
		{ "listen", 1, NULL, 'l' }, { "max-conns", 1, NULL, 'c' },
		{ "idle-timeout", 1, NULL, 't' }, { "quiet", 0, NULL, 'q' },
		{ "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' },
		{ "output", 1, NULL, 'o' }, { NULL, 0, NULL, 0 }
	};
	const char *arg = NULL;
	long t;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, command ? ":o:h" : ":l:c:t:qh",
	    longs, NULL)) != -1) {
		if (c == 'h' || c == 'V') {
			c == 'h' ? usage(stdout) : (void)puts("quinistry " VERSION
			    " (built by cc " __VERSION__ ")");
			exit(0);
		} else if (c == 'l' || c == 'o') {
			arg = optarg;
		} else if (c == 'q') {
			opt_quiet = 1;
		} else if (c == 'c' && (opt_max_conns = parse_num(optarg, 1,
		    HARD_MAX_CONNS)) < 0) {
			die(2, "bad connection count %s (want 1 to 1048576)",
			    optarg);
		} else if (c == 't' && (t = parse_num(optarg, 1,
		    MAX_IDLE_TIMEOUT_S)) < 0) {
			die(2, "bad idle timeout %s (want 1 to 3600 s)", optarg);
		} else if (c == 't') {
			list_timeout[T_IDLE] = t * 1000;
		} else if (c == ':' || c == '?') {
			die(2, c == ':' ? "missing value for %s" :
			    "unknown option %s", option_name(argc, argv));
		}
	}
	if (optind < argc)
		die(2, "unknown argument %s", argv[optind]);
	return arg;
}

static void print_banner(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char addr[64];

	fprintf(stderr, "quinistry " VERSION ": serving quinistry:latest "
	    "(linux/" ARCH ")\n  docker manifest %s\n  oci manifest    %s\n"
	    "  config          %s\n  layer           %s (%zu bytes)\n"
	    "  source          %s (artifact manifest; tar %zu bytes)\n",
	    objects[OBJ_DOCKER].digest, objects[OBJ_OCI].digest,
	    objects[OBJ_CONFIG].digest, objects[OBJ_LAYER].digest, layer_len,
	    objects[OBJ_SOURCE_MANIFEST].digest, objects[OBJ_SOURCE].len);
	/* A dynamically linked binary has an interpreter (AT_BASE, the
	 * loader's address): its image cannot run in an empty container. */
	if (getauxval(AT_BASE))
		fprintf(stderr, "quinistry: warning: this binary is dynamically "
		    "linked, so the image it serves will not run in an empty\n"
		    "  (scratch) container. Build it statically: make "
		    "(musl-gcc -static) or cc -static.\n");
	getsockname(listen_fd, (struct sockaddr *)&ss, &sl);
	format_addr((struct sockaddr *)&ss, addr, sizeof addr);
	fprintf(stderr, "quinistry: listening on %s\n", addr);
}

int main(int argc, char **argv)
{
	const char *port = getenv("PORT"), *spec;
	const char *cmd = argc > 1 && (strcmp(argv[1], "export") == 0 ||
	    strcmp(argv[1], "source") == 0) ? argv[1] : NULL;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	unsigned char *tar;
	size_t len;
	char buf[64];

	spec = parse_options(argc - !!cmd, argv + !!cmd, !!cmd);
	if (read_self("/proc/self/exe") && read_self(argv[0]))
		die(1, "cannot read my own executable (/proc/self/exe): %s",
		    strerror(errno));
	build_image();
	free(self_bin); /* the layer holds a copy */
	if (cmd) { /* a tar to write, made now for export */
		tar = strcmp(cmd, "export") == 0 ? export_image(&len) : NULL;
		cmd_write(cmd, spec, tar ? tar : objects[OBJ_SOURCE].data,
		    tar ? len : objects[OBJ_SOURCE].len);
		free(tar);
		return 0;
	}
	if (!spec && port && parse_num(port, 0, 65535) < 0)
		die(2, "bad PORT %s (want 0 to 65535)", port);
	port = port ? port : "8080";
	snprintf(buf, sizeof buf, "[::]:%s", port);
	if (parse_listen(spec ? spec : buf, &ss, &sl))
		die(2, "bad listen address %s (want ADDR:PORT: ADDR an IP "
		    "literal, [::1] for IPv6, or localhost; PORT 0 to 65535)",
		    spec);
	setup_tables();
	/* By default both IPv6 and IPv4; a kernel without IPv6 gets IPv4. */
	if (open_listener(&ss, sl) && !spec && (errno == EAFNOSUPPORT ||
	    errno == EADDRNOTAVAIL)) {
		fprintf(stderr, "quinistry: no IPv6 here (%s): listening on "
		    "IPv4 only\n", strerror(errno));
		snprintf(buf, sizeof buf, "0.0.0.0:%s", port);
		parse_listen(buf, &ss, &sl);
		open_listener(&ss, sl);
	}
	if (listen_fd < 0)
		die(1, "cannot listen on %s: %s", spec ? spec : buf,
		    strerror(errno));
	print_banner();
	setup_runtime();
	serve();
	return 0;
}
