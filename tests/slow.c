/*
 * slow.c: bounded loopback load tests for quinistry.
 *
 * Usage: slow PORT [HEAD_TIMEOUT_S WRITE_TIMEOUT_S]   (defaults 10 10)
 * Env (for quick runs): SLOW_N (1000 per attack kind), KA_N (10000).
 *
 * (a) Attack: SLOW_N connections trickle a request head one byte every
 *     200 ms and never finish it (slowloris), and SLOW_N connections with a
 *     tiny SO_RCVBUF pipeline enough layer-blob GETs to exceed any socket
 *     buffering and never read.  Meanwhile a separate process fetches the
 *     manifest 20 times on fresh connections: every fetch must take < 1 s
 *     (p50/max printed).  Then every slow-header connection must be closed by
 *     the server within HEAD_TIMEOUT+3 s of its first byte (seen as EOF/RST),
 *     and every non-reading one within WRITE_TIMEOUT+3 s of its request; as
 *     such a client never reads, the server side of each connection is
 *     looked up in /proc/net/tcp (closed = no longer ESTABLISHED).
 * (b) KA_N concurrent keep-alive connections (the server needs -c >= KA_N+50):
 *     open all, one GET /v2/ on each (all 200), then a second on each.
 * Everything uses non-blocking sockets and poll(), and every phase has a
 * deadline; the whole run stays under ~60 s.
 * Prints one ok/not ok line per check; exit 1 if any failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int port;
static int failures;
static int mode; /* env SLOW_MODE: 0 both (default), 1 slow-header only, 2 non-reading only */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(int ok, const char *fmt, ...)
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

static struct sockaddr_in server_addr(void)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* non-blocking socket, connect started; -1 on immediate failure */
static int start_connect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = server_addr();
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t l = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
        return -1;
    return ntohs(sa.sin_port);
}

/* -------------------------------------------- blocking one-shot fetch */

static char *manifest; /* body of GET manifest */
static size_t manifest_len;

/* GET `path` on a fresh connection, whole response within timeout_ms.
   Returns the status, or a negative stage code (see fetch_err), and the
   elapsed ms in *ms; the body in *body if wanted. */
enum { F_SOCKET = -1, F_CONNECT = -2, F_SEND = -3, F_HEAD = -4, F_BODY = -5, F_BAD = -6, F_EOF = -7 };

static const char *fetch_err(int st)
{
    switch (st) {
    case F_SOCKET: return "socket/connect failed";
    case F_CONNECT: return "handshake timed out or refused";
    case F_SEND: return "request not written in time";
    case F_HEAD: return "no response head in time";
    case F_BODY: return "body incomplete in time";
    case F_BAD: return "malformed response";
    case F_EOF: return "connection closed or reset early";
    default: return "ok";
    }
}

static int fetch(const char *path, int timeout_ms, long long *ms, char **body, size_t *blen)
{
    long long t0 = now_ms(), deadline = t0 + timeout_ms;
    *ms = 0;
    int fd = start_connect(0);
    if (fd < 0)
        return F_SOCKET;
    char req[512];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    size_t off = 0, len = 0, cap = 1 << 20;
    char *buf = malloc(cap);
    int rc = F_CONNECT, connected = 0;
    long clen = -1;
    size_t hlen = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = (short)(off < (size_t)rl ? POLLOUT : POLLIN)};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        if (!connected) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err)
                break;
            connected = 1;
            rc = F_SEND;
        }
        if (off < (size_t)rl) {
            ssize_t w = write(fd, req + off, (size_t)rl - off);
            if (w < 0 && errno != EAGAIN) {
                rc = F_EOF;
                break;
            }
            if (w > 0)
                off += (size_t)w;
            if (off == (size_t)rl)
                rc = F_HEAD;
            continue;
        }
        if (len == cap) {
            rc = F_BAD;
            break;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EAGAIN)
            continue;
        if (n <= 0) {
            rc = F_EOF;
            break;
        }
        len += (size_t)n;
        if (!hlen) {
            char *e = memmem(buf, len, "\r\n\r\n", 4);
            if (!e)
                continue;
            hlen = (size_t)(e - buf) + 4;
            char *cl = memmem(buf, hlen, "\r\nContent-Length:", 17);
            if (!cl)
                cl = memmem(buf, hlen, "\r\ncontent-length:", 17);
            if (len < 12 || strncmp(buf, "HTTP/1.1 ", 9) || !cl) {
                rc = F_BAD;
                break;
            }
            clen = atol(cl + 17);
            rc = F_BODY;
        }
        if (len >= hlen + (size_t)clen) {
            rc = atoi(buf + 9);
            if (body) {
                *blen = (size_t)clen;
                *body = malloc((size_t)clen + 1);
                memcpy(*body, buf + hlen, (size_t)clen);
                (*body)[clen] = 0;
            }
            break;
        }
    }
    *ms = now_ms() - t0;
    close(fd);
    free(buf);
    return rc;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* -------------------------------------------- /proc/net/tcp lookup */

