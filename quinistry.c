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
 *   /v2/quinistry/manifests/<tag|digest>   tag "latest", or either digest
 *   /v2/quinistry/blobs/<digest>           the config and the layer, ranges
 *   /v2/quinistry/tags/list?n=&last=       {"name":"quinistry","tags":[..]}
 *   /v2/_catalog?n=&last=                  {"repositories":["quinistry"]}
 *   /v2/quinistry/referrers/<digest>       an empty OCI image index
 *
 * Build: `make` (static, musl-gcc when present), then `./quinistry`, or
 * `./quinistry export > quinistry.tar` to write the image for docker load,
 * podman load or ctr images import. See README.md.
 *
 * Design: libc only, one thread, one poll() loop, non-blocking sockets,
 * HTTP/1.1 parsed by hand. It runs on Linux (it reads /proc/self/exe) and
 * uses Linux where that pays: accept4(), deferred accept and socket
 * options inherited from the listener (delayed ACKs from the first byte
 * among them), MSG_MORE so that a FIN rides on the last response, and
 * sendfile() of the layer from a memfd. The file reads top to bottom: limits, types, utilities, the
 * image, HTTP parsing, request semantics, routes, the connection state
 * machine, the event loop, main.
 */
#define _GNU_SOURCE /* accept4() (POSIX.1-2024), memfd_create(), MSG_MORE */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

#define VERSION "1.0.0"

/* ==== Limits ====
 *
 * Every bound the server enforces, in one place. A registry faces the
 * network, so nothing a client sends may make it allocate, block or wait
 * without limit.
 */

/* The whole request head (request line + fields) must fit in one buffer;
 * the parser never allocates. Real clients send under 1 KiB (podman's six
 * Accept lines are the longest seen); 8 KiB is what most servers allow.
 * Larger heads get 431 (RFC 6585 section 5). */
#define MAX_HEAD 8192
/* A connection's first buffer: every client we know sends heads under
 * 2 KiB, and a head that outgrows it moves to a MAX_HEAD buffer. So a
 * client that stalls mid-request (slowloris) pins ~3 KiB, not ~10. */
#define SMALL_HEAD 2048
/* Longest request-target. Our longest real URI is ~110 bytes; RFC 9112
 * section 3 recommends supporting at least 8000 octets for general servers,
 * but a registry with one image has nothing longer to route. 414 past it. */
#define MAX_TARGET 2048
/* Header fields per request (431 past it); podman sends about ten. */
#define MAX_HEADERS 64
/* Longest method token we keep; ours are at most 6 characters. */
#define MAX_METHOD 16
/* OCI distribution-spec "Pulling manifests": the repository name with the
 * registry host must stay under 256 characters. */
#define MAX_NAME 255
/* A request with a body is answered and then the connection is closed (we
 * never need a body); a declared body larger than this is refused with 413
 * before the answer, so a client does not keep streaming it. */
#define MAX_BODY (1024 * 1024)
/* Default and hard ceiling for concurrent connections (-c). Each idle
 * keep-alive connection costs ~100 bytes here plus the kernel's socket. */
#define DEFAULT_MAX_CONNS 16384
#define HARD_MAX_CONNS (1 << 20)
/* Descriptors kept free for the listener, the signal pipe and stdio. */
#define FD_RESERVE 16
/* From the first byte of a request head until its last: a slowloris client
 * that trickles bytes is cut off here, however steadily it trickles. */
#define HEAD_TIMEOUT_MS 10000
/* How long a keep-alive connection may sit between requests (the default
 * of --idle-timeout; behind a load balancer, set it above the balancer's). */
#define IDLE_TIMEOUT_MS 60000
#define MAX_IDLE_TIMEOUT_S 3600
/* poll() costs time for every descriptor it is given, ready or not: about
 * 0.7 us each on the development machine, so a pass over 10,000 idle
 * keep-alive connections costs ~7 ms. So a connection quiet for
 * HOT_IDLE_MS turns "cold": while others keep the server busy, only the
 * hot ones are polled every pass, and the cold ones in a "scan" between
 * COLD_POLL_MS and COLD_POLL_MAX_MS apart, spaced so that scans take at
 * most 1/COLD_SCAN_SHARE of the time; whenever the hot ones are quiet,
 * everything is polled and the loop sleeps in the kernel as usual. The
 * price: under load, a client that speaks after a silence may wait until
 * the next scan to be heard. */
#define HOT_IDLE_MS 1000
#define COLD_POLL_MS 100
#define COLD_POLL_MAX_MS 1000
#define COLD_SCAN_SHARE 20
/* Many connections that went quiet together (a reconnect storm, a client
 * pool) would make every pass poll them all for HOT_IDLE_MS. Past
 * HOT_MAX hot connections, the ones quiet for HOT_MIN_MS turn cold at
 * once, oldest first. */
#define HOT_MAX 256
#define HOT_MIN_MS 50
/* How long a response may make no progress (a client that stops reading). */
#define WRITE_TIMEOUT_MS 10000
/* After the last response on a closing connection we shut down our side
 * and read what the client still sends, so that an unread request body
 * does not turn our close into a reset that destroys the response
 * (RFC 9112 section 9.6). This bounds that wait. */
#define LINGER_TIMEOUT_MS 2000
/* SIGTERM/SIGINT: time granted to in-flight responses before exit. */
#define SHUTDOWN_GRACE_MS 500
/* Accept this many connections per loop pass at most, so a connection
 * flood cannot starve the clients already being served. */
#define ACCEPT_BURST 128
/* When accept() fails for lack of descriptors (EMFILE/ENFILE), stop
 * watching the listener this long instead of spinning on it. */
#define ACCEPT_PAUSE_MS 100
#define LISTEN_BACKLOG 4096
/* TCP_DEFER_ACCEPT: the kernel hands us a connection once its first bytes
 * have arrived, so the request is read right after accept() instead of
 * one poll() pass later (measured: the server's CPU per new connection
 * falls by about 30%). A client that
 * connects and says nothing is accepted anyway after about this long
 * (the kernel counts it in SYN-ACK retransmits, the first after 1 s),
 * and only then does its idle timeout start. */
#define DEFER_ACCEPT_S 1
/* Kernel send buffer per connection. Left to autotuning, a client that
 * pipelines layer requests and never reads makes the kernel queue megabytes
 * for it, and a thousand such clients exhaust TCP memory for everyone.
 * 128 KiB (the kernel doubles it) still holds our largest response. */
#define SNDBUF_BYTES (128 * 1024)
/* Per-connection buffers are recycled through free lists (one per size);
 * keep at most this many spare ones so a burst does not pin memory. */
#define POOL_KEEP 256
/* Response head: status line and fields; ours are under 600 bytes. */
#define MAX_RESPONSE_HEAD 1024
/* Request log lines are gathered and written once per loop pass. */
#define LOG_BUF (64 * 1024)
/* Request targets longer than this are shortened in the log. */
#define LOG_TARGET_MAX 200
/* The binary we wrap; anything larger is surely not us. */
#define MAX_SELF (64 * 1024 * 1024)
/* Bodies at least this long that come from the layer are sent with
 * sendfile() from an in-memory file, so the kernel passes pages instead
 * of copying ~100 KiB per pull; shorter ones (ranges) go with send(). */
#define SENDFILE_MIN (16 * 1024)
/* Largest JSON document we emit (config and manifests are ~500 bytes). */
#define MAX_JSON 2048

/* ==== Types ====
 *
 * An object is anything the registry serves with a digest: the blobs, the
 * manifests and the small fixed JSON answers. Its response fields that never
 * change are rendered once at start-up. A request is a parsed head pointing
 * into the connection's buffer. A connection owns at most one buffer, and
 * only while it has bytes to keep: idle keep-alive connections cost a
 * struct conn and nothing else.
 */

enum {
	OBJ_BASE, OBJ_DOCKER, OBJ_OCI, OBJ_CONFIG, OBJ_LAYER, OBJ_TAGS,
	OBJ_TAGS_EMPTY, OBJ_CATALOG, OBJ_CATALOG_EMPTY, OBJ_REFERRERS, OBJ_COUNT
};

struct object {
	const char *what;           /* for the log: manifest, config, layer.. */
	const char *type;           /* Content-Type */
	const unsigned char *data;
	size_t len;
	int ranges;                 /* blobs answer Range requests */
	char digest[72];            /* "sha256:<hex>" */
	char fields[320];           /* Content-Type..ETag, rendered once */
	size_t fields_len;
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
	int status;                 /* when parsing fails: the answer to give */
};

/* The fields of a request that routing and framing care about, gathered
 * in one pass over the headers. */
struct reqinfo {
	int method;                 /* index into methods[] or -1 */
	int keep;                   /* keep the connection open afterwards */
	int has_body;
	int accept_oci, accept_docker;
	const char *range, *if_none_match, *if_range;
	size_t range_len, inm_len, if_range_len;
};

/* What to answer: a status, then either an object or an error body. */
struct reply {
	int status;
	const struct object *obj;
	const struct errdef *err;
	uint64_t first, last;       /* byte range of obj for 206 */
	int by_tag;                 /* negotiated: add Vary: Accept */
	int allow;                  /* add Allow: GET, HEAD (405) */
	int filters;                /* add OCI-Filters-Applied */
	const char *what;           /* log label */
};

enum { C_IDLE, C_READ, C_WRITE, C_LINGER };
/* Timeout lists: each holds connections of one timeout kind, oldest first,
 * so the nearest deadline of a list is always its head. */
enum { T_HEAD, T_IDLE, T_COLD, T_WRITE, T_LINGER, T_NONE };

struct iobuf {
	struct iobuf *next;         /* free list */
	size_t len, cap;            /* request bytes in in[], its size */
	char out[MAX_RESPONSE_HEAD];
	/* what the log line needs once the response is done */
	char log_method[MAX_METHOD + 1];
	char log_target[LOG_TARGET_MAX + 4];
	const char *log_what;
	int log_status;
	char in[];                  /* SMALL_HEAD or MAX_HEAD bytes */
};

struct conn {
	int fd;
	int slot;                   /* index in the pollfd array */
	unsigned char state, list, keep, family;
	unsigned char linger;       /* unread input may follow: drain on close */
	unsigned short port;
	unsigned char addr[16];
	int64_t since;              /* when the current timeout began, ms */
	struct conn *prev, *next;   /* timeout list, or free list */
	struct iobuf *buf;
	size_t out_len, out_off;    /* response head in buf->out */
	const unsigned char *body;
	size_t body_len, body_off;
	int zero_copy;              /* body goes out with sendfile(layer_fd) */
};

/* ==== Global state ====
 *
 * One process serves one image, so the image, the connection table and the
 * loop's clock are file-scope. Everything is set once by main() except the
 * clock and the tables the loop maintains.
 */

static unsigned char *self_bin;
static size_t self_len;
static unsigned char *layer;
static size_t layer_len;
static int layer_fd = -1;           /* the layer in a memfd, for sendfile */
static char config_json[MAX_JSON], docker_json[MAX_JSON], oci_json[MAX_JSON];
static struct object objects[OBJ_COUNT];

static int opt_quiet;
static long opt_max_conns = DEFAULT_MAX_CONNS;

static int64_t now_ms;              /* monotonic, cached once per pass */
static time_t now_wall;             /* for Date and the log */
static char date_field[64] = "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
static size_t date_len;

static struct conn *conns;          /* max_conns entries */
static long conns_used;             /* conns[] handed out so far */
static struct conn *free_conns;
static struct pollfd *pfds;         /* [0] listener, [1] signal pipe, conns */
static struct conn **slot_conn;
static int nslots;                  /* pfds[] in use */
static int nhot;                    /* pfds[0..nhot) are polled every pass */
static long nconns;
static struct conn list_head[T_NONE];   /* sentinels of the timeout lists */
/* T_IDLE's and T_COLD's entries are set from --idle-timeout by main();
 * a cold connection keeps the "since" it had as an idle one, so T_COLD's
 * timeout is the whole idle timeout */
static int64_t list_timeout[T_NONE] = {
	HEAD_TIMEOUT_MS, HOT_IDLE_MS, IDLE_TIMEOUT_MS,
	WRITE_TIMEOUT_MS, LINGER_TIMEOUT_MS
};
static struct iobuf *free_bufs[2];  /* [0] SMALL_HEAD, [1] MAX_HEAD */
static int nfree_bufs[2];
static int listen_fd = -1;
static int64_t accept_resume;       /* listener paused until then (0: not) */
static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t stop_requested;

static char log_buf[LOG_BUF];
static size_t log_len;

/* ==== Utilities ====
 *
 * Small helpers: a bounded string builder, a printf-style JSON emitter,
 * clocks, case-insensitive comparisons and the request log.
 */

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

