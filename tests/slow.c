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
#include "tool.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

static int port;
static int mode; /* env SLOW_MODE: 0 both (default), 1 slow-header only, 2 non-reading only */

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
    int fd = dial(port, 1, 0);
    if (fd < 0)
        return F_SOCKET;
    char req[512];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    struct rbuf c;
    struct head h;
    int rc, e;
    rb_open(&c, fd);
    if (wait_fd(fd, POLLOUT, deadline) <= 0 || sock_error(fd))
        rc = F_CONNECT;
    else if ((e = send_all(fd, req, (size_t)rl, deadline)))
        rc = e == ETIMEDOUT ? F_SEND : F_EOF;
    else
        switch (read_response(&c, 0, deadline, &h)) {
        case RESP_OK:
            rc = h.status;
            if (body) {
                *blen = (size_t)h.body;
                *body = malloc(*blen + 1);
                memcpy(*body, c.buf + h.len, *blen);
                (*body)[*blen] = 0;
            }
            break;
        case RESP_TIMEOUT:
            rc = h.len ? F_BODY : F_HEAD;
            break;
        case RESP_BIG:
        case RESP_BAD:
            rc = F_BAD;
            break;
        default:
            rc = F_EOF;
        }
    *ms = now_ms() - t0;
    rb_close(&c);
    return rc;
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

/* the state after a non-blocking connect finished: ACTIVE, or FAILED with
   the descriptor closed */
static int connect_finished(int *fd)
{
    if (!sock_error(*fd))
        return ACTIVE;
    close(*fd);
    *fd = -1;
    return FAILED;
}
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
    const char *s = p ? strstr(p, "\"size\"") : NULL;
    if (!s)
        return NULL;
    s += 6;
    while (*s == ' ' || *s == ':')
        s++;
    *size = atol(s);
    return digest_after(p, "\"layers\"");
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

/* how long the server took to close the established connections of one
   kind, from t_start (first byte sent, or request fully sent) */
struct closes {
    int ok, late, open, nostart; /* within limit, later, never, never started */
    long long mn, mx;            /* fastest and slowest close, -1 if none */
};

static struct closes tally_closes(const struct sc *c, int total, int kind, long long limit_ms)
{
    struct closes t = {0, 0, 0, 0, -1, -1};
    for (int i = 0; i < total; i++) {
        const struct sc *s = &c[i];
        if (s->kind != kind || s->state != ACTIVE)
            continue;
        if (!s->t_start) {
            t.nostart++;
            continue;
        }
        if (!s->t_closed) {
            t.open++;
            continue;
        }
        long long d = s->t_closed - s->t_start;
        if (t.mn < 0 || d < t.mn)
            t.mn = d;
        if (d > t.mx)
            t.mx = d;
        if (d <= limit_ms)
            t.ok++;
        else
            t.late++;
    }
    return t;
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
            s->fd = dial(port, 1, s->kind == NOREAD ? 4096 : 0);
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
                inflight--;
                if ((s->state = connect_finished(&s->fd)) == FAILED) {
                    failed++;
                    continue;
                }
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
        double lat[20];
        int bad = 0;
        char *p = resbuf, first[200] = "";
        for (int i = 0; i < 20; i++) {
            int st = (int)strtol(p, &p, 10);
            lat[i] = (double)strtoll(p, &p, 10);
            if (st != 200 && !bad++)
                snprintf(first, sizeof first, "; first failure: try %d: %s%s after %.0f ms", i + 1,
                         st > 0 ? "HTTP status " : fetch_err(st), st > 0 ? "not 200" : "", lat[i]);
        }
        qsort(lat, 20, sizeof lat[0], cmp_double);
        report(bad == 0 && lat[19] < 1000 && loris_open_at_probe >= 0,
               "manifest GET during the attack: p50 %.0f ms, max %.0f ms over 20 tries, "
               "%d failed (limit 1000 ms)%s; "
               "server-side still open mid-probe: %d/%d slow-header, %d/%d non-reading (%.1f MB unsent in server socket buffers)",
               lat[10], lat[19], bad, first, loris_open_at_probe, nl, noread_open_at_probe, no, txq_at_probe / 1048576.0);
    }

    /* slow-header connections: closed by the server within HT+3 s of the
       first byte; non-reading ones: within WT+3 s of the request */
    struct closes l = tally_closes(c, total, LORIS, (ht_s + 3) * 1000LL);
    struct closes w = tally_closes(c, total, NOREAD, (wt_s + 3) * 1000LL);
    int want_l = mode == 1 ? total : mode == 2 ? 0 : n, want_n = total - want_l;
    if (want_l)
    report(l.ok == want_l, "slow-header connections closed by the server: "
           "%d/%d within %d s of their first byte "
           "(%.1f-%.1f s; %d late, %d still open, %d never started)",
           l.ok, want_l, ht_s + 3, l.mn / 1000.0, l.mx / 1000.0, l.late, l.open, l.nostart);
    if (want_n)
    report(w.ok == want_n, "non-reading connections closed by the server: "
           "%d/%d within %d s of their request "
           "(%.1f-%.1f s; %d late, %d still open)",
           w.ok, want_n, wt_s + 3, w.mn / 1000.0, w.mx / 1000.0, w.late, w.open + w.nostart);

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
    struct head h;
    int r = head_parse(k->buf, k->len, 0, &h);
    if (r == 0)
        return k->len >= sizeof k->buf ? -1 : 0;
    if (r < 0 || h.body < 0)
        return -1;
    *st = h.status;
    if (k->len < h.len + (size_t)h.body)
        return 0;
    if (h.close)
        *st = -(*st); /* answered but will close: not keep-alive */
    return 1;
}

/* wait up to timeout_ms for `events` on the connections in `state`: the
   number ready, their indices in idx[]; -1 if poll failed */
static int ka_wait(const struct ka *k, int n, int state, short events, int timeout_ms,
                   struct pollfd *pf, int *idx)
{
    int np = 0;
    for (int i = 0; i < n; i++)
        if (k[i].state == state) {
            pf[np].fd = k[i].fd;
            pf[np].events = events;
            pf[np].revents = 0;
            idx[np++] = i;
        }
    if (poll(pf, (nfds_t)np, timeout_ms) < 0 && errno != EINTR)
        return -1;
    int nready = 0;
    for (int j = 0; j < np; j++)
        if (pf[j].revents)
            idx[nready++] = idx[j];
    return nready;
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
            k[next].fd = dial(port, 1, 0);
            if (k[next].fd < 0) {
                k[next].state = FAILED;
                failed++;
            } else {
                k[next].state = CONNECTING;
                inflight++;
            }
            next++;
        }
        int nready = ka_wait(k, next, CONNECTING, POLLOUT, 100, pf, idx);
        if (nready < 0)
            break;
        for (int j = 0; j < nready; j++) {
            struct ka *c = &k[idx[j]];
            inflight--;
            if ((c->state = connect_finished(&c->fd)) == FAILED)
                failed++;
            else
                connected++;
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
            int nready = ka_wait(k, n, ACTIVE, POLLIN, 200, pf, idx);
            if (nready < 0)
                break;
            for (int j = 0; j < nready; j++) {
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
    raise_nofile();

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