/* server-side state of each connection to our port, indexed by client port:
   0 absent, else TCP state number (1 = ESTABLISHED); tx[] = unsent bytes */
static unsigned char srv_state[65536];
static unsigned srv_txq[65536];

static int scan_proc(void)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return -1;
    memset(srv_state, 0, sizeof srv_state);
    memset(srv_txq, 0, sizeof srv_txq);
    char line[512];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned la, lp, ra, rp, st, txq, rxq;
        if (sscanf(line, " %*d: %x:%x %x:%x %x %x:%x", &la, &lp, &ra, &rp, &st, &txq, &rxq) != 7)
            continue;
        if ((int)lp != port || rp == 0 || rp > 65535)
            continue;
        if (srv_state[rp] != 1) { /* ESTABLISHED wins over a stale entry */
            srv_state[rp] = (unsigned char)st;
            srv_txq[rp] = txq;
        }
    }
    fclose(f);
    return 0;
}

/* ------------------------------------------------------ (a) attack */

enum { UNUSED, CONNECTING, ACTIVE, DONE, FAILED };
enum { LORIS, NOREAD };

struct sc {
    int fd, kind, state, cport;
    long long t_start; /* first byte (loris) / request fully sent (noread) */
    long long t_next, t_closed;
    size_t off;
};