/* a string literal, its length known at compile time */
#define SB_LIT(b, lit) sb_put((b), (lit), sizeof(lit) - 1)

static void sb_str(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_num(struct sb *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_put(b, tmp + i, sizeof tmp - i);
}

/* The JSON emitter: literal text is copied, and
 *   %s  a C string, written as a quoted, escaped JSON string
 *   %u  an unsigned long long, as a JSON number
 * so documents are written as readable templates with fixed key order and
 * no whitespace, which is what makes their digests byte-stable. */
static size_t json_emit(char *out, size_t cap, const char *fmt, ...)
{
	struct sb b = { out, 0, cap - 1, 0 };
	va_list ap;
	const char *s;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sb_put(&b, fmt, 1);
			continue;
		}
		switch (*++fmt) {
		case 'u':
			sb_num(&b, (uint64_t)va_arg(ap, unsigned long long));
			break;
		case 's':
			sb_put(&b, "\"", 1);
			for (s = va_arg(ap, const char *); *s; s++) {
				unsigned char ch = (unsigned char)*s;
				char esc[8];

				if (ch == '"' || ch == '\\') {
					esc[0] = '\\';
					esc[1] = (char)ch;
					sb_put(&b, esc, 2);
				} else if (ch < 0x20) {
					snprintf(esc, sizeof esc, "\\u%04x", ch);
					sb_put(&b, esc, 6);
				} else {
					sb_put(&b, s, 1);
				}
			}
			sb_put(&b, "\"", 1);
			break;
		default:
			sb_put(&b, fmt - 1, 2);
		}
	}
	va_end(ap);
	if (b.overflow) {
		fprintf(stderr, "quinistry: JSON document too large\n");
		exit(1); /* start-up only */
	}
	out[b.len] = '\0';
	return b.len;
}

static int64_t clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t clock_ms(void)
{
	return clock_us() / 1000;
}

/* RFC 9110 section 6.6.1: an origin server with a clock sends Date; the
 * IMF-fixdate form of section 5.6.7, rendered once per second. */
static void update_clock(void)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t t = time(NULL);
	struct tm tm;

	now_ms = clock_ms();
	if (t == now_wall && date_len)
		return;
	now_wall = t;
	gmtime_r(&t, &tm);
	date_len = (size_t)snprintf(date_field, sizeof date_field,
	    "Date: %.3s, %02d %.3s %04d %02d:%02d:%02d GMT\r\n",
	    days + 3 * tm.tm_wday, tm.tm_mday, months + 3 * tm.tm_mon,
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Word-at-a-time byte tests, for the scanners of the HTTP parser and
 * the comparisons here: eight bytes per step while none of them needs a
 * closer look. For a 64-bit word x and n <= 128, (x - n * ONES) & ~x &
 * HIGHS is non-zero exactly when some byte of x is below n (bytes of 0x80
 * and up never count); a byte equal to c is a zero byte of x ^ (c * ONES). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static uint64_t load8(const char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

static int has_below(uint64_t x, unsigned n)
{
	return ((x - ONES * n) & ~x & HIGHS) != 0;
}

static int has_byte(uint64_t x, unsigned char c)
{
	return has_below(x ^ (ONES * c), 1);
}

/* The index of the first byte c in v[i..n), or n: memchr() for the short
 * strings of a request, where musl's byte-wise start costs more. */
static size_t find_byte(const char *v, size_t i, size_t n, unsigned char c)
{
	while (n - i >= 8 && !has_byte(load8(v + i), c))
		i += 8;
	while (i < n && (unsigned char)v[i] != c)
		i++;
	return i;
}

/* Case-insensitive equality of a[0..n) and b[0..bn). Lengths first, then
 * equal words (the common case), then byte by byte. */
static int ieqn(const char *a, size_t n, const char *b, size_t bn)
{
	size_t i = 0;

	if (n != bn)
		return 0;
	while (n - i >= 8 && load8(a + i) == load8(b + i))
		i += 8;
	for (; i < n; i++)
		if (a[i] != b[i] &&
		    lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int ieq(const char *a, size_t n, const char *b)
{
	return ieqn(a, n, b, strlen(b));
}

/* ieq() against a string literal, whose length the compiler knows */
#define IEQ_LIT(a, n, lit) ieqn((a), (n), (lit), sizeof(lit) - 1)

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void log_flush(void)
{
	size_t off = 0;

	while (off < log_len) {
		ssize_t n = write(2, log_buf + off, log_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a log we cannot write must not stop serving */
		off += (size_t)n;
	}
	log_len = 0;
}

static void format_addr(const struct conn *c, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (c->family == AF_INET6) {
		inet_ntop(AF_INET6, c->addr, ip, sizeof ip);
		snprintf(out, cap, "[%s]:%u", ip, c->port);
	} else {
		inet_ntop(AF_INET, c->addr, ip, sizeof ip);
		snprintf(out, cap, "%s:%u", ip, c->port);
	}
}

/* One line per request: time, client, method, target, status, body bytes
 * sent, what was served. Gathered in log_buf, flushed once per loop pass,
 * so logging costs no system call per request. */
static void log_request(const struct conn *c, uint64_t bytes)
{
	const struct iobuf *b = c->buf;
	char addr[INET6_ADDRSTRLEN + 10], line[LOG_TARGET_MAX + 200];
	struct tm tm;
	int n;

	if (opt_quiet || !b)
		return;
	gmtime_r(&now_wall, &tm);
	format_addr(c, addr, sizeof addr);
	n = snprintf(line, sizeof line,
	    "%04d-%02d-%02dT%02d:%02d:%02dZ %s %s %s %d %llu %s\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, addr, b->log_method, b->log_target,
	    b->log_status, (unsigned long long)bytes, b->log_what);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = (int)sizeof line - 1;
	if ((size_t)n > sizeof log_buf - log_len)
		log_flush();
	memcpy(log_buf + log_len, line, (size_t)n);
	log_len += (size_t)n;
}

/* Copy untrusted text into a log field: printable ASCII only, shortened. */
static void log_copy(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i, max = cap - 4;

	for (i = 0; i < n && i < max; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	if (n > max)
		memcpy(dst + i, "...", 3), i += 3;
	if (i == 0)
		dst[i++] = '-';
	dst[i] = '\0';
}

/* ==== The image ====
 *
 * Built once at start-up from the bytes of our own executable: a ustar
 * layer, the image config, and two manifests. Each is hashed with our own
 * SHA-256 and becomes an object with its response fields pre-rendered. No
 * clock, host name or path leaks in: the same binary always yields the
 * same digests, which is the fixed point the project is named for.
 */

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "quinistry: out of memory\n");
		exit(1);
	}
	return p;
}

/* Read the whole of /proc/self/exe (argv[0] where /proc is missing). */
static int read_self(const char *argv0)
{
	const char *paths[2] = { "/proc/self/exe", argv0 };
	int i;

	for (i = 0; i < 2; i++) {
		struct stat st;
		size_t off = 0;
		int fd = paths[i] ? open(paths[i], O_RDONLY) : -1;

		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_size <= 0 || st.st_size > MAX_SELF) {
			close(fd);
			continue;
		}
		self_len = (size_t)st.st_size;
		self_bin = xmalloc(self_len);
		while (off < self_len) {
			ssize_t n = read(fd, self_bin + off, self_len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		close(fd);
		if (off == self_len)
			return 0;
		free(self_bin);
		self_bin = NULL;
	}
	return -1;
}

static uint64_t elf_word(const unsigned char *p, int size, int big)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < size; i++)
		v |= (uint64_t)p[big ? size - 1 - i : i] << (8 * i);
	return v;
}

/* A dynamically linked binary names its loader in a PT_INTERP program
 * header (ELF gABI, "Program Header"). Such a binary cannot run in the
 * empty image we serve, so we warn. Returns 1 if dynamic. */
static int elf_is_dynamic(const unsigned char *b, size_t n)
{
	int is64, big, wsz;
	uint64_t phoff, phentsize, phnum, i;

	if (n < 64 || memcmp(b, "\177ELF", 4) != 0)
		return 0;
	is64 = b[4] == 2;
	big = b[5] == 2;
	wsz = is64 ? 8 : 4;
	phoff = elf_word(b + (is64 ? 32 : 28), wsz, big);
	phentsize = elf_word(b + (is64 ? 54 : 42), 2, big);
	phnum = elf_word(b + (is64 ? 56 : 44), 2, big);
	if (phentsize < 4)
		return 0;
	for (i = 0; i < phnum; i++) {
		uint64_t at = phoff + i * phentsize;

		if (at > n || n - at < 4)
			break;
		if (elf_word(b + at, 4, big) == 3) /* PT_INTERP */
			return 1;
	}
	return 0;
}

/* A POSIX ustar header (pax "ustar Interchange Format"): every field is
 * fixed, so the layer depends only on name, size and contents. uid/gid 0,
 * empty user and group names, mtime 0. */
static void tar_header(unsigned char h[512], const char *name, size_t size,
    int type, unsigned mode)
{
	unsigned sum = 0;
	int i;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", mode);
	snprintf((char *)h + 108, 8, "%07o", 0u);
	snprintf((char *)h + 116, 8, "%07o", 0u);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 0u);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);      /* magic, NUL-terminated */
	memcpy(h + 263, "00", 2);         /* version */
	snprintf((char *)h + 329, 8, "%07o", 0u); /* devmajor */
	snprintf((char *)h + 337, 8, "%07o", 0u); /* devminor */
	/* The checksum is summed with its own field read as spaces. */
	memset(h + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static size_t tar_pad(size_t n)
{
	return (512 - n % 512) % 512;
}

/* The layer: one regular file "quinistry", 0755, then the two zero blocks
 * that end an archive. */
static void build_layer(void)
{
	size_t pad = tar_pad(self_len);

	layer_len = 512 + self_len + pad + 1024;
	layer = calloc(1, layer_len);
	if (!layer) {
		fprintf(stderr, "quinistry: out of memory\n");
		exit(1);
	}
	tar_header(layer, "quinistry", self_len, '0', 0755);
	memcpy(layer + 512, self_bin, self_len);
}

/* GOARCH names, as the image spec's config "architecture" asks. */
static const char *image_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__i386__)
	return "386";
#elif defined(__arm__)
	return "arm";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__mips__)
	return "mips";
#else
	return "unknown";
#endif
}

#define MT_DOCKER "application/vnd.docker.distribution.manifest.v2+json"
#define MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_JSON "application/json"
#define MT_BLOB "application/octet-stream"

static void set_object(int i, const char *what, const char *type,
    const void *data, size_t len, int ranges)
{
	struct object *o = &objects[i];
	struct sb b;
	char hex[65];

	o->what = what;
	o->type = type;
	o->data = data;
	o->len = len;
	o->ranges = ranges;
	sha256_digest_hex(data, len, hex);
	snprintf(o->digest, sizeof o->digest, "sha256:%s", hex);
	b.p = o->fields;
	b.len = 0;
	b.cap = sizeof o->fields;
	b.overflow = 0;
	sb_str(&b, "Content-Type: ");
	sb_str(&b, type);
	/* The distribution spec names Docker-Content-Digest; the ETag makes
	 * If-None-Match revalidation work (RFC 9110 section 8.8.3). */
	sb_str(&b, "\r\nDocker-Content-Digest: ");
	sb_str(&b, o->digest);
	sb_str(&b, "\r\nETag: \"");
	sb_str(&b, o->digest);
	sb_str(&b, "\"\r\n");
	if (ranges)
		sb_str(&b, "Accept-Ranges: bytes\r\n");
	o->fields_len = b.len;
}

static const char base_json[] = "{}";
static const char tags_json[] = "{\"name\":\"quinistry\",\"tags\":[\"latest\"]}";
static const char tags_empty_json[] = "{\"name\":\"quinistry\",\"tags\":[]}";
static const char catalog_json[] = "{\"repositories\":[\"quinistry\"]}";
static const char catalog_empty_json[] = "{\"repositories\":[]}";
static const char referrers_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":[]}";

/* The config (OCI image-spec config.md; Docker image spec v1.2): run
 * /quinistry as nobody, expose 8080, a fixed creation time. diff_ids
 * holds the digest of the uncompressed layer, which here is the layer. */
