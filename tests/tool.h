/*
 * tool.h: what the C test and bench tools share (tests/hostile.c,
 * tests/slow.c, bench/loadgen.c): the clock, the ok/not ok line, dialling
 * the server on 127.0.0.1, writing a whole buffer, and reading one HTTP/1.1
 * response framed by Content-Length (RFC 9112 §6.3; quinistry and the
 * nginx of the bench never send chunked responses).
 *
 * Include it before any system header: it asks for the GNU names (memmem,
 * strcasestr, SOCK_NONBLOCK). Everything is static inline, so each tool
 * stays one .c file plus this one and compiles only what it calls.
 */
#ifndef QUINISTRY_TOOL_H
#define QUINISTRY_TOOL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- clock */

static inline long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline long long now_ms(void) { return now_us() / 1000; }
static inline double now_s(void) { return (double)now_us() / 1e6; }

/* ---- result lines (test.sh counts them) */

static int failures; /* `not ok` lines printed so far */

static inline void report(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!ok)
        failures++;
}

/* ---- process */

/* Thousands of connections need thousands of descriptors. */
static inline void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* for qsort */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- sockets: the only target is 127.0.0.1 */

static inline struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* A TCP connection to 127.0.0.1:port with Nagle off (a request goes out
 * at once). nonblock: the connect may still be in progress (see
 * sock_error); rcvbuf > 0 sets SO_RCVBUF before the handshake, where it
 * decides the window. Returns the fd or -1 (errno). */
static inline int dial(int port, int nonblock, int rcvbuf)
{
    struct sockaddr_in sa = loopback(port);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
                    (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
        !(nonblock && errno == EINPROGRESS)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The outcome of a non-blocking connect once the socket polls writable:
 * 0 or the errno. */
static inline int sock_error(int fd)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        return errno;
    return err;
}

/* Wait until fd has one of events or the deadline (now_ms clock) passes:
 * 1 ready, 0 timed out, -1 poll failed. */
static inline int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p;
        int r;
        if (left <= 0)
            return 0;
        p.fd = fd;
        p.events = events;
        p.revents = 0;
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : r > 0;
    }
}

/* Write all n bytes, waiting for room on a non-blocking socket until the
 * deadline. Returns 0, or the errno of the failed write (ETIMEDOUT when
 * the deadline passed). */
static inline int send_all(int fd, const void *buf, size_t n,
                           long long deadline)
{
    const char *p = buf;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            int r = wait_fd(fd, POLLOUT, deadline);
            if (r <= 0)
                return r ? errno : ETIMEDOUT;
            continue;
        }
        if (w < 0)
            return errno;
        off += (size_t)w;
    }
    return 0;
}

/* ---- one HTTP/1.1 response */

/* What a response head says. */
struct head {
    size_t len;      /* bytes of the head, the empty line included */
    int status;      /* 0: the status line is malformed */
    int ncl;         /* Content-Length fields in the head */
    long long clen;  /* the first one's value, -1 if absent or not digits */
    int close;       /* Connection: close (RFC 9112 §9.6) */
    long long body;  /* body bytes that follow; -1: not framed */
};

/* The fields named `name` (case-insensitive, RFC 9110 §5.1) in the head
 * h[0..hlen): how many there are; the first one's value, without the
 * optional whitespace around it (§5.5), goes to out when out is given. */
static inline int head_field(const char *h, size_t hlen, const char *name,
                             char *out, size_t outlen)
{
    const char *end = h + hlen, *p, *eol;
    size_t nl = strlen(name);
    int found = 0;
    p = memmem(h, hlen, "\r\n", 2); /* skip the status line */
    for (; p && p + 2 < end; p = eol) {
        const char *line = p + 2, *colon, *v, *e;
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol || eol == line) /* the empty line ends the head */
            break;
        colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || (size_t)(colon - line) != nl ||
            strncasecmp(line, name, nl))
            continue;
        v = colon + 1;
        e = eol;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (!found && out && outlen) {
            size_t k = (size_t)(e - v) < outlen ? (size_t)(e - v)
                                                 : outlen - 1;
            memcpy(out, v, k);
            out[k] = 0;
        }
        found++;
    }
    return found;
}

/* Parse the head at the start of b[0..n). Returns 0 when it is not
 * complete yet, 1 when it is (h filled), -1 when it is complete but its
 * status line is not "HTTP/1.1 NNN " (h->len set, h->status 0). is_head:
 * the request was HEAD, so no body follows (RFC 9110 §9.3.2). */