static const char LORIS_HEAD_PREFIX[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ";
#define LORIS_LEN 300 /* 60 s at 200 ms per byte: never finished in time */
#define LORIS_MS 200

static char *find_layer(const char *m, long *size)
{
    const char *p = strstr(m, "\"layers\"");
    if (!p)
        return NULL;
    const char *d = strstr(p, "sha256:");
    const char *s = strstr(p, "\"size\"");
    if (!d || !s)
        return NULL;
    s += 6;
    while (*s == ' ' || *s == ':')
        s++;
    *size = atol(s);
    char *r = malloc(72);
    memcpy(r, d, 71);
    r[71] = 0;
    return r;
}

static void latency_child(int go_fd, int res_fd)
{
    char b;
    if (read(go_fd, &b, 1) != 1)
        _exit(1);
    char out[1024];
    int o = 0;
    for (int i = 0; i < 20; i++) {
        long long t0 = now_ms(), ms;
        int st = fetch("/v2/quinistry/manifests/latest", 3000, &ms, NULL, NULL);
        o += snprintf(out + o, sizeof out - (size_t)o, "%d %lld ", st, ms);
        long long wait = 250 - (now_ms() - t0);
        if (wait > 0)
            usleep((useconds_t)wait * 1000);
    }
    out[o++] = '\n';
    if (write(res_fd, out, (size_t)o) < 0)
        _exit(1);
    _exit(0);
}

static void phase_attack(int n, int ht_s, int wt_s)
{
    long layer_size = 0;
    char *layer = find_layer(manifest, &layer_size);
    if (!layer || layer_size <= 0) {
        report(0, "attack: cannot find the layer digest in the manifest");
        return;
    }
    /* enough pipelined requests that the responses exceed the largest send
       buffer the kernel may give the server plus our receive buffer */
    long wmem_max = 4 << 20;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (f) {
        long a, b, c;
        if (fscanf(f, "%ld %ld %ld", &a, &b, &c) == 3)
            wmem_max = c;
        fclose(f);
    }
    long k = (wmem_max + (1 << 20)) / layer_size + 1;
    if (k > 400)
        k = 400;
    char one[200];
    int ol = snprintf(one, sizeof one, "GET /v2/quinistry/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", layer);
    size_t nrlen = (size_t)ol * (size_t)k;
    char *nreq = malloc(nrlen);
    for (long i = 0; i < k; i++)
        memcpy(nreq + (size_t)i * (size_t)ol, one, (size_t)ol);
    char loris[LORIS_LEN];
    memset(loris, 'a', sizeof loris);
    memcpy(loris, LORIS_HEAD_PREFIX, sizeof LORIS_HEAD_PREFIX - 1);

    /* latency prober: forked before any attack socket exists */
    int go[2], res[2];
    if (pipe(go) || pipe(res)) {
        report(0, "attack: pipe: %s", strerror(errno));
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        close(go[1]);
        close(res[0]);
        latency_child(go[0], res[1]);
    }
    close(go[0]);
    close(res[1]);
    fcntl(res[0], F_SETFL, O_NONBLOCK);

    int total = 2 * n;
    struct sc *c = calloc((size_t)total, sizeof *c);
    struct pollfd *pf = calloc((size_t)total + 1, sizeof *pf);
    int *idx = calloc((size_t)total + 1, sizeof *idx);
    long long t0 = now_ms();
    int next = 0, inflight = 0, connected = 0, failed = 0;
    long long t_all = 0, go_sent = 0, res_got = 0;
    char resbuf[1024];
    size_t reslen = 0;
    int loris_open_at_probe = -1, noread_open_at_probe = -1;
    unsigned long long txq_at_probe = 0;
    long long last_scan = 0, phase_end = t0 + 30000;

    for (;;) {
        long long now = now_ms();
        /* start connections, at most 256 handshakes in flight */
        while (next < total && inflight < 256) {
            struct sc *s = &c[next];
            s->kind = mode == 1 ? LORIS : mode == 2 ? NOREAD : next % 2 ? NOREAD : LORIS;
            s->fd = start_connect(s->kind == NOREAD ? 4096 : 0);
            s->state = s->fd < 0 ? FAILED : CONNECTING;
            if (s->fd < 0)
                failed++;
            else
                inflight++;
            next++;
        }
        if (!t_all && next == total && inflight == 0) {
            t_all = now;
            phase_end = t_all + 1500 + 1000LL * ((ht_s > wt_s ? ht_s : wt_s) + 3);
            /* let the non-reading ones fill their buffers, then probe */
        }
        if (t_all && !go_sent && now >= t_all + 1000) {
            if (write(go[1], "g", 1) != 1)
                report(0, "attack: cannot start prober");
            go_sent = now;
        }
        /* scan the server side via /proc/net/tcp: twice a second */
        int all_closed = 1;
        if (now - last_scan >= 500 && t_all) {
            last_scan = now;
            if (scan_proc() == 0) {
                int lo = 0, no = 0;
                unsigned long long tx = 0;
                for (int i = 0; i < total; i++) {
                    struct sc *s = &c[i];
                    if (s->state != ACTIVE || s->cport <= 0)
                        continue;
                    int open = srv_state[s->cport] == 1;
                    if (s->kind == NOREAD) {
                        if (!s->t_start)
                            continue;
                        if (open) {
                            no++;
                            tx += srv_txq[s->cport];
                        } else if (!s->t_closed)
                            s->t_closed = now;
                    } else if (open)
                        lo++;
                }
                if (go_sent && !res_got && loris_open_at_probe < 0 && now >= go_sent + 2000) {
                    loris_open_at_probe = lo;
                    noread_open_at_probe = no;
                    txq_at_probe = tx;
                }
            }
        }
        for (int i = 0; i < total; i++) {
            struct sc *s = &c[i];
            if (s->state == CONNECTING || (s->state == ACTIVE && !s->t_closed))
                all_closed = 0;
        }
        if (res_got && all_closed)
            break;
        if (now >= phase_end)
            break;
        /* build the poll set */
        int np = 0;
        long long wake = now + 100;
        for (int i = 0; i < total; i++) {
            struct sc *s = &c[i];
            short ev = 0;
            if (s->state == CONNECTING)
                ev = POLLOUT;
            else if (s->state == ACTIVE && !s->t_closed) {
                if (s->kind == LORIS) {
                    ev = POLLIN;
                    if (s->t_next && s->t_next < wake)
                        wake = s->t_next;
                } else if (s->off < nrlen)
                    ev = POLLOUT;
            }
            if (!ev)
                continue;
            pf[np].fd = s->fd;
            pf[np].events = ev;
            pf[np].revents = 0;
            idx[np++] = i;
        }
        pf[np].fd = res[0];
        pf[np].events = POLLIN;
        pf[np].revents = 0;
        idx[np] = -1;
        int to = (int)(wake - now);
        if (to < 0)
            to = 0;
        if (poll(pf, (nfds_t)np + 1, to) < 0 && errno != EINTR)
            break;
        now = now_ms();
        if (pf[np].revents) {
            ssize_t r = read(res[0], resbuf + reslen, sizeof resbuf - 1 - reslen);
            if (r > 0) {
                reslen += (size_t)r;
                if (memchr(resbuf, '\n', reslen))
                    res_got = now;
            } else if (r == 0 && !res_got) {
                res_got = now; /* child died */
            }
        }
        for (int j = 0; j < np; j++) {
            struct sc *s = &c[idx[j]];
            short re = pf[j].revents;
            if (!re)
                continue;
            if (s->state == CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                inflight--;
                if (err) {
                    s->state = FAILED;
                    failed++;
                    close(s->fd);
                    s->fd = -1;
                    continue;
                }
                s->state = ACTIVE;
                s->cport = local_port(s->fd);
                connected++;
                if (s->kind == LORIS)
                    s->t_next = now + (idx[j] / 2) % LORIS_MS;
                continue;
            }
            if (s->kind == LORIS) {
                char b[4096];
                ssize_t r = read(s->fd, b, sizeof b);
                if (r == 0 || (r < 0 && errno != EAGAIN))
                    s->t_closed = now; /* EOF or reset: closed by the server */
            } else {
                ssize_t w = write(s->fd, nreq + s->off, nrlen - s->off);
                if (w > 0)
                    s->off += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    s->t_closed = now;
                if (s->off == nrlen)
                    s->t_start = now;
            }
        }
        /* trickle one byte on each due slowloris connection */
        now = now_ms();
        for (int i = 0; i < total; i++) {
            struct sc *s = &c[i];
            if (s->kind != LORIS || s->state != ACTIVE || s->t_closed || !s->t_next || now < s->t_next)
                continue;
            if (s->off < LORIS_LEN) {
                ssize_t w = write(s->fd, loris + s->off, 1);
                if (w == 1) {
                    if (!s->off)
                        s->t_start = now;
                    s->off++;
                } else if (w < 0 && errno != EAGAIN)
                    s->t_closed = now;
            }
            s->t_next += LORIS_MS;
            if (s->t_next < now)
                s->t_next = now + LORIS_MS;
        }
    }
    long long t_end = now_ms();

    /* ---- results */
    int nl = 0, no = 0;
    for (int i = 0; i < total; i++)
        if (c[i].state == ACTIVE)
            (*(c[i].kind == LORIS ? &nl : &no))++;
    report(connected == total, "attack set-up: %d/%d connections established (%d slow-header, %d non-reading with SO_RCVBUF 4096 "
           "and %ld pipelined GETs of the %ld-byte layer) in %lld ms",
           connected, total, nl, no, k, layer_size, t_all ? t_all - t0 : t_end - t0);

    if (!res_got) {
        report(0, "manifest latency during the attack: prober gave no result");
    } else {
        resbuf[reslen] = 0;
        long long lat[20];
        int bad = 0;
        char *p = resbuf, first[200] = "";
        for (int i = 0; i < 20; i++) {
            int st = (int)strtol(p, &p, 10);
            lat[i] = strtoll(p, &p, 10);
            if (st != 200 && !bad++)
                snprintf(first, sizeof first, "; first failure: try %d: %s%s after %lld ms", i + 1,
                         st > 0 ? "HTTP status " : fetch_err(st), st > 0 ? "not 200" : "", lat[i]);
        }
        qsort(lat, 20, sizeof lat[0], cmp_ll);
        report(bad == 0 && lat[19] < 1000 && loris_open_at_probe >= 0,
               "manifest GET during the attack: p50 %lld ms, max %lld ms over 20 tries, %d failed (limit 1000 ms)%s; "
               "server-side still open mid-probe: %d/%d slow-header, %d/%d non-reading (%.1f MB unsent in server socket buffers)",
               lat[10], lat[19], bad, first, loris_open_at_probe, nl, noread_open_at_probe, no, txq_at_probe / 1048576.0);
    }

    /* slow-header connections: closed by the server within HT+3 s of the first byte */
    long long mn = -1, mx = -1;
    int ok_l = 0, late_l = 0, open_l = 0, nostart = 0;
    for (int i = 0; i < total; i++) {
        struct sc *s = &c[i];
        if (s->kind != LORIS || s->state != ACTIVE)
            continue;
        if (!s->t_start) {
            nostart++;
            continue;
        }
        if (!s->t_closed) {
            open_l++;
            continue;
        }
        long long d = s->t_closed - s->t_start;
        if (mn < 0 || d < mn)
            mn = d;
        if (d > mx)
            mx = d;
        if (d <= (ht_s + 3) * 1000LL)
            ok_l++;
        else
            late_l++;
    }
    int want_l = mode == 1 ? total : mode == 2 ? 0 : n, want_n = total - want_l;
    if (want_l)
    report(ok_l == want_l, "slow-header connections closed by the server: %d/%d within %d s of their first byte "
           "(%.1f-%.1f s; %d late, %d still open, %d never started)",
           ok_l, want_l, ht_s + 3, mn / 1000.0, mx / 1000.0, late_l, open_l, nostart);

    /* non-reading connections: server side gone within WT+3 s of the request */
    mn = mx = -1;
    int ok_n = 0, late_n = 0, open_n = 0;
    for (int i = 0; i < total; i++) {
        struct sc *s = &c[i];
        if (s->kind != NOREAD || s->state != ACTIVE)
            continue;
        if (!s->t_closed || !s->t_start) {
            open_n++;
            continue;
        }
        long long d = s->t_closed - s->t_start;
        if (mn < 0 || d < mn)
            mn = d;
        if (d > mx)
            mx = d;
        if (d <= (wt_s + 3) * 1000LL)
            ok_n++;
        else
            late_n++;
    }
    if (want_n)
    report(ok_n == want_n, "non-reading connections closed by the server: %d/%d within %d s of their request "
           "(%.1f-%.1f s; %d late, %d still open)",
           ok_n, want_n, wt_s + 3, mn / 1000.0, mx / 1000.0, late_n, open_n);

    for (int i = 0; i < total; i++)
        if (c[i].fd >= 0)
            close(c[i].fd);
    free(c);
    free(pf);
    free(idx);
    free(nreq);
    free(layer);
    close(go[1]);
    close(res[0]);
    int wst;
    waitpid(child, &wst, 0);

    long long ms;
    int st = fetch("/v2/quinistry/manifests/latest", 2000, &ms, NULL, NULL);
    report(st == 200, "after the attack: manifest GET -> %d in %lld ms", st, ms);
}

/* ------------------------------------------------- (b) 10k keep-alive */

struct ka {
    int fd, state; /* CONNECTING, ACTIVE, DONE (answered this round), FAILED */
    unsigned short len;
    char buf[1024];
};

static const char KA_REQ[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";

/* parse a complete response in k->buf: 1 = complete (status in *st), 0 = need more, -1 bad */
static int ka_parse(struct ka *k, int *st)
{
    char *e = memmem(k->buf, k->len, "\r\n\r\n", 4);
    if (!e)
        return k->len >= sizeof k->buf ? -1 : 0;
    size_t hlen = (size_t)(e - k->buf) + 4;
    if (strncmp(k->buf, "HTTP/1.1 ", 9))
        return -1;
    *st = atoi(k->buf + 9);
    char *cl = memmem(k->buf, hlen, "\r\nContent-Length:", 17);
    if (!cl)
        return -1;
    long clen = atol(cl + 17);
    if (k->len < hlen + (size_t)clen)
        return 0;
    if (memmem(k->buf, hlen, "Connection: close", 17))
        *st = -(*st); /* answered but will close: not keep-alive */
    return 1;
}

static void phase_keepalive(int n)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)n + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max >= want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        report(0, "keep-alive: RLIMIT_NOFILE is %lu, need %lu", (unsigned long)rl.rlim_cur, (unsigned long)want);
        return;
    }
    struct ka *k = calloc((size_t)n, sizeof *k);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    int *idx = calloc((size_t)n, sizeof *idx);
    long long t0 = now_ms(), deadline = t0 + 20000;
    int next = 0, inflight = 0, connected = 0, failed = 0;
    while (now_ms() < deadline && (next < n || inflight)) {
        while (next < n && inflight < 512) {
            k[next].fd = start_connect(0);
            if (k[next].fd < 0) {
                k[next].state = FAILED;
                failed++;
            } else {
                k[next].state = CONNECTING;
                inflight++;
            }
            next++;
        }
        int np = 0;
        for (int i = 0; i < next; i++)
            if (k[i].state == CONNECTING) {
                pf[np].fd = k[i].fd;
                pf[np].events = POLLOUT;
                pf[np].revents = 0;
                idx[np++] = i;
            }
        if (poll(pf, (nfds_t)np, 100) < 0 && errno != EINTR)
            break;
        for (int j = 0; j < np; j++) {
            if (!pf[j].revents)
                continue;
            struct ka *c = &k[idx[j]];
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            inflight--;
            if (err) {
                c->state = FAILED;
                failed++;
                close(c->fd);
                c->fd = -1;
            } else {
                c->state = ACTIVE;
                connected++;
            }
        }
    }
    long long t_conn = now_ms() - t0;
    /* none may have been closed by the server meanwhile */
    int early = 0;
    for (int i = 0; i < n; i++) {
        if (k[i].state != ACTIVE)
            continue;
        struct pollfd p = {.fd = k[i].fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            early++;
            k[i].state = FAILED;
        }
    }
    report(connected == n && !early, "keep-alive: %d/%d connections opened in %lld ms (%d failed, %d closed by server while idle)",
           connected, n, t_conn, failed, early);

    for (int round = 1; round <= 2; round++) {
        long long r0 = now_ms(), rdl = r0 + 20000;
        int sent = 0, got200 = 0, bad = 0, pending = 0, closedhdr = 0;
        long long lat_max = 0;
        for (int i = 0; i < n; i++) {
            if (k[i].state != ACTIVE && k[i].state != DONE)
                continue;
            k[i].state = ACTIVE;
            k[i].len = 0;
            if (write(k[i].fd, KA_REQ, sizeof KA_REQ - 1) == (ssize_t)(sizeof KA_REQ - 1)) {
                sent++;
                pending++;
            } else {
                k[i].state = FAILED;
                bad++;
            }
        }
        while (pending && now_ms() < rdl) {
            int np = 0;
            for (int i = 0; i < n; i++)
                if (k[i].state == ACTIVE) {
                    pf[np].fd = k[i].fd;
                    pf[np].events = POLLIN;
                    pf[np].revents = 0;
                    idx[np++] = i;
                }
            if (poll(pf, (nfds_t)np, 200) < 0 && errno != EINTR)
                break;
            for (int j = 0; j < np; j++) {
                if (!pf[j].revents)
                    continue;
                struct ka *c = &k[idx[j]];
                ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
                if (r < 0 && errno == EAGAIN)
                    continue;
                int st = 0, pr = r > 0 ? (c->len += (unsigned short)r, ka_parse(c, &st)) : -1;
                if (pr == 0)
                    continue;
                pending--;
                if (pr == 1 && st == 200) {
                    got200++;
                    c->state = DONE;
                    long long d = now_ms() - r0;
                    if (d > lat_max)
                        lat_max = d;
                } else {
                    if (st < 0)
                        closedhdr++;
                    bad++;
                    c->state = FAILED;
                }
            }
        }
        report(got200 == n, "keep-alive round %d: %d/%d GET /v2/ -> 200 on %s connections, all answered after %lld ms "
               "(%d bad, %d with Connection: close, %d unanswered)",
               round, got200, n, round == 1 ? "fresh" : "the same", lat_max, bad, closedhdr, pending);
    }
    for (int i = 0; i < n; i++)
        if (k[i].fd > 0)
            close(k[i].fd);
    free(k);
    free(pf);
    free(idx);
    long long ms;
    int st = fetch("/v2/quinistry/manifests/latest", 2000, &ms, NULL, NULL);
    report(st == 200, "after the keep-alive test: manifest GET -> %d in %lld ms", st, ms);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
        fprintf(stderr, "usage: slow PORT [HEAD_TIMEOUT_S WRITE_TIMEOUT_S]\n");
        return 2;
    }
    int ht = argc > 2 ? atoi(argv[2]) : 10, wt = argc > 3 ? atoi(argv[3]) : 10;
    int n = getenv("SLOW_N") ? atoi(getenv("SLOW_N")) : 1000;
    int kan = getenv("KA_N") ? atoi(getenv("KA_N")) : 10000;
    mode = getenv("SLOW_MODE") ? atoi(getenv("SLOW_MODE")) : 0;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    long long ms;
    int st = fetch("/v2/quinistry/manifests/latest", 2000, &ms, &manifest, &manifest_len);
    if (st != 200) {
        report(0, "baseline manifest GET -> %d", st);
        return 1;
    }
    long long t0 = now_ms();
    if (n > 0)
        phase_attack(n, ht, wt);
    if (kan > 0)
        phase_keepalive(kan);
    printf("# slow: %.1f s, %d failed\n", (now_ms() - t0) / 1000.0, failures);
    return failures ? 1 : 0;
}