static void build_image(void)
{
	size_t n;

	build_layer();
	set_object(OBJ_LAYER, "layer", MT_BLOB, layer, layer_len, 1);
	n = json_emit(config_json, sizeof config_json,
	    "{\"architecture\":%s,\"os\":\"linux\",\"config\":{"
	    "\"User\":\"65534:65534\",\"ExposedPorts\":{\"8080/tcp\":{}},"
	    "\"Entrypoint\":[\"/quinistry\"]},"
	    "\"created\":\"1970-01-01T00:00:00Z\","
	    "\"history\":[{\"created\":\"1970-01-01T00:00:00Z\","
	    "\"created_by\":%s}],"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
	    image_arch(), "quinistry: its own executable as /quinistry",
	    objects[OBJ_LAYER].digest);
	set_object(OBJ_CONFIG, "config", MT_BLOB, config_json, n, 1);

	/* Docker Image Manifest V2, Schema 2 and the OCI image manifest:
	 * the same image under two vocabularies. mediaType equals the
	 * Content-Type each is served with (skopeo checks it). */
	n = json_emit(docker_json, sizeof docker_json,
	    "{\"schemaVersion\":2,\"mediaType\":%s,"
	    "\"config\":{\"mediaType\":%s,\"size\":%u,\"digest\":%s},"
	    "\"layers\":[{\"mediaType\":%s,\"size\":%u,\"digest\":%s}]}",
	    MT_DOCKER, "application/vnd.docker.container.image.v1+json",
	    (unsigned long long)objects[OBJ_CONFIG].len,
	    objects[OBJ_CONFIG].digest,
	    "application/vnd.docker.image.rootfs.diff.tar",
	    (unsigned long long)layer_len, objects[OBJ_LAYER].digest);
	set_object(OBJ_DOCKER, "manifest", MT_DOCKER, docker_json, n, 0);
	n = json_emit(oci_json, sizeof oci_json,
	    "{\"schemaVersion\":2,\"mediaType\":%s,"
	    "\"config\":{\"mediaType\":%s,\"size\":%u,\"digest\":%s},"
	    "\"layers\":[{\"mediaType\":%s,\"size\":%u,\"digest\":%s}]}",
	    MT_OCI, "application/vnd.oci.image.config.v1+json",
	    (unsigned long long)objects[OBJ_CONFIG].len,
	    objects[OBJ_CONFIG].digest,
	    "application/vnd.oci.image.layer.v1.tar",
	    (unsigned long long)layer_len, objects[OBJ_LAYER].digest);
	set_object(OBJ_OCI, "manifest", MT_OCI, oci_json, n, 0);

	set_object(OBJ_BASE, "base", MT_JSON, base_json, sizeof base_json - 1, 0);
	set_object(OBJ_TAGS, "tags", MT_JSON, tags_json, sizeof tags_json - 1, 0);
	set_object(OBJ_TAGS_EMPTY, "tags", MT_JSON, tags_empty_json,
	    sizeof tags_empty_json - 1, 0);
	set_object(OBJ_CATALOG, "catalog", MT_JSON, catalog_json,
	    sizeof catalog_json - 1, 0);
	set_object(OBJ_CATALOG_EMPTY, "catalog", MT_JSON, catalog_empty_json,
	    sizeof catalog_empty_json - 1, 0);
	set_object(OBJ_REFERRERS, "referrers", MT_INDEX, referrers_json,
	    sizeof referrers_json - 1, 0);
}

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

/* "blobs/sha256/<hex>": where an OCI image layout keeps a blob. */
static void blob_path(char out[80], const struct object *o)
{
	memcpy(out, "blobs/sha256/", 13);
	memcpy(out + 13, o->digest + 7, 64);
	out[77] = '\0';
}

static int tar_entry(int fd, const char *name, const void *data, size_t len)
{
	static const unsigned char zero[512];
	unsigned char h[512];
	int dir = len == 0 && name[strlen(name) - 1] == '/';

	tar_header(h, name, len, dir ? '5' : '0', dir ? 0755 : 0644);
	if (write_all(fd, h, 512) || (len && write_all(fd, data, len)) ||
	    write_all(fd, zero, tar_pad(len)))
		return -1;
	return 0;
}

/* `quinistry export`: the image as one tar that is both a docker-archive
 * (manifest.json, read by docker load and skopeo docker-archive:) and an
 * OCI image layout (oci-layout, index.json, blobs/; OCI image-spec
 * image-layout.md, read by podman load, ctr images import and skopeo
 * oci-archive:). Blobs live once, under blobs/sha256/, for both. */
static int export_image(int fd)
{
	static const unsigned char zero[1024];
	const int blobs[3] = { OBJ_OCI, OBJ_CONFIG, OBJ_LAYER };
	char index_json[MAX_JSON], manifest_json[MAX_JSON], name[80];
	size_t ni, nm;
	int i;

	ni = json_emit(index_json, sizeof index_json,
	    "{\"schemaVersion\":2,\"mediaType\":%s,\"manifests\":[{"
	    "\"mediaType\":%s,\"digest\":%s,\"size\":%u,\"annotations\":{"
	    "\"io.containerd.image.name\":%s,"
	    "\"org.opencontainers.image.ref.name\":%s}}]}",
	    MT_INDEX, MT_OCI, objects[OBJ_OCI].digest,
	    (unsigned long long)objects[OBJ_OCI].len,
	    "docker.io/library/quinistry:latest", "latest");
	blob_path(name, &objects[OBJ_CONFIG]);
	nm = json_emit(manifest_json, sizeof manifest_json,
	    "[{\"Config\":%s,\"RepoTags\":[%s],\"Layers\":[",
	    name, "quinistry:latest");
	blob_path(name, &objects[OBJ_LAYER]);
	nm += json_emit(manifest_json + nm, sizeof manifest_json - nm,
	    "%s]}]", name);

	if (tar_entry(fd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}",
	        30) ||
	    tar_entry(fd, "index.json", index_json, ni) ||
	    tar_entry(fd, "manifest.json", manifest_json, nm) ||
	    tar_entry(fd, "blobs/", NULL, 0) ||
	    tar_entry(fd, "blobs/sha256/", NULL, 0))
		return -1;
	for (i = 0; i < 3; i++) {
		const struct object *o = &objects[blobs[i]];

		blob_path(name, o);
		if (tar_entry(fd, name, o->data, o->len))
			return -1;
	}
	return write_all(fd, zero, sizeof zero);
}

/* ==== HTTP parsing ====
 *
 * parse_request() reads a request head (RFC 9112 sections 2-5) straight
 * from the connection buffer. It never allocates or copies: the request
 * points into the buffer. It returns the head's length when complete,
 * PARSE_INCOMPLETE when more bytes are needed (every proper prefix of a
 * valid head gives this), or PARSE_ERROR with rq->status set to the answer.
 * Because it reports exactly how much it consumed, pipelined requests are
 * simply parsed one after another from the same buffer.
 *
 * It is strict where leniency has bitten servers before (request
 * smuggling, header injection): bare CR or LF, obs-fold, whitespace before
 * a colon and control characters are all refused with 400.
 */

#define PARSE_INCOMPLETE (-2)
#define PARSE_ERROR (-1)

/* tchar, RFC 9110 section 5.6.2: ALPHA, DIGIT and !#$%&'*+-.^_`|~.
 * A bit per ASCII code, since the parser asks for every name byte. */
static const uint32_t tchar_bits[4] = {
	0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff
};

static int is_tchar(unsigned char c)
{
	return c < 128 && (tchar_bits[c >> 5] >> (c & 31) & 1);
}

/* The end of the run of request-target bytes (VCHAR, 0x21-0x7e) at i,
 * looking at no more than max bytes. */
static size_t scan_target(const char *buf, size_t i, size_t len, size_t max)
{
	size_t end = len - i > max ? i + max : len;

	while (end - i >= 8) {
		uint64_t x = load8(buf + i);
		if ((x & HIGHS) || has_below(x, 0x21) || has_byte(x, 0x7f))
			break;
		i += 8;
	}
	while (i < end && (unsigned char)buf[i] > 0x20 &&
	    (unsigned char)buf[i] < 0x7f)
		i++;
	return i;
}

/* The end of the run of field-value bytes at i: field-vchar, obs-text,
 * SP and HTAB, that is anything but CTLs other than HTAB (RFC 9110 5.5). */
static size_t scan_value(const char *buf, size_t i, size_t len)
{
	while (len - i >= 8) {
		uint64_t x = load8(buf + i);
		if (has_below(x, 0x20) || has_byte(x, 0x7f))
			break;
		i += 8;
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			break;
	}
	return i;
}

static long parse_fail(struct request *rq, int status)
{
	rq->status = status;
	return PARSE_ERROR;
}

static long parse_request(const char *buf, size_t len, struct request *rq)
{
	size_t i = 0, start;

	rq->nheaders = 0;
	rq->status = 0;
	/* RFC 9112 section 2.2: ignore empty lines before the request. */
	while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
		i += 2;
	if (i + 1 == len && buf[i] == '\r')
		return PARSE_INCOMPLETE;

	/* method SP request-target SP HTTP-version CRLF (section 3) */
	start = i;
	while (i < len && is_tchar((unsigned char)buf[i]))
		i++;
	if (i == len)
		return i - start > MAX_METHOD ? parse_fail(rq, 501) :
		    len >= MAX_HEAD ? parse_fail(rq, 431) : PARSE_INCOMPLETE;
	if (buf[i] != ' ' || i == start)
		return parse_fail(rq, 400);
	if (i - start > MAX_METHOD)
		return parse_fail(rq, 501);
	rq->method = buf + start;
	rq->method_len = i - start;

	start = ++i;
	i = scan_target(buf, i, len, MAX_TARGET);
	if (i - start == MAX_TARGET && i < len && (unsigned char)buf[i] > 0x20 &&
	    (unsigned char)buf[i] < 0x7f)
		return parse_fail(rq, 414);
	if (i == len)
		return len >= MAX_HEAD ? parse_fail(rq, 431) : PARSE_INCOMPLETE;
	if (i == start)
		return parse_fail(rq, 400); /* extra space, or no target */
	rq->target = buf + start;
	rq->target_len = i - start;
	if (buf[i] != ' ')
		return parse_fail(rq, 400); /* HTTP/0.9, CTL, bare CR/LF */
	i++;

	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (2.3) */
	{
		static const char proto[] = "HTTP/x.x\r\n";
		size_t k;

		for (k = 0; k < 10; k++, i++) {
			if (i == len)
				return PARSE_INCOMPLETE;
			if (proto[k] == 'x') {
				if (buf[i] < '0' || buf[i] > '9')
					return parse_fail(rq, 400);
			} else if (buf[i] != proto[k]) {
				return parse_fail(rq, 400);
			}
		}
		/* RFC 9110 section 6.2 / 15.6.6: we speak 1.x; other majors
		 * (the HTTP/2 preface "PRI * HTTP/2.0") get 505. */
		if (buf[i - 5] != '1')
			return parse_fail(rq, 505);
		rq->minor = buf[i - 3] - '0';
	}

	/* field-line = field-name ":" OWS field-value OWS CRLF (5) */
	for (;;) {
		struct header *h;
		size_t vend;

		if (i == len)
			return len >= MAX_HEAD ? parse_fail(rq, 431) :
			    PARSE_INCOMPLETE;
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return PARSE_INCOMPLETE;
			if (buf[i + 1] != '\n')
				return parse_fail(rq, 400);
			return (long)(i + 2);
		}
		/* obs-fold: a server must reject it or unfold it (5.2) */
		if (buf[i] == ' ' || buf[i] == '\t')
			return parse_fail(rq, 400);
		if (rq->nheaders == MAX_HEADERS)
			return parse_fail(rq, 431);
		h = &rq->headers[rq->nheaders];
		start = i;
		while (i < len && is_tchar((unsigned char)buf[i]))
			i++;
		if (i == len)
			return len >= MAX_HEAD ? parse_fail(rq, 431) :
			    PARSE_INCOMPLETE;
		/* no whitespace between name and colon (5.1), no empty name */
		if (buf[i] != ':' || i == start)
			return parse_fail(rq, 400);
		h->name = buf + start;
		h->name_len = i - start;
		i++;
		while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		start = i;
		/* field-vchar / obs-text / SP / HTAB; no CTLs (5.5) */
		i = scan_value(buf, i, len);
		if (i == len || (buf[i] == '\r' && i + 1 == len))
			return len >= MAX_HEAD ? parse_fail(rq, 431) :
			    PARSE_INCOMPLETE;
		if (buf[i] != '\r' || buf[i + 1] != '\n')
			return parse_fail(rq, 400);
		vend = i;
		while (vend > start && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
			vend--;
		h->value = buf + start;
		h->value_len = vend - start;
		rq->nheaders++;
		i += 2;
	}
}

/* ==== Request semantics ====
 *
 * After the syntax, the meaning: which method, whether the connection
 * stays open, how the message is framed, and the fields that choose the
 * representation (Accept, Range, If-None-Match). Framing errors are
 * answered and the connection closed, because once the length of a message
 * is in doubt the next request cannot be found safely (RFC 9112 6.3).
 */