static inline int head_parse(const char *b, size_t n, int is_head,
                             struct head *h)
{
    const char *e = memmem(b, n, "\r\n\r\n", 4);
    char v[64];
    memset(h, 0, sizeof *h);
    h->clen = h->body = -1;
    if (!e)
        return 0;
    h->len = (size_t)(e - b) + 4;
    if (h->len < 13 || memcmp(b, "HTTP/1.1 ", 9) || b[9] < '1' ||
        b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' ||
        b[11] > '9' || b[12] != ' ')
        return -1;
    h->status = atoi(b + 9);
    h->ncl = head_field(b, h->len, "Content-Length", v, sizeof v);
    if (h->ncl && v[0] && strspn(v, "0123456789") == strlen(v)) {
        char *end;
        errno = 0;
        h->clen = strtoll(v, &end, 10);
        if (errno)
            h->clen = -1;
    }
    h->close = head_field(b, h->len, "Connection", v, sizeof v) &&
               strcasestr(v, "close");
    if (is_head || h->status < 200 || h->status == 204 || h->status == 304)
        h->body = 0; /* RFC 9112 §6.3 rule 1 */
    else if (h->ncl == 1)
        h->body = h->clen;
    return 1;
}

/* A connection's receive buffer; it grows as a response needs. */
struct rbuf {
    int fd;
    char *buf;
    size_t len, cap;
};

static inline void rb_open(struct rbuf *c, int fd)
{
    c->fd = fd;
    c->len = 0;
    c->cap = 65536;
    c->buf = malloc(c->cap);
    if (!c->buf)
        abort();
}

static inline void rb_close(struct rbuf *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

/* Drop the first n buffered bytes (a response that has been used). */
static inline void rb_drop(struct rbuf *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Read what has arrived, waiting until the deadline. Returns the bytes
 * read, 0 at EOF, -1 on an error (errno), -2 when the deadline passed. */
static inline long rb_fill(struct rbuf *c, long long deadline)
{
    for (;;) {
        ssize_t n;
        int r = wait_fd(c->fd, POLLIN, deadline);
        if (r <= 0)
            return r < 0 ? -1 : -2;
        if (c->cap - c->len < 16384) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf)
                abort();
        }
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -1;
        c->len += (size_t)n;
        return n;
    }
}

enum {
    RESP_OK = 1,       /* head and body are at the start of the buffer */
    RESP_EOF = 0,      /* the server closed first */
    RESP_ERR = -1,     /* read error (errno) */
    RESP_TIMEOUT = -2, /* the deadline passed */
    RESP_BIG = -3,     /* no end of head within RESP_HEAD_MAX bytes */
    RESP_BAD = -4      /* bad status line (h->status 0), or no framing */
};
#define RESP_HEAD_MAX 16383

/* Read one response on c until the deadline. h->len is 0 until the whole
 * head has arrived (and only then if it is at most RESP_HEAD_MAX bytes),
 * so a caller can tell where a failure happened; on
 * RESP_OK the response is c->buf[0 .. h->len + h->body). */
static inline int read_response(struct rbuf *c, int is_head,
                                long long deadline, struct head *h)
{
    int r;
    long n;
    while ((r = head_parse(c->buf, c->len, is_head, h)) == 0) {
        if (c->len > RESP_HEAD_MAX)
            return RESP_BIG;
        n = rb_fill(c, deadline);
        if (n <= 0)
            return n == 0 ? RESP_EOF : n == -1 ? RESP_ERR : RESP_TIMEOUT;
    }
    if (h->len > RESP_HEAD_MAX) {
        h->len = 0;
        return RESP_BIG;
    }
    if (r < 0 || h->body < 0)
        return RESP_BAD;
    while (c->len < h->len + (size_t)h->body) {
        n = rb_fill(c, deadline);
        if (n <= 0)
            return n == 0 ? RESP_EOF : n == -1 ? RESP_ERR : RESP_TIMEOUT;
    }
    return RESP_OK;
}

/* The first "sha256:..." digest (71 characters) after key in a JSON
 * manifest, in a malloc'd string, or NULL. No JSON parser: our manifests
 * hold one digest per object, config first, then the layer. */
static inline char *digest_after(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    char *d;
    if (!p || !(p = strstr(p, "sha256:")) || strlen(p) < 71)
        return NULL;
    d = malloc(72);
    if (!d)
        abort();
    memcpy(d, p, 71);
    d[71] = 0;
    return d;
}

#endif