enum { M_READ = 1, M_WRITE = 2 };
static const struct method {
	const char *name;
	size_t len;
	int kind;
} methods[] = {
	{ "GET", 3, M_READ }, { "HEAD", 4, M_READ },
	/* Push, mount and delete: OCI distribution-spec "Pushing", "Content
	 * Management". This registry is read-only by design: 405. */
	{ "POST", 4, M_WRITE }, { "PUT", 3, M_WRITE }, { "PATCH", 5, M_WRITE },
	{ "DELETE", 6, M_WRITE },
};
#define NMETHODS (sizeof methods / sizeof methods[0])

/* The request fields we act on; all others are ignored (RFC 9110 5.1:
 * names are case-insensitive). Looked up by length first: every request
 * carries several fields, and most are none of these. */
enum {
	F_HOST, F_CONTENT_LENGTH, F_TRANSFER_ENCODING, F_CONNECTION, F_ACCEPT,
	F_RANGE, F_IF_NONE_MATCH, F_IF_RANGE, F_OTHER
};
static const struct field {
	const char *name;
	size_t len;
} fields[F_OTHER] = {
	{ "host", 4 }, { "content-length", 14 }, { "transfer-encoding", 17 },
	{ "connection", 10 }, { "accept", 6 }, { "range", 5 },
	{ "if-none-match", 13 }, { "if-range", 8 },
};

static int field_id(const char *name, size_t n)
{
	int i;

	for (i = 0; i < F_OTHER; i++)
		if (n == fields[i].len && ieqn(name, n, fields[i].name, n))
			return i;
	return F_OTHER;
}

/* The next element of a comma-separated field value (RFC 9110 5.6.1):
 * [*s, *e) with the whitespace around it trimmed; 0 at the end. */
static int list_next(const char *v, size_t n, size_t *i, size_t *s,
    size_t *e)
{
	while (*i < n && (v[*i] == ' ' || v[*i] == '\t' || v[*i] == ','))
		(*i)++;
	if (*i >= n)
		return 0;
	*s = *i;
	*i = find_byte(v, *i, n, ',');
	*e = *i;
	while (*e > *s && (v[*e - 1] == ' ' || v[*e - 1] == '\t'))
		(*e)--;
	return 1;
}

/* Does the comma-separated field value contain this token? */
static int has_token(const char *v, size_t n, const char *token)
{
	size_t i = 0, s, e;

	while (list_next(v, n, &i, &s, &e))
		if (ieq(v + s, e - s, token))
			return 1;
	return 0;
}

/* Content negotiation for the manifest by tag (RFC 9110 section 12.5.1):
 * for each of our two manifest types, the most specific media range that
 * matches it decides its q-value; q=0 means "not acceptable". */
struct accept_state {
	int spec[2];    /* specificity of best match so far: -1 none */
	int q[2];       /* its q-value, in thousandths */
};

static const char *const manifest_types[2] = { MT_DOCKER, MT_OCI };
static const size_t manifest_type_len[2] = {
	sizeof MT_DOCKER - 1, sizeof MT_OCI - 1
};

/* The end of a media range in [s, e): the first ';' (its parameters
 * follow) or whitespace. */
static size_t media_range_end(const char *v, size_t s, size_t e)
{
	while (e - s >= 8) {
		uint64_t x = load8(v + s);
		if (has_byte(x, ';') || has_below(x, 0x21))
			break;
		s += 8;
	}
	while (s < e && v[s] != ';' && v[s] != ' ' && v[s] != '\t')
		s++;
	return s;
}

static int parse_qvalue(const char *p, size_t n)
{
	/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
	int q = 0, scale = 100;
	size_t i;

	if (n == 0 || (p[0] != '0' && p[0] != '1'))
		return 1000; /* malformed: treat as the default */
	q = (p[0] - '0') * 1000;
	if (n > 1 && p[1] == '.')
		for (i = 2; i < n && i < 5 && p[i] >= '0' && p[i] <= '9'; i++) {
			q += (p[i] - '0') * scale;
			scale /= 10;
		}
	return q > 1000 ? 1000 : q;
}

static void accept_scan(struct accept_state *st, const char *v, size_t n)
{
	size_t i = 0, s, e;

	while (list_next(v, n, &i, &s, &e)) {
		size_t te, k;
		int q = 1000, wild;

		te = media_range_end(v, s, e);
		/* find a q parameter: ";" OWS "q=" qvalue */
		for (k = te; k < e; k++) {
			if (v[k] != ';')
				continue;
			k++;
			while (k < e && (v[k] == ' ' || v[k] == '\t'))
				k++;
			if (k + 1 < e && lower((unsigned char)v[k]) == 'q' &&
			    v[k + 1] == '=') {
				size_t qs = k + 2, qe = qs;
				while (qe < e && v[qe] != ';' && v[qe] != ' ')
					qe++;
				q = parse_qvalue(v + qs, qe - qs);
			}
		}
		if (te == s)
			continue;
		wild = IEQ_LIT(v + s, te - s, "*/*") ? 0 :
		    IEQ_LIT(v + s, te - s, "application/*") ? 1 : -1;
		for (k = 0; k < 2; k++) {
			int spec = wild >= 0 ? wild :
			    ieqn(v + s, te - s, manifest_types[k],
			    manifest_type_len[k]) ? 2 : -1;

			if (spec > st->spec[k] ||
			    (spec == st->spec[k] && spec >= 0 && q > st->q[k])) {
				st->spec[k] = spec;
				st->q[k] = q;
			}
		}
	}
}

/* Parse a decimal Content-Length: digits only, no sign. A value too big
 * for 64 bits is still a length (RFC 9110 8.6 warns they can be large):
 * it saturates, and is then refused as too large rather than malformed. */
static int parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x > (UINT64_MAX - 9) / 10 ? UINT64_MAX :
		    x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

/* Host = uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): reg-name
 * or IP-literal characters only, that is ALPHA, DIGIT and -._~!$&'()*+,;=
 * :[]% (a bit per ASCII code, like tchar_bits). An empty Host is allowed. */
static const uint32_t host_bits[4] = {
	0x00000000, 0x2fff7ff2, 0xaffffffe, 0x47fffffe
};

static int valid_host(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c >= 128 || !(host_bits[c >> 5] >> (c & 31) & 1))
			return 0;
	}
	return 1;
}

/* Returns 0, or the status with which to refuse the request. */
static int request_info(const struct request *rq, struct reqinfo *ri)
{
	struct accept_state acc = { { -1, -1 }, { 0, 0 } };
	int have_accept = 0, hosts = 0, lengths = 0, te = 0, conn_close = 0, conn_keep = 0;
	uint64_t clen = 0;
	size_t i;

	memset(ri, 0, sizeof *ri);
	ri->method = -1;
	for (i = 0; i < NMETHODS; i++)
		if (rq->method_len == methods[i].len &&
		    memcmp(rq->method, methods[i].name, rq->method_len) == 0)
			ri->method = (int)i;

	for (i = 0; i < rq->nheaders; i++) {
		const struct header *h = &rq->headers[i];
		const char *v = h->value;
		size_t n = h->value_len;
		uint64_t x;

		switch (field_id(h->name, h->name_len)) {
		case F_HOST:
			if (!valid_host(v, n))
				return 400;
			hosts++;
			break;
		case F_CONTENT_LENGTH:
			/* RFC 9112 6.3: several or invalid lengths are an
			 * unrecoverable framing error. */
			if (parse_length(v, n, &x) || lengths++)
				return 400;
			clen = x;
			break;
		case F_TRANSFER_ENCODING:
			te++;
			/* RFC 9112 6.1: chunked must be the final coding,
			 * and we understand no other: 501. */
			if (!IEQ_LIT(v, n, "chunked"))
				return 501;
			break;
		case F_CONNECTION:
			conn_close |= has_token(v, n, "close");
			conn_keep |= has_token(v, n, "keep-alive");
			break;
		case F_ACCEPT:
			have_accept = 1;
			accept_scan(&acc, v, n);
			break;
		case F_RANGE:
			ri->range = v;
			ri->range_len = n;
			break;
		case F_IF_NONE_MATCH:
			ri->if_none_match = v;
			ri->inm_len = n;
			break;
		case F_IF_RANGE:
			ri->if_range = v;
			ri->if_range_len = n;
			break;
		}
	}
	/* RFC 9112 3.2: a 1.1 request without exactly one Host is a 400. */
	if (hosts > 1 || (rq->minor >= 1 && hosts == 0))
		return 400;
	/* RFC 9112 6.1: Transfer-Encoding with Content-Length may be a
	 * smuggling attempt; and chunked does not exist in HTTP/1.0. */
	if (te && (lengths || rq->minor == 0 || te > 1))
		return 400;
	if (clen > MAX_BODY)
		return 413;
	ri->has_body = te || clen > 0;
	/* RFC 9110 9.3.1: content in a GET has no defined meaning; refuse
	 * it rather than guess at its framing. */
	if (ri->has_body && ri->method >= 0 && methods[ri->method].kind == M_READ)
		return 400;
	/* RFC 9112 9.3: 1.1 is persistent unless "close"; 1.0 only with
	 * "keep-alive". A body we will not read ends the connection. */
	ri->keep = !conn_close && (rq->minor >= 1 || conn_keep) && !ri->has_body;
	/* No Accept field at all means any type is acceptable (RFC 9110
	 * 12.5.1); otherwise a type is acceptable if its best-matching
	 * range has q > 0. */
	ri->accept_docker = !have_accept || (acc.spec[0] >= 0 && acc.q[0] > 0);
	ri->accept_oci = !have_accept || (acc.spec[1] >= 0 && acc.q[1] > 0);
	return 0;
}

/* ==== Routes ====
 *
 * The request-target is reduced to a decoded path and a query, then
 * matched against a table. Names, tags and digests are checked against
 * the grammars of the OCI distribution spec ("Pulling manifests",
 * "Pulling blobs") before anything is looked up, so every malformed
 * reference gets its specific error code.
 */

enum {
	E_NAME_UNKNOWN, E_NAME_INVALID, E_MANIFEST_UNKNOWN, E_BLOB_UNKNOWN,
	E_DIGEST_INVALID, E_UNSUPPORTED, E_PAGINATION, E_NOT_FOUND,
	E_BAD_REQUEST, E_TOO_LARGE, E_URI_TOO_LONG, E_HEAD_TOO_LARGE,
	E_RANGE, E_NOT_IMPLEMENTED, E_VERSION, E_TIMEOUT, E_COUNT
};

/* OCI distribution-spec "Error Codes": the JSON error envelope. The
 * bodies are fixed literals: nothing from the request is echoed back. */
#define REG_ERROR(code, msg, detail) \
	"{\"errors\":[{\"code\":\"" code "\",\"message\":\"" msg \
	"\",\"detail\":\"" detail "\"}]}"

struct errdef {
	int status;
	const char *type;
	const char *body;
	int close;      /* a protocol error: close after answering */
};

static const struct errdef errors[E_COUNT] = {
	[E_NAME_UNKNOWN] = { 404, MT_JSON, REG_ERROR("NAME_UNKNOWN",
	    "repository name not known to registry",
	    "this registry serves only the repository quinistry"), 0 },
	[E_NAME_INVALID] = { 400, MT_JSON, REG_ERROR("NAME_INVALID",
	    "invalid repository name",
	    "names are lowercase [a-z0-9] runs joined by . _ __ - or /"), 0 },
	[E_MANIFEST_UNKNOWN] = { 404, MT_JSON, REG_ERROR("MANIFEST_UNKNOWN",
	    "manifest unknown",
	    "known references: the tag latest and the two manifest digests"), 0 },
	[E_BLOB_UNKNOWN] = { 404, MT_JSON, REG_ERROR("BLOB_UNKNOWN",
	    "blob unknown to registry",
	    "known blobs: the config and the layer of quinistry:latest"), 0 },
	[E_DIGEST_INVALID] = { 400, MT_JSON, REG_ERROR("DIGEST_INVALID",
	    "invalid digest",
	    "digests are sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"), 0 },
	[E_UNSUPPORTED] = { 405, MT_JSON, REG_ERROR("UNSUPPORTED",
	    "the operation is unsupported",
	    "this registry is read-only: only GET and HEAD"), 0 },
	[E_PAGINATION] = { 400, MT_JSON, REG_ERROR("PAGINATION_NUMBER_INVALID",
	    "invalid number of results requested",
	    "n must be a non-negative decimal number"), 0 },
	[E_NOT_FOUND] = { 404, "text/plain", "404 not found\n", 0 },
	[E_BAD_REQUEST] = { 400, "text/plain", "400 bad request\n", 1 },
	[E_TOO_LARGE] = { 413, "text/plain", "413 content too large\n", 1 },
	[E_URI_TOO_LONG] = { 414, "text/plain", "414 URI too long\n", 1 },
	[E_HEAD_TOO_LARGE] = { 431, "text/plain",
	    "431 request header fields too large\n", 1 },
	[E_RANGE] = { 416, "text/plain", "416 range not satisfiable\n", 0 },
	[E_NOT_IMPLEMENTED] = { 501, "text/plain", "501 not implemented\n", 1 },
	[E_VERSION] = { 505, "text/plain", "505 HTTP version not supported\n", 1 },
	[E_TIMEOUT] = { 408, "text/plain", "408 request timeout\n", 1 },
};

/* Status lines, RFC 9110 section 15. */
static const struct status {
	int code;
	const char *line;
} statuses[] = {
	{ 200, "HTTP/1.1 200 OK\r\n" },
	{ 206, "HTTP/1.1 206 Partial Content\r\n" },
	{ 304, "HTTP/1.1 304 Not Modified\r\n" },
	{ 400, "HTTP/1.1 400 Bad Request\r\n" },
	{ 404, "HTTP/1.1 404 Not Found\r\n" },
	{ 405, "HTTP/1.1 405 Method Not Allowed\r\n" },
	{ 408, "HTTP/1.1 408 Request Timeout\r\n" },
	{ 413, "HTTP/1.1 413 Content Too Large\r\n" },
	{ 414, "HTTP/1.1 414 URI Too Long\r\n" },
	{ 416, "HTTP/1.1 416 Range Not Satisfiable\r\n" },
	{ 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n" },
	{ 501, "HTTP/1.1 501 Not Implemented\r\n" },
	{ 505, "HTTP/1.1 505 HTTP Version Not Supported\r\n" },
};

/* The protocol-level errors the parser and request_info() can return. */
static int status_error(int status)
{
	switch (status) {
	case 413: return E_TOO_LARGE;
	case 414: return E_URI_TOO_LONG;
	case 431: return E_HEAD_TOO_LARGE;
	case 501: return E_NOT_IMPLEMENTED;
	case 505: return E_VERSION;
	default: return E_BAD_REQUEST;
	}
}

static void reply_error(struct reply *r, int e)
{
	r->status = errors[e].status;
	r->err = &errors[e];
	r->obj = NULL;
	r->what = "error";
}

static void reply_object(struct reply *r, int obj)
{
	r->status = 200;
	r->obj = &objects[obj];
	r->err = NULL;
	r->what = objects[obj].what;
	r->first = 0;
	r->last = objects[obj].len ? objects[obj].len - 1 : 0;
}

/* path-component = [a-z0-9]+ (separator [a-z0-9]+)*, separator
 * = [_.] | "__" | -+ ; name = component ("/" component)*. */
static int valid_name(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > MAX_NAME)
		return 0;
	for (;;) {
		size_t run = 0;
		while (i < n && ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9')))
			i++, run++;
		if (run == 0)
			return 0;
		if (i == n)
			return 1;
		if (s[i] == '/') {
			i++;
		} else if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return 0;
		}
	}
}

/* digest = algorithm ":" encoded (OCI image-spec descriptor.md,
 * "Digests"). Registered algorithms must use their exact encoding.
 * Returns 1 for a well-formed sha256 digest, 2 for another well-formed
 * registered algorithm (sha512) we hold nothing under, 0 if invalid. */
static int digest_kind(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t alen, elen, i;

	if (!colon)
		return 0;
	alen = (size_t)(colon - s);
	elen = n - alen - 1;
	for (i = 0; i < elen; i++) {
		char c = colon[1 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	if (alen == 6 && memcmp(s, "sha256", 6) == 0 && elen == 64)
		return 1;
	if (alen == 6 && memcmp(s, "sha512", 6) == 0 && elen == 128)
		return 2;
	return 0;
}

/* tag = [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */
static int valid_tag(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

static int find_digest(const char *s, size_t n, const int *objs, int count)
{
	int i;

	for (i = 0; i < count; i++)
		if (n == strlen(objects[objs[i]].digest) &&
		    memcmp(s, objects[objs[i]].digest, n) == 0)
			return objs[i];
	return -1;
}

/* Single byte range (RFC 9110 section 14.1.1, 14.2): "bytes=a-b", "a-" or
 * "-n". Several ranges or anything unparsable is ignored, which the RFC
 * allows: the whole blob is sent with 200. Returns 1 if a range applies,
 * 0 to ignore, -1 if unsatisfiable (416). */
static int parse_range(const char *v, size_t n, uint64_t size,
    uint64_t *first, uint64_t *last)
{
	uint64_t a = 0, b = 0;
	int has_a = 0, has_b = 0;
	size_t i;

	if (n < 6 || !IEQ_LIT(v, 6, "bytes=") || memchr(v, ',', n))
		return 0;
	for (i = 6; i < n && v[i] >= '0' && v[i] <= '9'; i++, has_a = 1) {
		if (a > (UINT64_MAX - 9) / 10)
			return 0;
		a = a * 10 + (uint64_t)(v[i] - '0');
	}
	if (i == n || v[i++] != '-')
		return 0;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, has_b = 1) {
		if (b > (UINT64_MAX - 9) / 10)
			return 0;
		b = b * 10 + (uint64_t)(v[i] - '0');
	}
	if (i != n || (!has_a && !has_b))
		return 0;
	if (!has_a) {                   /* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return -1;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (has_b && b < a)
		return 0;               /* invalid: ignore */
	if (a >= size)
		return -1;
	*first = a;
	*last = has_b && b < size ? b : size - 1;
	return 1;
}

/* If-None-Match (RFC 9110 section 13.1.2): "*" or a list of entity tags,
 * compared weakly. */
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

/* Conditional and range handling for a found object. */
static void reply_content(struct reply *r, const struct reqinfo *ri, int obj)
{
	const struct object *o = &objects[obj];
	uint64_t first, last;
	int rc;

	reply_object(r, obj);
	/* If-None-Match is evaluated before Range (RFC 9110 13.2.2). */
	if (ri->if_none_match &&
	    etag_matches(ri->if_none_match, ri->inm_len, o->digest)) {
		r->status = 304;
		return;
	}
	if (!o->ranges || !ri->range)
		return;
	/* If-Range: apply the Range only if the entity tag still matches
	 * (RFC 9110 13.1.5); a date never matches, ours are tags. */
	if (ri->if_range && !etag_matches(ri->if_range, ri->if_range_len,
	    o->digest))
		return;
	rc = parse_range(ri->range, ri->range_len, o->len, &first, &last);
	if (rc < 0) {
		reply_error(r, E_RANGE);
		r->obj = o; /* Content-Range: bytes * / size needs it */
	} else if (rc > 0) {
		r->status = 206;
		r->first = first;
		r->last = last;
	}
}

/* One decoded query parameter value, or NULL. '+' is kept as is: it only
 * means a space in HTML forms, not in URIs (RFC 3986). */
static const char *query_param(const char *q, size_t qn, const char *key,
    char *out, size_t cap, int *bad)
{
	size_t i = 0, kl = strlen(key);

	while (i < qn) {
		size_t s = i, e, o = 0;

		while (i < qn && q[i] != '&')
			i++;
		e = i++;
		if (e - s <= kl || memcmp(q + s, key, kl) || q[s + kl] != '=')
			continue;
		for (s += kl + 1; s < e; s++) {
			int c = (unsigned char)q[s];
			if (c == '%') {
				int h1 = s + 2 < e ? hexval(q[s + 1]) : -1;
				int h2 = s + 2 < e ? hexval(q[s + 2]) : -1;
				if (h1 < 0 || h2 < 0 || (h1 | h2) == 0) {
					*bad = 1;
					return NULL;
				}
				c = h1 * 16 + h2;
				s += 2;
			}
			if (o + 1 >= cap) {
				*bad = 1;
				return NULL;
			}
			out[o++] = (char)c;
		}
		out[o] = '\0';
		return out;
	}
	return NULL;
}

/* tags/list and _catalog pagination (distribution-spec "Listing Tags"):
 * n limits the count, last returns entries lexically after it. We hold
 * one entry, so the answer is either the full list or the empty one. */
static void reply_list(struct reply *r, const struct reqinfo *ri,
    const char *q, size_t qn, const char *entry, int full, int empty)
{
	char nbuf[32], last[MAX_TARGET];
	const char *nv, *lv;
	int bad = 0;
	size_t i;

	nv = query_param(q, qn, "n", nbuf, sizeof nbuf, &bad);
	lv = query_param(q, qn, "last", last, sizeof last, &bad);
	if (bad) {
		reply_error(r, E_BAD_REQUEST);
		return;
	}
	if (nv) {
		for (i = 0; nv[i]; i++)
			if (nv[i] < '0' || nv[i] > '9' || i > 9)
				break;
		if (i == 0 || nv[i]) {
			reply_error(r, E_PAGINATION);
			return;
		}
	}
	reply_content(r, ri, (nv && atol(nv) == 0) ||
	    (lv && strcmp(lv, entry) >= 0) ? empty : full);
}

struct target {
	const char *ref;        /* the part after the route's marker */
	size_t ref_len;
	const char *query;
	size_t query_len;
};

static void route_manifest(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	static const int manifests[2] = { OBJ_DOCKER, OBJ_OCI };
	int kind, obj;

	if (memchr(t->ref, ':', t->ref_len)) {
		kind = digest_kind(t->ref, t->ref_len);
		if (kind == 0) {
			reply_error(r, E_DIGEST_INVALID);
			return;
		}
		obj = find_digest(t->ref, t->ref_len, manifests, 2);
		if (obj < 0)
			reply_error(r, E_MANIFEST_UNKNOWN);
		else
			reply_content(r, ri, obj);
		return;
	}
	if (!valid_tag(t->ref, t->ref_len) || t->ref_len != 6 ||
	    memcmp(t->ref, "latest", 6) != 0) {
		reply_error(r, E_MANIFEST_UNKNOWN);
		return;
	}
	reply_content(r, ri, ri->accept_oci && !ri->accept_docker ?
	    OBJ_OCI : OBJ_DOCKER);
	r->by_tag = 1;
}

static void route_blob(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	static const int blobs[2] = { OBJ_CONFIG, OBJ_LAYER };
	int kind = digest_kind(t->ref, t->ref_len);
	int obj;

	if (kind == 0) {
		reply_error(r, E_DIGEST_INVALID);
		return;
	}
	obj = find_digest(t->ref, t->ref_len, blobs, 2);
	if (obj < 0)
		reply_error(r, E_BLOB_UNKNOWN);
	else
		reply_content(r, ri, obj);
}

/* distribution-spec v1.1 "Listing Referrers": an image index, empty here
 * since nothing refers to our image, even for unknown subjects. */
static void route_referrers(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	int bad = 0;
	char tmp[256];

	if (digest_kind(t->ref, t->ref_len) == 0) {
		reply_error(r, E_DIGEST_INVALID);
		return;
	}
	reply_content(r, ri, OBJ_REFERRERS);
	/* The filter applies trivially to an empty list; saying so tells
	 * the client it need not filter again. */
	if (query_param(t->query, t->query_len, "artifactType", tmp,
	    sizeof tmp, &bad))
		r->filters = 1;
}

static void route_tags(struct reply *r, const struct reqinfo *ri,
    const struct target *t)
{
	reply_list(r, ri, t->query, t->query_len, "latest", OBJ_TAGS,
	    OBJ_TAGS_EMPTY);
}

/* /v2/<name>/<kind>/<ref>: the last two path segments choose the route,
 * and everything before them is the name, which may itself contain
 * slashes (and even "manifests"). A route with a fixed ref ("tags/list")
 * matches only that. */
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
#define NROUTES (sizeof routes / sizeof routes[0])

/* Decode the path's percent-escapes (RFC 3986 section 2.1) into out.
 * Refused (400), so that no two spellings of a path can route apart:
 * bad escapes, %00, an escaped '/', control bytes, and "." or ".."
 * segments (section 3.3), which a registry never needs. */
static int decode_path(const char *p, size_t n, char *out, size_t *outn)
{
	size_t i, o = 0, seg = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)p[i];

		if (c == '%') {
			int h1 = i + 2 < n ? hexval(p[i + 1]) : -1;
			int h2 = i + 2 < n ? hexval(p[i + 2]) : -1;
			if (h1 < 0 || h2 < 0)
				return -1;
			c = h1 * 16 + h2;
			if (c == 0 || c == '/')
				return -1;
			i += 2;
		} else if (c == '/') {
			if ((o - seg == 1 && out[seg] == '.') ||
			    (o - seg == 2 && out[seg] == '.' && out[seg + 1] == '.'))
				return -1;
			seg = o + 1;
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		out[o++] = (char)c;
	}
	if ((o - seg == 1 && out[seg] == '.') ||
	    (o - seg == 2 && out[seg] == '.' && out[seg + 1] == '.'))
		return -1;
	*outn = o;
	return 0;
}

static void route(struct reply *r, const struct request *rq,
    const struct reqinfo *ri)
{
	const char *tg = rq->target, *q;
	size_t tn = rq->target_len, pn, i, ref_at, kind_at;
	char path[MAX_TARGET + 1];
	struct target t;
	const struct route *best = NULL;
	int under_v2;

	memset(r, 0, sizeof *r);
	/* Unknown methods first: CONNECT's authority-form and OPTIONS's
	 * asterisk-form are valid targets for them (RFC 9112 3.2.3-3.2.4),
	 * and the answer is 501 (RFC 9110 15.6.2) whatever the target. */
	if (ri->method < 0) {
		reply_error(r, E_NOT_IMPLEMENTED);
		return;
	}
	/* absolute-form (RFC 9112 3.2.2): drop scheme and authority */
	if (tn > 7 && tg[0] != '/' && (IEQ_LIT(tg, 7, "http://") ||
	    (tn > 8 && IEQ_LIT(tg, 8, "https://")))) {
		const char *p = memchr(tg + 8, '/', tn - 8);
		size_t skip = p ? (size_t)(p - tg) : tn;
		tg += skip;
		tn -= skip;
		if (tn == 0)
			tg = "/", tn = 1;
	}
	if (tn == 0 || tg[0] != '/' || find_byte(tg, 0, tn, '#') < tn) {
		reply_error(r, E_BAD_REQUEST);
		return;
	}
	pn = find_byte(tg, 0, tn, '?');
	q = pn < tn ? tg + pn : NULL;
	if (decode_path(tg, pn, path, &pn)) {
		reply_error(r, E_BAD_REQUEST);
		return;
	}
	path[pn] = '\0';
	t.query = q ? q + 1 : "";
	t.query_len = q ? (size_t)(tg + tn - (q + 1)) : 0;

	under_v2 = strcmp(path, "/v2") == 0 || strncmp(path, "/v2/", 4) == 0;
	if (methods[ri->method].kind == M_WRITE) {
		reply_error(r, under_v2 ? E_UNSUPPORTED : E_NOT_FOUND);
		r->allow = under_v2;
		return;
	}
	if (!under_v2) {
		reply_error(r, E_NOT_FOUND);
		return;
	}
	/* distribution-spec "Determining support": GET /v2/ answers 200. */
	if (pn <= 4) {
		reply_content(r, ri, OBJ_BASE);
		return;
	}
	if (strcmp(path, "/v2/_catalog") == 0) {
		reply_list(r, ri, t.query, t.query_len, "quinistry",
		    OBJ_CATALOG, OBJ_CATALOG_EMPTY);
		return;
	}
	/* split off the last two segments: path = /v2/<name>/<kind>/<ref> */
	for (ref_at = pn; ref_at > 4 && path[ref_at - 1] != '/'; ref_at--)
		;
	for (kind_at = ref_at - 1; kind_at > 4 && path[kind_at - 1] != '/';
	    kind_at--)
		;
	for (i = 0; ref_at > 4 && kind_at >= 5 && i < NROUTES; i++) {
		size_t kl = ref_at - 1 - kind_at, rl = pn - ref_at;
		const char *fr = routes[i].fixed_ref;

		if (kl == strlen(routes[i].kind) &&
		    memcmp(path + kind_at, routes[i].kind, kl) == 0 && rl > 0 &&
		    (!fr || (rl == strlen(fr) && memcmp(path + ref_at, fr, rl) == 0))) {
			best = &routes[i];
			break;
		}
	}
	if (!best) {
		reply_error(r, E_NOT_FOUND);
		return;
	}
	if (!valid_name(path + 4, kind_at - 5)) {
		reply_error(r, E_NAME_INVALID);
		return;
	}
	if (kind_at - 5 != 9 || memcmp(path + 4, "quinistry", 9) != 0) {
		reply_error(r, E_NAME_UNKNOWN);
		return;
	}
	t.ref = path + ref_at;
	t.ref_len = pn - ref_at;
	best->fn(r, ri, &t);
}

/* Render the response head into out; returns its length (0 if too big,
 * which the fixed sizes of everything we send rule out). */
static size_t render_head(char *out, size_t cap, const struct reply *r,
    int keep, uint64_t *body_len)
{
	struct sb b = { out, 0, cap, 0 };
	const struct object *o = r->obj;
	uint64_t len;
	size_t i;

	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		if (statuses[i].code == r->status) {
			sb_str(&b, statuses[i].line);
			break;
		}
	sb_put(&b, date_field, date_len);
	/* Docker clients check this header to recognise a V2 registry
	 * (Docker Registry HTTP API V2, "API Version Check"). */
	SB_LIT(&b, "Docker-Distribution-API-Version: registry/2.0\r\n");
	if (r->err) {
		SB_LIT(&b, "Content-Type: ");
		sb_str(&b, r->err->type);
		SB_LIT(&b, "\r\n");
		len = strlen(r->err->body);
		if (r->status == 416) {
			/* RFC 9110 14.4: the current length of the blob */
			SB_LIT(&b, "Content-Range: bytes */");
			sb_num(&b, o->len);
			SB_LIT(&b, "\r\n");
		}
	} else {
		sb_put(&b, o->fields, o->fields_len);
		len = r->status == 206 ? r->last - r->first + 1 : o->len;
		if (r->status == 206) {
			SB_LIT(&b, "Content-Range: bytes ");
			sb_num(&b, r->first);
			SB_LIT(&b, "-");
			sb_num(&b, r->last);
			SB_LIT(&b, "/");
			sb_num(&b, o->len);
			SB_LIT(&b, "\r\n");
		}
	}
	/* The same tag yields different bytes depending on Accept
	 * (RFC 9110 12.5.5): caches must key on it. */
	if (r->by_tag)
		SB_LIT(&b, "Vary: Accept\r\n");
	if (r->allow)
		SB_LIT(&b, "Allow: GET, HEAD\r\n");
	if (r->filters)
		SB_LIT(&b, "OCI-Filters-Applied: artifactType\r\n");
	/* For HEAD and 304 too: the length the GET/200 would carry
	 * (RFC 9110 8.6), which is what HEAD-first clients read. */
	SB_LIT(&b, "Content-Length: ");
	sb_num(&b, len);
	if (keep)
		SB_LIT(&b, "\r\nConnection: keep-alive\r\n\r\n");
	else
		SB_LIT(&b, "\r\nConnection: close\r\n\r\n");
	*body_len = r->status == 304 ? 0 : len;
	return b.overflow ? 0 : b.len;
}

/* ==== Connection state machine ====
 *
 * A connection is IDLE (keep-alive, nothing buffered), READ (part of a
 * request head buffered), WRITE (a response under way) or LINGER (our side
 * shut down, draining until the client closes). conn_run() advances it as
 * far as it can and returns as soon as a socket call would block; the loop
 * calls it again when poll() says the socket is ready. POLLOUT is watched
 * only in WRITE, so idle connections never wake the loop.
 */

/* pfds[] is dense and split in two: [0, nhot) the listener, the signal
 * pipe and the hot connections; [nhot, nslots) the cold ones. Moving a
 * connection across the split is one swap. */
static void slot_swap(int i, int j)
{
	struct pollfd p = pfds[i];
	struct conn *c = slot_conn[i];

	if (i == j)
		return;
	pfds[i] = pfds[j];
	pfds[j] = p;
	slot_conn[i] = slot_conn[j];
	slot_conn[j] = c;
	slot_conn[i]->slot = i;
	slot_conn[j]->slot = j;
	/* a moved entry's events are seen again at the next poll() */
	pfds[i].revents = pfds[j].revents = 0;
}

static void set_hot(struct conn *c, int hot)
{
	if (hot && c->slot >= nhot)
		slot_swap(c->slot, nhot++);
	else if (!hot && c->slot < nhot)
		slot_swap(c->slot, --nhot);
}

static void list_unlink(struct conn *c)
{
	if (c->list == T_NONE)
		return;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->list = T_NONE;
}

/* Put c at the tail of a timeout list, its timeout counted from "since".
 * Each list stays sorted by deadline because entries only ever join at
 * the tail with a "since" no earlier than those before them: now, or (for
 * an idle connection turning cold, oldest first) the "since" it had. */
static void list_enter_since(struct conn *c, int which, int64_t since)
{
	struct conn *h = &list_head[which];

	list_unlink(c);
	c->list = (unsigned char)which;
	c->since = since;
	c->prev = h->prev;
	c->next = h;
	h->prev->next = c;
	h->prev = c;
	set_hot(c, which != T_COLD);
}

/* (Re)start c's timeout of the given kind, from now. */
static void list_enter(struct conn *c, int which)
{
	list_enter_since(c, which, now_ms);
}

static struct iobuf *buf_get(size_t cap)
{
	int k = cap == MAX_HEAD;
	struct iobuf *b = free_bufs[k];

	if (b) {
		free_bufs[k] = b->next;
		nfree_bufs[k]--;
	} else {
		b = malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		b->cap = cap;
	}
	b->len = 0;
	return b;
}

static void buf_put(struct iobuf *b)
{
	int k;

	if (!b)
		return;
	k = b->cap == MAX_HEAD;
	if (nfree_bufs[k] >= POOL_KEEP) {
		free(b);
		return;
	}
	b->next = free_bufs[k];
	free_bufs[k] = b;
	nfree_bufs[k]++;
}

/* A head outgrew the small buffer: move it to a full-size one. */
static int buf_grow(struct conn *c)
{
	struct iobuf *nb = buf_get(MAX_HEAD);

	if (!nb)
		return -1;
	memcpy(nb->in, c->buf->in, c->buf->len);
	nb->len = c->buf->len;
	buf_put(c->buf);
	c->buf = nb;
	return 0;
}

static void conn_close(struct conn *c)
{
	list_unlink(c);
	close(c->fd);
	buf_put(c->buf);
	c->buf = NULL;
	/* keep pfds[] dense: to the cold end, then off it */
	set_hot(c, 0);
	slot_swap(c->slot, nslots - 1);
	nslots--;
	c->fd = -1;
	c->next = free_conns;
	free_conns = c;
	nconns--;
}

static void set_events(struct conn *c, short ev)
{
	pfds[c->slot].events = ev;
}

/* Turn a parsed request (or a parse failure) into the response head and
 * body of c. The request's bytes are consumed from the buffer. */
static void conn_respond(struct conn *c, long used, const struct request *rq)
{
	struct iobuf *b = c->buf;
	struct reqinfo ri;
	struct reply r;
	uint64_t blen;
	int st = 0, head = used > 0 && rq->method_len == 4 &&
	    memcmp(rq->method, "HEAD", 4) == 0;

	memset(&ri, 0, sizeof ri);

	if (used == PARSE_ERROR) {
		memset(&r, 0, sizeof r);
		reply_error(&r, status_error(rq->status));
		c->keep = 0;
		log_copy(b->log_method, sizeof b->log_method, "-", 1);
		log_copy(b->log_target, sizeof b->log_target, "-", 1);
	} else {
		if (!opt_quiet) {
			log_copy(b->log_method, sizeof b->log_method,
			    rq->method, rq->method_len);
			log_copy(b->log_target, sizeof b->log_target,
			    rq->target, rq->target_len);
		}
		st = request_info(rq, &ri);
		if (st) {
			memset(&r, 0, sizeof r);
			reply_error(&r, status_error(st));
			c->keep = 0;
		} else {
			route(&r, rq, &ri);
			c->keep = (unsigned char)(ri.keep && !stop_requested &&
			    !(r.err && r.err->close));
		}
	}
	c->out_len = render_head(b->out, sizeof b->out, &r, c->keep, &blen);
	if (c->out_len == 0) { /* cannot happen with our fixed fields */
		c->keep = 0;
		blen = 0;
	}
	c->out_off = 0;
	c->body_off = 0;
	if (r.err) {
		c->body = (const unsigned char *)r.err->body;
	} else {
		c->body = r.obj->data + r.first;
	}
	/* HEAD: exactly the GET head, no body (RFC 9110 9.3.2) */
	c->body_len = head ? 0 : (size_t)blen;
	c->zero_copy = layer_fd >= 0 && c->body_len >= SENDFILE_MIN &&
	    c->body >= layer && c->body < layer + layer_len;
	b->log_status = r.status;
	b->log_what = r.what;
	/* consume the request head from the buffer */
	if (used > 0) {
		b->len -= (size_t)used;
		memmove(b->in, b->in + used, b->len);
	} else {
		b->len = 0;
	}
	/* Closing with unread input makes the kernel send a reset, which can
	 * destroy the response before the client reads it; so after an
	 * error, a body or pipelined bytes we drain first (conn_linger). */
	c->linger = (unsigned char)(used == PARSE_ERROR || st || b->len > 0 ||
	    ri.has_body);
	c->state = C_WRITE;
}

/* Shut our side, then read until the client closes (RFC 9112 9.6). */
static void conn_linger(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	buf_put(c->buf);
	c->buf = NULL;
	c->state = C_LINGER;
	set_events(c, POLLIN);
	list_enter(c, T_LINGER);
}

/* The layer's way out: the head with MSG_MORE, so that it leaves in the
 * same segment as the start of the body, then the body straight from the
 * memfd. Same contract as conn_write(). */
static int conn_write_sendfile(struct conn *c)
{
	for (;;) {
		ssize_t w;

		if (c->out_off < c->out_len) {
			w = send(c->fd, c->buf->out + c->out_off,
			    c->out_len - c->out_off, MSG_MORE);
		} else if (c->body_off < c->body_len) {
			off_t at = (off_t)(c->body - layer) + (off_t)c->body_off;
			w = sendfile(c->fd, layer_fd, &at, c->body_len - c->body_off);
		} else {
			return 1;
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		if (w == 0)
			return -1;
		if (c->out_off < c->out_len)
			c->out_off += (size_t)w;
		else
			c->body_off += (size_t)w;
		list_enter(c, T_WRITE); /* progress restarts the clock */
	}
}

/* Returns 1 when the response is fully written, 0 if the socket is full,
 * -1 on error. */
static int conn_write_sendfile(struct conn *c);

static int conn_write(struct conn *c)
{
	/* The last response of a connection we are about to close goes with
	 * MSG_MORE: the kernel holds its final segment until close() (or the
	 * lingering shutdown()) adds the FIN to it, so the client gets data
	 * and FIN in one segment instead of two (RFC 9293 section 3.6 lets a
	 * FIN ride on data). */
	int flags = c->keep ? 0 : MSG_MORE;

	if (c->zero_copy)
		return conn_write_sendfile(c);
	for (;;) {
		struct iovec iov[2];
		struct msghdr mh;
		int n = 0;
		ssize_t w;

		if (c->out_off < c->out_len) {
			iov[n].iov_base = c->buf->out + c->out_off;
			iov[n++].iov_len = c->out_len - c->out_off;
		}
		if (c->body_off < c->body_len) {
			iov[n].iov_base = (void *)(c->body + c->body_off);
			iov[n++].iov_len = c->body_len - c->body_off;
		}
		if (n == 0)
			return 1;
		/* send()/sendmsg() go straight to the socket layer; read() and
		 * writev() first pass through the file layer. */
		if (n == 1) {
			w = send(c->fd, iov[0].iov_base, iov[0].iov_len, flags);
		} else {
			memset(&mh, 0, sizeof mh);
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)n;
			w = sendmsg(c->fd, &mh, flags);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		if (c->out_off < c->out_len) {
			size_t k = c->out_len - c->out_off;
			if ((size_t)w < k) {
				c->out_off += (size_t)w;
				continue;
			}
			c->out_off = c->out_len;
			w -= (ssize_t)k;
		}
		c->body_off += (size_t)w;
		if (c->list != T_WRITE || w > 0)
			list_enter(c, T_WRITE); /* progress restarts the clock */
	}
}

static void conn_run(struct conn *c)
{
	static char drain[4096];
	struct request rq;

	for (;;) {
		switch (c->state) {
		case C_IDLE:
		case C_READ: {
			long used;
			ssize_t n;

			if (!c->buf && !(c->buf = buf_get(SMALL_HEAD))) {
				conn_close(c); /* out of memory: shed this one */
				return;
			}
			if (c->buf->len) {
				used = parse_request(c->buf->in, c->buf->len, &rq);
				if (used != PARSE_INCOMPLETE) {
					conn_respond(c, used, &rq);
					continue;
				}
			}
			if (c->buf->len == c->buf->cap && buf_grow(c)) {
				conn_close(c);
				return;
			}
			n = recv(c->fd, c->buf->in + c->buf->len,
			    c->buf->cap - c->buf->len, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (c->buf->len == 0) {
					buf_put(c->buf);
					c->buf = NULL;
				}
				return;
			}
			if (n <= 0) {
				conn_close(c);
				return;
			}
			if (c->state == C_IDLE) {
				c->state = C_READ;
				list_enter(c, T_HEAD); /* the head's clock starts */
			}
			c->buf->len += (size_t)n;
			used = parse_request(c->buf->in, c->buf->len, &rq);
			if (used == PARSE_INCOMPLETE)
				return; /* wait for more */
			conn_respond(c, used, &rq);
			break;
		}
		case C_WRITE: {
			int rc = conn_write(c);

			if (rc < 0) {
				log_request(c, c->body_off);
				conn_close(c);
				return;
			}
			if (rc == 0) {
				set_events(c, POLLOUT);
				return;
			}
			log_request(c, c->body_len);
			if (!c->keep && !c->linger) {
				conn_close(c);
				return;
			}
			if (!c->keep) {
				conn_linger(c);
				break;
			}
			set_events(c, POLLIN);
			if (c->buf->len) {
				c->state = C_READ;
				list_enter(c, T_HEAD);
				break; /* a pipelined request may be complete */
			}
			c->state = C_IDLE;
			list_enter(c, T_IDLE);
			buf_put(c->buf);
			c->buf = NULL;
			return;
		}
		case C_LINGER:
			for (;;) {
				ssize_t n = read(c->fd, drain, sizeof drain);
				if (n > 0)
					continue;
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					return;
				conn_close(c);
				return;
			}
		}
	}
}

/* A deadline passed: a quiet keep-alive connection turns cold, unless its
 * whole idle timeout is over; idle and lingering ones close; a head that
 * never completed gets a best-effort 408 (RFC 9110 15.5.9). */
static void conn_expire(struct conn *c)
{
	if (c->list == T_IDLE &&
	    c->since + list_timeout[T_COLD] > now_ms) {
		list_enter_since(c, T_COLD, c->since);
		return;
	}
	if (c->list == T_HEAD) {
		static const char msg[] = "HTTP/1.1 408 Request Timeout\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n";
		ssize_t w = write(c->fd, msg, sizeof msg - 1);
		(void)w;
	}
	conn_close(c);
}

/* ==== Event loop ====
 *
 * One poll() over the listener, the signal pipe and the connections: the
 * hot ones every pass and, while those keep the server busy, the cold ones
 * only in spaced scans (see HOT_IDLE_MS). Each pass caches the clock, runs
 * the ready connections, accepts a bounded burst, expires timeouts from
 * the heads of the timeout lists and flushes the log. poll()'s timeout is
 * the nearest deadline, so an idle server sleeps. Signals only write a
 * byte to a pipe; the loop notices it like any other event.
 */

static void on_signal(int sig)
{
	int saved = errno;
	char ch = (char)sig;
	ssize_t w;

	stop_requested = 1;
	w = write(sig_pipe[1], &ch, 1);
	(void)w;
	errno = saved;
}

static int add_slot(int fd, short events)
{
	pfds[nslots].fd = fd;
	pfds[nslots].events = events;
	pfds[nslots].revents = 0;
	return nslots++;
}

static void accept_burst(void)
{
	int k;

	for (k = 0; k < ACCEPT_BURST; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		struct conn *c;
		int fd;

		fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: pending clients wait in
				 * the backlog; look again shortly instead of
				 * spinning on a listener that stays readable. */
				accept_resume = now_ms + ACCEPT_PAUSE_MS;
				pfds[0].fd = -1;
			}
			if (errno == ECONNABORTED || errno == EINTR ||
			    errno == EPROTO)
				continue; /* that one died waiting; try the next */
			return; /* EAGAIN: none left */
		}
		if (nconns >= opt_max_conns) {
			/* Full: make room by dropping the connection idle the
			 * longest; if none is idle, refuse this one. */
			struct conn *old = list_head[T_COLD].next;
			if (old == &list_head[T_COLD])
				old = list_head[T_IDLE].next;
			if (old == &list_head[T_IDLE]) {
				close(fd);
				continue;
			}
			conn_close(old);
		}
		if (free_conns) {
			c = free_conns;
			free_conns = c->next;
		} else {
			c = &conns[conns_used++]; /* first use of this entry */
		}
		nconns++;
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->list = T_NONE;
		c->state = C_IDLE;
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			memcpy(c->addr, &a->sin6_addr, 16);
			c->port = ntohs(a->sin6_port);
			c->family = AF_INET6;
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			memcpy(c->addr, &a->sin_addr, 4);
			c->port = ntohs(a->sin_port);
			c->family = AF_INET;
		}
		c->slot = add_slot(fd, POLLIN);
		slot_conn[c->slot] = c;
		/* A new connection waits for its first byte under the idle
		 * timeout, like a keep-alive one; but it has usually sent its
		 * request already (DEFER_ACCEPT_S), so serve it now. */
		list_enter(c, T_IDLE);
		conn_run(c);
	}
}

static int poll_timeout(void)
{
	int64_t next = -1;
	int i;

	for (i = 0; i < T_NONE; i++) {
		struct conn *h = list_head[i].next;
		if (h != &list_head[i]) {
			int64_t d = h->since + list_timeout[i];
			if (next < 0 || d < next)
				next = d;
		}
	}
	if (accept_resume && (next < 0 || accept_resume < next))
		next = accept_resume;
	if (next < 0)
		return -1;
	return next <= now_ms ? 0 : (int)(next - now_ms);
}

static void expire_timeouts(void)
{
	int i;

	for (i = 0; i < T_NONE; i++) {
		struct conn *h;
		while ((h = list_head[i].next) != &list_head[i] &&
		    h->since + list_timeout[i] <= now_ms)
			conn_expire(h);
	}
}

/* SIGTERM/SIGINT: stop accepting; idle connections close now, responses
 * under way get SHUTDOWN_GRACE_MS to finish. As PID 1 in a container
 * the kernel delivers SIGTERM only because we handle it. */
static void begin_shutdown(void)
{
	int i;

	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
		pfds[0].fd = -1;
	}
	for (i = nslots - 1; i >= 2; i--) {
		struct conn *c = slot_conn[i];
		if (c->state == C_WRITE)
			c->keep = 0;
		else
			conn_close(c);
	}
}

/* Past HOT_MAX hot connections, the idle ones quiet for HOT_MIN_MS turn
 * cold now instead of after HOT_IDLE_MS (see the Limits). */
static void trim_hot(void)
{
	struct conn *h;

	while (nhot - 2 > HOT_MAX &&
	    (h = list_head[T_IDLE].next) != &list_head[T_IDLE] &&
	    h->since + HOT_MIN_MS <= now_ms)
		list_enter_since(h, T_COLD, h->since);
}

static void serve(void)
{
	int64_t deadline = 0, next_full = 0;
	int i, hot_quiet = 0;

	for (i = 0; i < T_NONE; i++) {
		list_head[i].next = list_head[i].prev = &list_head[i];
		list_head[i].list = T_NONE;
	}
	update_clock();
	for (;;) {
		int n, nfds, timeout, full, scan;
		int64_t t0;

		if (stop_requested) {
			if (!deadline) {
				begin_shutdown();
				deadline = now_ms + SHUTDOWN_GRACE_MS;
			}
			if (nconns == 0 || now_ms >= deadline)
				break;
		}
		/* Everything when there is nothing cold or the hot set has
		 * gone quiet: the loop then sleeps in the kernel. Everything
		 * too when a scan of the cold set is due, but without waiting,
		 * timed to space the next scan (see HOT_IDLE_MS). Else only
		 * the hot set, waking in time for the next scan. */
		scan = nhot < nslots && !hot_quiet && now_ms >= next_full;
		full = scan || nhot == nslots || hot_quiet;
		nfds = full ? nslots : nhot;
		timeout = deadline ? (int)(deadline - now_ms) : poll_timeout();
		if (scan)
			timeout = 0;
		else if (!full && (timeout < 0 || timeout > next_full - now_ms))
			timeout = (int)(next_full - now_ms);
		t0 = scan ? clock_us() : 0;
		n = poll(pfds, (nfds_t)nfds, timeout);
		update_clock();
		if (full) {
			int64_t gap = scan ?
			    (clock_us() - t0) * COLD_SCAN_SHARE / 1000 : 0;
			gap = gap < COLD_POLL_MS ? COLD_POLL_MS :
			    gap > COLD_POLL_MAX_MS ? COLD_POLL_MAX_MS : gap;
			next_full = now_ms + gap;
		}
		/* nothing was ready: next pass polls everything, asleep */
		hot_quiet = n == 0 && (scan || !full);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("quinistry: poll");
			break;
		}
		if (pfds[1].revents & POLLIN) {
			char tmp[16];
			ssize_t r = read(sig_pipe[0], tmp, sizeof tmp);
			(void)r;
			continue;
		}
		if (accept_resume && now_ms >= accept_resume && listen_fd >= 0) {
			accept_resume = 0;
			pfds[0].fd = listen_fd;
		}
		/* Connections first, top down, so that a close that moves the
		 * last slot into the current one never skips a ready slot. */
		for (i = nfds - 1; i >= 2 && n > 0; i--) {
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
		if (pfds[0].fd >= 0 && (pfds[0].revents & POLLIN))
			accept_burst();
		pfds[0].revents = 0;
		expire_timeouts();
		trim_hot();
		log_flush();
	}
	for (i = nslots - 1; i >= 2; i--)
		conn_close(slot_conn[i]);
	log_flush();
}

/* ==== main ====
 *
 * Start-up is the only place allowed to die: options, reading our own
 * executable, building the image, binding the socket. Then serve() runs
 * until SIGTERM or SIGINT, and we exit 0.
 */

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: quinistry [-l ADDR:PORT] [-c MAXCONN] [-t SECONDS] [-q]\n"
	    "       quinistry export [-o FILE]\n"
	    "\n"
	    "A Docker registry quine: serves its own executable as the image\n"
	    "quinistry:latest over the registry pull protocol (OCI distribution\n"
	    "spec v1.1, Docker Registry HTTP API V2).\n"
	    "\n"
	    "  -l, --listen ADDR:PORT  address to listen on (default 0.0.0.0:8080);\n"
	    "                          [::]:PORT for IPv6, PORT=0 picks a free port;\n"
	    "                          without -l the PORT environment variable sets\n"
	    "                          the port\n"
	    "  -c, --max-conns N       concurrent connections (default %d); when full,\n"
	    "                          the longest-idle connection is dropped\n"
	    "  -t, --idle-timeout S    close keep-alive connections idle S seconds\n"
	    "                          (default %d)\n"
	    "  -q, --quiet             no per-request log lines\n"
	    "  -h, --help              this text\n"
	    "      --version           print the version\n"
	    "  export [-o FILE]        write the image as a tar (docker-archive and\n"
	    "                          OCI layout in one) for docker/podman load or\n"
	    "                          ctr images import, to FILE or stdout\n"
	    "\n"
	    "The image runs /quinistry, exposes 8080/tcp and runs as user 65534:65534.\n"
	    "health check: GET /v2/ (200 {})\n"
	    "pull:   docker pull localhost:8080/quinistry:latest\n",
	    DEFAULT_MAX_CONNS, IDLE_TIMEOUT_MS / 1000);
}

static void die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "quinistry: %s%s%s\n", msg, arg ? ": " : "",
	    arg ? arg : "");
	fprintf(stderr, "try 'quinistry --help'\n");
	exit(2);
}

/* The value of an option given as "-x V", "--long V" or "--long=V". */
static const char *opt_value(int argc, char **argv, int *i, const char *s,
    const char *l)
{
	const char *a = argv[*i];
	size_t ll = strlen(l);

	if (strncmp(a, l, ll) == 0 && a[ll] == '=')
		return a + ll + 1;
	if (strcmp(a, s) != 0 && strcmp(a, l) != 0)
		return NULL;
	if (*i + 1 == argc)
		die_usage("missing value for", a);
	return argv[++*i];
}

static int parse_port(const char *s, unsigned *port)
{
	char *end;
	long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* ADDR:PORT, [IPV6]:PORT, :PORT or PORT; "localhost" means 127.0.0.1. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss,
    socklen_t *sl)
{
	char host[128];
	const char *colon, *port_s;
	unsigned port;

	memset(ss, 0, sizeof *ss);
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');
		if (!end || end[1] != ':' || (size_t)(end - arg - 1) >= sizeof host)
			return -1;
		memcpy(host, arg + 1, (size_t)(end - arg - 1));
		host[end - arg - 1] = '\0';
		port_s = end + 2;
	} else if ((colon = strrchr(arg, ':'))) {
		if ((size_t)(colon - arg) >= sizeof host)
			return -1;
		memcpy(host, arg, (size_t)(colon - arg));
		host[colon - arg] = '\0';
		port_s = colon + 1;
	} else {
		host[0] = '\0';
		port_s = arg;
	}
	if (parse_port(port_s, &port))
		return -1;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		strcpy(host, "0.0.0.0");
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((unsigned short)port);
			*sl = sizeof *a4;
			return 0;
		}
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((unsigned short)port);
			*sl = sizeof *a6;
			return 0;
		}
	}
	return -1;
}

static void setup_listener(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, zero = 0, sndbuf = SNDBUF_BYTES, defer = DEFER_ACCEPT_S;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	if (parse_listen(spec, &ss, &sl)) {
		fprintf(stderr, "quinistry: bad listen address '%s' "
		    "(want ADDR:PORT, e.g. 0.0.0.0:8080 or [::]:8080)\n", spec);
		exit(2);
	}
	listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (listen_fd < 0) {
		fprintf(stderr, "quinistry: socket: %s\n", strerror(errno));
		exit(1);
	}
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* Set once here, Linux passes them on to every accepted socket:
	 * responses are whole send()s, so send them at once (no Nagle),
	 * and bound each connection's send buffer (SNDBUF_BYTES). */
	setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(listen_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	setsockopt(listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
	    sizeof defer);
	if (ss.ss_family == AF_INET6) /* [::] serves IPv4 too */
		setsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof zero);
	if (bind(listen_fd, (struct sockaddr *)&ss, sl) < 0 ||
	    listen(listen_fd, LISTEN_BACKLOG) < 0) {
		fprintf(stderr, "quinistry: cannot listen on %s: %s\n", spec,
		    strerror(errno));
		exit(1);
	}
	/* Delayed ACKs from the first byte (TCP_QUICKACK 0 puts a socket in
	 * Linux's "pingpong" mode, which accepted sockets inherit; it must be
	 * set after listen(), which resets the listener's ACK state). A new
	 * connection starts in quick-ACK mode, so the kernel would acknowledge
	 * the request in a segment of its own, microseconds before the
	 * response that carries the same ACK (RFC 9293 section 3.8.6.3 allows
	 * the delay). The price: a client that writes its request head in
	 * two small pieces without TCP_NODELAY waits one delayed-ACK timeout
	 * (~40 ms here) for Nagle to release the second piece, now on its
	 * first request too; Linux's default already makes it wait on every
	 * later one. curl and Go clients (docker, containerd, podman,
	 * skopeo) set TCP_NODELAY. */
	setsockopt(listen_fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
	sl = sizeof ss;
	getsockname(listen_fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		port = ntohs(a->sin6_port);
		fprintf(stderr, "quinistry: listening on [%s]:%u\n", ip, port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		port = ntohs(a->sin_port);
		fprintf(stderr, "quinistry: listening on %s:%u\n", ip, port);
	}
}

/* Room for as many connections as asked: raise the soft descriptor limit
 * to the hard one, then fit max_conns under it. */
static void setup_tables(void)
{
	struct rlimit rl;
	long fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (rl.rlim_cur > HARD_MAX_CONNS + FD_RESERVE)
				rl.rlim_cur = HARD_MAX_CONNS + FD_RESERVE;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		fit = rl.rlim_cur == RLIM_INFINITY ? HARD_MAX_CONNS :
		    (long)rl.rlim_cur - FD_RESERVE;
		if (opt_max_conns > fit) {
			fprintf(stderr, "quinistry: descriptor limit %ld allows "
			    "%ld connections, not %ld\n", (long)rl.rlim_cur,
			    fit < 1 ? 1 : fit, opt_max_conns);
			opt_max_conns = fit < 1 ? 1 : fit;
		}
	}
	/* calloc'd tables, entries handed out in order: pages no connection
	 * has used are never made resident. */
	conns = calloc((size_t)opt_max_conns, sizeof *conns);
	pfds = calloc((size_t)opt_max_conns + 2, sizeof *pfds);
	slot_conn = calloc((size_t)opt_max_conns + 2, sizeof *slot_conn);
	if (!conns || !pfds || !slot_conn) {
		fprintf(stderr, "quinistry: out of memory for %ld connections\n",
		    opt_max_conns);
		exit(1);
	}
}

/* The layer, once more, in an anonymous memory file (not the file
 * system): sendfile() can then hand its pages to the socket. Without
 * memfd_create() the layer is simply written from memory. */
static void setup_zero_copy(void)
{
	int fd = memfd_create("quinistry-layer", MFD_CLOEXEC);

	if (fd < 0)
		return;
	if (write_all(fd, layer, layer_len)) {
		close(fd);
		return;
	}
	layer_fd = fd;
}

static void setup_signals(void)
{
	struct sigaction sa;
	int i;

	if (pipe(sig_pipe) < 0) {
		perror("quinistry: pipe");
		exit(1);
	}
	for (i = 0; i < 2; i++) {
		fcntl(sig_pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN; /* a vanished client must not kill us */
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static int cmd_export(int argc, char **argv)
{
	const char *out = NULL;
	int fd = 1, i;

	for (i = 2; i < argc; i++) {
		if ((strcmp(argv[i], "-o") == 0 ||
		    strcmp(argv[i], "--output") == 0) && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else
			die_usage("export: unknown argument", argv[i]);
	}
	if (!out && isatty(1)) {
		fprintf(stderr, "quinistry: export writes a tar; redirect it "
		    "(quinistry export > quinistry.tar) or use -o FILE\n");
		return 2;
	}
	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		fprintf(stderr, "quinistry: %s: %s\n", out, strerror(errno));
		return 1;
	}
	if (export_image(fd) || (out && close(fd) < 0)) {
		fprintf(stderr, "quinistry: export: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *listen_spec = NULL, *env_port = getenv("PORT");
	char spec_buf[64];
	int i, exporting = argc > 1 && strcmp(argv[1], "export") == 0;

	for (i = 1; i < argc && !exporting; i++) {
		const char *a = argv[i], *v;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("quinistry " VERSION "\n");
			return 0;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			opt_quiet = 1;
		} else if ((v = opt_value(argc, argv, &i, "-l", "--listen"))) {
			listen_spec = v;
		} else if ((v = opt_value(argc, argv, &i, "-c", "--max-conns"))) {
			char *end;
			errno = 0;
			opt_max_conns = strtol(v, &end, 10);
			if (errno || *end || end == v || opt_max_conns < 1 ||
			    opt_max_conns > HARD_MAX_CONNS)
				die_usage("bad connection count", v);
		} else if ((v = opt_value(argc, argv, &i, "-t",
		    "--idle-timeout"))) {
			char *end;
			long t;
			errno = 0;
			t = strtol(v, &end, 10);
			if (errno || *end || end == v || t < 1 ||
			    t > MAX_IDLE_TIMEOUT_S)
				die_usage("bad idle timeout (1 to 3600 s)", v);
			/* hot for HOT_IDLE_MS, then cold for the rest */
			list_timeout[T_COLD] = t * 1000;
			list_timeout[T_IDLE] = t * 1000 < HOT_IDLE_MS ?
			    t * 1000 : HOT_IDLE_MS;
		} else {
			die_usage("unknown option", a);
		}
	}
	if (!listen_spec) {
		unsigned port = 8080;
		if (env_port && parse_port(env_port, &port)) {
			fprintf(stderr, "quinistry: bad PORT '%s'\n", env_port);
			return 2;
		}
		snprintf(spec_buf, sizeof spec_buf, "0.0.0.0:%u", port);
		listen_spec = spec_buf;
	}

	if (read_self(argv[0])) {
		fprintf(stderr, "quinistry: cannot read my own executable "
		    "(/proc/self/exe): %s\n", strerror(errno));
		return 1;
	}
	build_image();
	if (exporting)
		return cmd_export(argc, argv);

	fprintf(stderr, "quinistry " VERSION ": serving quinistry:latest "
	    "(linux/%s)\n", image_arch());
	fprintf(stderr, "  docker manifest %s\n", objects[OBJ_DOCKER].digest);
	fprintf(stderr, "  oci manifest    %s\n", objects[OBJ_OCI].digest);
	fprintf(stderr, "  config          %s\n", objects[OBJ_CONFIG].digest);
	fprintf(stderr, "  layer           %s (%lu bytes)\n",
	    objects[OBJ_LAYER].digest, (unsigned long)layer_len);
	if (elf_is_dynamic(self_bin, self_len))
		fprintf(stderr, "quinistry: warning: this binary is dynamically "
		    "linked, so the image it serves will not run in an empty\n"
		    "  (scratch) container. Build it statically: make "
		    "(musl-gcc -static) or cc -static.\n");
	setup_zero_copy();
	setup_signals();
	setup_tables();
	setup_listener(listen_spec);
	add_slot(listen_fd, POLLIN);
	add_slot(sig_pipe[0], POLLIN);
	nhot = nslots;
	serve();
	return 0;
}
