/*
 * loadgen: a small epoll/poll-based HTTP/1.1 load generator for the quinistry
 * benchmark (bench/bench.sh).  It does the few things wrk cannot:
 *
 *   loadgen freeport
 *       print a currently free TCP port on 127.0.0.1
 *   loadgen run -p PORT [-m METHOD] [-u PATH] [-H "Name: value"]...
 *               [-c CONNS] [-d SECONDS] [-x]
 *       keep CONNS connections busy for SECONDS, one request in flight per
 *       connection; -x opens a new connection per request (Connection: close)
 *       prints: requests=N seconds=S rps=R body_bytes=B errors=E non2xx=X
 *   loadgen idle -p PORT -n N [-t MAXSECONDS]
 *       open N keep-alive connections, do one GET /v2/ on each, print
 *       "ready N" and hold them idle until stdin reaches EOF, SIGTERM or
 *       MAXSECONDS; then print "still_open M" (connections the server kept)
 *   loadgen cold -p PORT -n RUNS [-C CPU] -- PROGRAM ARGS...
 *       RUNS times: fork/exec PROGRAM (pinned to CPU), poll connect() on
 *       PORT, send GET /v2/, stop the clock at a complete 200 response head,
 *       SIGTERM the server and reap it.  Prints each time and the median (ms).
 *   loadgen returning -p PORT [-n N] [-s SILENCE] [-c BUSY] [-r ROUNDS]
 *       BUSY connections keep the server busy (as run, GET /v2/) while N
 *       other keep-alive connections each make a request, stay silent
 *       SILENCE seconds (1.6) and time GET /v2/ to its complete response,
 *       ROUNDS (3) times; defaults N 20, BUSY 64.  Prints one line:
 *       returning samples=S p50_ms=A p90_ms=B max_ms=C errors=E ...
 *
 * Only 127.0.0.1 is ever a target.
 */
#include "../tests/tool.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <sys/wait.h>

#define RBUF 65536
#define MAXHDRS 16

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ---- response parsing -------------------------------------------------- */

enum { ST_CONNECTING, ST_WRITING, ST_HEAD, ST_BODY };

struct conn {
    int fd;
    int state;
    size_t sent;           /* bytes of the request written */
    size_t hlen;           /* bytes buffered of the response head */
    long long body_left;   /* body bytes still expected */
    int status;
    int close_after;       /* server said Connection: close */
    unsigned ev;           /* epoll events watched (run) */
    char head[8192];
};

/* A complete head in c->head[0..c->hlen): 1 (status, body_left and
 * close_after set, *hl its length), 0 incomplete, -1 malformed or without
 * framing we understand (chunked is not used here). */
static int take_head(struct conn *c, int is_head, size_t *hl)
{
    struct head h;
    int r = head_parse(c->head, c->hlen, is_head, &h);
    if (r <= 0)
        return r;
    if (h.body < 0)
        return -1;
    *hl = h.len;
    c->status = h.status;
    c->body_left = h.body;
    c->close_after = h.close;
    return 1;
}

/* ---- freeport ------------------------------------------------------------ */

static int cmd_freeport(void)
{
    struct sockaddr_in sa = loopback(0);
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        die("freeport: %s", strerror(errno));
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

/* ---- run ----------------------------------------------------------------- */

/* cmd_run is written to cost the client as little as possible per request,
 * so that on a 2-core machine the load generator's core runs out as late
 * as it can (measured, 3 s HEAD runs: 2.69-2.79 s of CPU, user and
 * system, against 2.96-2.97 s with poll() over every connection each
 * pass): epoll (a connection is registered once, not scanned every
 * pass), the next request sent as soon as a response is complete (no wait
 * for POLLOUT on a socket that has room), and on a new connection the
 * request sent right after connect() (on loopback the handshake is usually
 * done by then; if not, we wait for EPOLLOUT). */

struct run {
    int epfd, port, newconn, is_head;
    const char *req;
    size_t reqlen;
    long long requests, body, errors, non2xx;
};

/* Watch c for ev (EPOLLIN or EPOLLOUT); add when new. */
static void watch(struct run *R, struct conn *c, int idx, unsigned ev, int add)
{
    struct epoll_event e;
    if (!add && c->ev == ev)
        return;
    c->ev = ev;
    e.events = ev;
    e.data.u32 = (unsigned)idx;
    if (epoll_ctl(R->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &e) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Send (the rest of) the request; on a full send wait for the response
 * (add: c is not registered yet). Returns -1 when the connection failed. */
static int run_send(struct run *R, struct conn *c, int idx, int add)
{
    ssize_t w = send(c->fd, R->req + c->sent, R->reqlen - c->sent, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != ENOTCONN)
        return -1;
    if (w > 0)
        c->sent += (size_t)w;
    if (c->sent == R->reqlen) {
        c->state = ST_HEAD;
        c->hlen = 0;
        watch(R, c, idx, EPOLLIN, add);
    } else {
        watch(R, c, idx, EPOLLOUT, add);
    }
    return 0;
}

/* Open connection idx and send its first request if the handshake is
 * already done; otherwise it waits for EPOLLOUT. */
static void run_open(struct run *R, struct conn *c, int idx)
{
    c->fd = dial(R->port, 1, 0);
    if (c->fd < 0) {
        R->errors++;
        return;
    }
    c->state = ST_WRITING;
    c->sent = 0;
    if (run_send(R, c, idx, 1) < 0) {
        R->errors++;
        close(c->fd);
        c->fd = -1;
    }
}

/* Bytes arrived on c: returns 1 when it should be closed and reopened. */
static int run_recv(struct run *R, struct conn *c, int idx)
{
    static char rbuf[RBUF];
    for (;;) {
        ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
        size_t off = 0, got;
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r <= 0) {
            R->errors++; /* closed or failed before a full response */
            return 1;
        }
        got = (size_t)r;
        if (c->state == ST_HEAD) {
            size_t room = sizeof c->head - c->hlen, take = got < room ? got : room, hl;
            memcpy(c->head + c->hlen, rbuf, take);
            c->hlen += take;
            switch (take_head(c, R->is_head, &hl)) {
            case 0:
                if (c->hlen == sizeof c->head) {
                    R->errors++;
                    return 1;
                }
                continue;
            case -1:
                R->errors++;
                return 1;
            }
            off = take - (c->hlen - hl); /* bytes of rbuf the head used */
            c->state = ST_BODY;
        }
        if ((long long)(got - off) > c->body_left) {
            R->errors++; /* extra bytes: we never pipeline */
            return 1;
        }
        c->body_left -= (long long)(got - off);
        R->body += (long long)(got - off);
        if (c->body_left > 0)
            continue;
        R->requests++;
        if (c->status < 200 || c->status >= 400)
            R->non2xx++;
        if (R->newconn || c->close_after)
            return 1;
        c->state = ST_WRITING;
        c->sent = 0;
        if (run_send(R, c, idx, 0) < 0) {
            R->errors++;
            return 1;
        }
        return 0;
    }
}

static int cmd_run(int port, const char *method, const char *path, char **hdrs, int nh,
                   int nconns, double secs, int newconn)
{
    char req[4096];
    int i, n;
    struct conn *cs;
    struct epoll_event *evs;
    struct run R;
    double t0, t1, deadline;

    n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", method, path, port);
    for (i = 0; i < nh && n < (int)sizeof req; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", hdrs[i]);
    if (newconn && n < (int)sizeof req)
        n += snprintf(req + n, sizeof req - (size_t)n, "Connection: close\r\n");
    if (n < (int)sizeof req)
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    if (n >= (int)sizeof req)
        die("request too long");
    memset(&R, 0, sizeof R);
    R.req = req;
    R.reqlen = (size_t)n;
    R.port = port;
    R.newconn = newconn;
    R.is_head = strcmp(method, "HEAD") == 0;
    R.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (R.epfd < 0)
        die("epoll_create1: %s", strerror(errno));

    cs = calloc((size_t)nconns, sizeof *cs);
    evs = calloc((size_t)nconns, sizeof *evs);
    if (!cs || !evs)
        die("out of memory");
    t0 = now_s();
    deadline = t0 + secs;
    for (i = 0; i < nconns; i++)
        run_open(&R, &cs[i], i);
    while (!g_stop) {
        double t = now_s();
        int rc, k;
        if (t >= deadline)
            break;
        for (i = 0; i < nconns; i++) /* an earlier connect failed at once */
            if (cs[i].fd < 0)
                run_open(&R, &cs[i], i);
        rc = epoll_wait(R.epfd, evs, nconns, (int)((deadline - t) * 1000) + 1);
        if (rc < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (k = 0; k < rc; k++) {
            int idx = (int)evs[k].data.u32, reopen = 0;
            struct conn *c = &cs[idx];
            if (c->fd < 0)
                continue;
            if (c->state == ST_WRITING) {
                int err = 0;
                socklen_t el = sizeof err;
                if (c->sent == 0 && (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err))
                    reopen = 1; /* the connect failed */
                else if (run_send(&R, c, idx, 0) < 0)
                    reopen = 1;
                if (reopen)
                    R.errors++;
            } else {
                reopen = run_recv(&R, c, idx);
            }
            if (reopen) {
                close(c->fd);
                run_open(&R, c, idx);
            }
        }
    }
    t1 = now_s();
    for (i = 0; i < nconns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    close(R.epfd);
    printf("requests=%lld seconds=%.3f rps=%.1f body_bytes=%lld errors=%lld non2xx=%lld\n",
           R.requests, t1 - t0, (double)R.requests / (t1 - t0), R.body, R.errors, R.non2xx);
    free(cs);
    free(evs);
    return 0;
}

/* ---- idle ---------------------------------------------------------------- */

static int cmd_idle(int port, int n, double maxsecs)
{
    static const char fmt[] = "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n";
    char req[256], buf[4096];
    size_t reqlen;
    struct conn *cs = calloc((size_t)n, sizeof *cs);
    struct pollfd *pf = calloc((size_t)n + 1, sizeof *pf);
    int i, opened = 0, done = 0, inflight = 0, failed = 0, still = 0;
    const int window = 256; /* connections being set up at once */
    double t_end = now_s() + maxsecs, setup_end = now_s() + 60;

    if (!cs || !pf)
        die("out of memory");
    reqlen = (size_t)snprintf(req, sizeof req, fmt, port);
    for (i = 0; i < n; i++)
        cs[i].fd = -1;
    /* Phase 1: open all connections, a window at a time, one request each. */
    while (done + failed < n && !g_stop && now_s() < setup_end) {
        int np = 0, rc;
        while (opened < n && inflight < window) {
            cs[opened].fd = dial(port, 1, 0);
            cs[opened].state = ST_CONNECTING;
            if (cs[opened].fd < 0)
                die("idle: socket/connect: %s (raise ulimit -n?)", strerror(errno));
            opened++;
            inflight++;
        }
        for (i = 0; i < opened; i++) {
            if (cs[i].fd < 0 || cs[i].state > ST_HEAD)
                continue;
            pf[np].fd = cs[i].fd;
            pf[np].events = cs[i].state == ST_HEAD ? POLLIN : POLLOUT;
            pf[np].revents = 0;
            cs[i].sent = (size_t)np; /* index into pf */
            np++;
        }
        rc = poll(pf, (nfds_t)np, 1000);
        if (rc <= 0)
            continue;
        for (i = 0; i < opened; i++) {
            struct conn *c = &cs[i];
            short re;
            if (c->fd < 0 || c->state > ST_HEAD)
                continue;
            re = pf[c->sent].revents;
            if (!re)
                continue;
            if (c->state == ST_CONNECTING) {
                if (send(c->fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
                    close(c->fd);
                    c->fd = -1;
                    failed++;
                    inflight--;
                    continue;
                }
                c->state = ST_HEAD;
                c->hlen = 0;
            } else {
                ssize_t r = recv(c->fd, c->head + c->hlen, sizeof c->head - c->hlen, 0);
                size_t hl;
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN)
                        continue;
                    close(c->fd);
                    c->fd = -1;
                    failed++;
                    inflight--;
                    continue;
                }
                c->hlen += (size_t)r;
                if (take_head(c, 0, &hl) == 1 && c->hlen - hl >= (size_t)c->body_left) {
                    c->state = ST_BODY; /* complete; now idle */
                    done++;
                    inflight--;
                }
            }
        }
    }
    printf("ready %d\n", done);
    if (failed)
        printf("failed %d\n", failed);
    fflush(stdout);
    /* Phase 2: hold; watch stdin for EOF. */
    while (!g_stop && now_s() < t_end) {
        struct pollfd sp = { .fd = 0, .events = POLLIN, .revents = 0 };
        int rc = poll(&sp, 1, 200);
        if (rc > 0) {
            ssize_t r = read(0, buf, sizeof buf);
            if (r <= 0)
                break;
        }
    }
    /* Count connections the server still holds open. Then close them
     * with a reset (SO_LINGER 0): a normal close would leave N sockets in
     * TIME_WAIT for 60 s, whose expiry lands in later measurements. */
    for (i = 0; i < n; i++) {
        struct linger lg = { 1, 0 };
        if (cs[i].fd < 0)
            continue;
        if (cs[i].state == ST_BODY) {
            ssize_t r = recv(cs[i].fd, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK);
            if (r < 0 && errno == EAGAIN)
                still++;
        }
        setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(cs[i].fd);
    }
    printf("still_open %d\n", still);
    free(cs);
    free(pf);
    return 0;
}

/* ---- cold ---------------------------------------------------------------- */

static void reap(pid_t pid)
{
    double t_end = now_s() + 3;
    int st;
    kill(pid, SIGTERM);
    while (now_s() < t_end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            goto group;
        usleep(1000);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, &st, 0);
group:
    /* nginx workers etc. share the process group; make sure they are gone */
    kill(-pid, SIGKILL);
}

/* One start; returns ms to a complete 200 head, or -1. */
static double cold_once(int port, int cpu, char **argv, double limit_s)
{
    static const char fmt[] = "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n";
    struct sockaddr_in sa = loopback(port);
    char req[256], buf[4096];
    size_t reqlen = (size_t)snprintf(req, sizeof req, fmt, port);
    double t0, t = -1, deadline;
    pid_t pid;

    t0 = now_s();
    deadline = t0 + limit_s;
    pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        setpgid(0, 0);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        if (dn >= 0) {
            dup2(dn, 0);
            dup2(dn, 1);
            dup2(dn, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    while (now_s() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), st;
        size_t got = 0;
        struct head h;
        if (fd < 0)
            die("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            close(fd);
            if (waitpid(pid, &st, WNOHANG) == pid) {
                fprintf(stderr, "loadgen: cold: %s exited early (status %d)\n", argv[0], st);
                return -1;
            }
            usleep(50);
            continue;
        }
        {
            struct timeval tv = { 2, 0 };
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
        if (send(fd, req, reqlen, MSG_NOSIGNAL) == (ssize_t)reqlen) {
            for (;;) {
                ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
                if (r <= 0)
                    break;
                got += (size_t)r;
                if (head_parse(buf, got, 0, &h))
                    break;
                if (got == sizeof buf - 1)
                    break;
            }
        }
        close(fd);
        if (got && head_parse(buf, got, 0, &h)) {
            if (h.status == 200)
                t = (now_s() - t0) * 1000;
            else
                fprintf(stderr, "loadgen: cold: non-200 response\n");
            break;
        }
        /* accepted but no answer (e.g. closed during start-up): retry */
        usleep(50);
    }
    reap(pid);
    return t;
}

static int cmd_cold(int port, int runs, int cpu, char **argv)
{
    double *ts = calloc((size_t)runs, sizeof *ts);
    int i, ok = 0;
    if (!ts)
        die("out of memory");
    for (i = 0; i < runs && !g_stop; i++) {
        double t = cold_once(port, cpu, argv, 10.0);
        if (t < 0) {
            fprintf(stderr, "loadgen: cold: run %d failed\n", i + 1);
            continue;
        }
        printf("run %d %.3f ms\n", i + 1, t);
        ts[ok++] = t;
        usleep(20000); /* let the port and the exited process settle */
    }
    if (!ok) {
        printf("median_ms nan\n");
        free(ts);
        return 1;
    }
    qsort(ts, (size_t)ok, sizeof *ts, cmp_double);
    printf("median_ms %.3f min_ms %.3f max_ms %.3f runs %d\n",
           ok % 2 ? ts[ok / 2] : (ts[ok / 2 - 1] + ts[ok / 2]) / 2, ts[0], ts[ok - 1], ok);
    free(ts);
    return 0;
}

/* ---- returning ----------------------------------------------------------- */

/* A pull pauses between its requests (docker and containerd do), and a
 * server may treat a connection that has been quiet as less urgent. This
 * measures what such a client waits for when it comes back to a busy
 * server. The timed requests go out one at a time: a client whose turn
 * comes while another waits goes right after it, so each figure is one
 * request's own wait, and a silence can only come out longer. */

static const char RET_REQ[] = "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

struct ret_client {
    struct rbuf rb;
    double due;   /* when its next request goes out (now_s clock) */
    int greeted;  /* its untimed first request is done */
};

/* The load: a child running cmd_run until it is sent SIGTERM; its result
 * line comes back through *out. */
static pid_t busy_start(int port, int busy, double secs, int *out)
{
    int p[2];
    pid_t pid;
    if (pipe(p) < 0)
        die("pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        /* lower priority than the timed clients on the same core: when an
         * answer arrives, its client runs at once, so the figure is the
         * server's delay, not this process's */
        if (dup2(p[1], 1) < 0 || nice(10) < 0)
            _exit(2);
        _exit(cmd_run(port, "GET", "/v2/", NULL, 0, busy, secs, 0));
    }
    close(p[1]);
    *out = p[0];
    return pid;
}

/* Stop the load; its request rate and its errors (failures and non-2xx). */
static void busy_stop(pid_t pid, int fd, double *rps, long long *bad)
{
    char line[512];
    size_t len = 0;
    ssize_t r;
    long long req = 0, err = 0, non2xx = 0;
    double secs = 0;
    const char *p;
    kill(pid, SIGTERM);
    while (len < sizeof line - 1 &&
           (r = read(fd, line + len, sizeof line - 1 - len)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        len += (size_t)r;
    }
    line[len] = 0;
    close(fd);
    waitpid(pid, NULL, 0);
    if ((p = strstr(line, "requests=")))
        sscanf(p, "requests=%lld seconds=%lf", &req, &secs);
    if ((p = strstr(line, "errors=")))
        sscanf(p, "errors=%lld non2xx=%lld", &err, &non2xx);
    *rps = secs > 0 ? (double)req / secs : 0;
    *bad = err + non2xx;
}

/* One GET /v2/ on c; its time to the complete response in *ms. Returns 0
 * for a 200, -1 otherwise (the connection is then useless). */
static int ret_get(struct rbuf *c, double *ms)
{
    struct head h;
    long long t0 = now_us();
    if (send_all(c->fd, RET_REQ, sizeof RET_REQ - 1, now_ms() + 5000) ||
        read_response(c, 0, now_ms() + 5000, &h) != RESP_OK)
        return -1;
    *ms = (double)(now_us() - t0) / 1000;
    rb_drop(c, h.len + (size_t)h.body);
    return h.status == 200 && !h.close ? 0 : -1;
}

/* The client whose turn is next, or -1 when all are done. */
static int ret_next(const struct ret_client *cl, const int *left, int n)
{
    int i, best = -1;
    for (i = 0; i < n; i++)
        if (left[i] && (best < 0 || cl[i].due < cl[best].due))
            best = i;
    return best;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p)
{
    int k = (int)(p * n + 0.999999);
    return n ? v[k < 1 ? 0 : k - 1] : 0;
}

static int cmd_returning(int port, int n, double silence, int busy, int rounds)
{
    struct ret_client *cl = calloc((size_t)n, sizeof *cl);
    int *left = calloc((size_t)n, sizeof *left);
    double *ms = calloc((size_t)n * (size_t)rounds, sizeof *ms);
    double t0, rps = 0;
    long long busy_bad = 0;
    int i, got = 0, errors = 0, bfd = -1;
    pid_t bpid = -1;

    if (!cl || !left || !ms)
        die("out of memory");
    if (busy > 0) /* runs until stopped; the time is only a bound */
        bpid = busy_start(port, busy, silence * (rounds + 2) + 60, &bfd);
    usleep(500000); /* the load is under way before anyone goes quiet */
    t0 = now_s();
    for (i = 0; i < n; i++) {
        cl[i].rb.fd = -1;
        cl[i].due = t0 + silence * i / n; /* spread the returns evenly */
        left[i] = rounds;
    }
    while (!g_stop && (i = ret_next(cl, left, n)) >= 0) {
        struct ret_client *c = &cl[i];
        double wait = c->due - now_s(), t;
        if (wait > 0) {
            usleep((useconds_t)(wait * 1e6));
            continue;
        }
        if (c->rb.fd < 0) {
            int fd = dial(port, 0, 0);
            if (fd < 0)
                die("returning: connect: %s", strerror(errno));
            rb_open(&c->rb, fd);
            c->greeted = 0;
        }
        if (ret_get(&c->rb, &t) < 0) {
            errors++;
            left[i]--;
            rb_close(&c->rb); /* a new connection takes its place */
        } else if (c->greeted) {
            ms[got++] = t;
            left[i]--;
        }
        c->greeted = 1;
        c->due = now_s() + silence;
    }
    if (bpid > 0)
        busy_stop(bpid, bfd, &rps, &busy_bad);
    for (i = 0; i < n; i++)
        if (cl[i].rb.fd >= 0)
            rb_close(&cl[i].rb);
    qsort(ms, (size_t)got, sizeof *ms, cmp_double);
    printf("returning samples=%d p50_ms=%.3f p90_ms=%.3f max_ms=%.3f errors=%d"
           " clients=%d silence_s=%.2f busy=%d busy_rps=%.1f busy_errors=%lld\n",
           got, pct(ms, got, 0.5), pct(ms, got, 0.9),
           got ? ms[got - 1] : 0.0, errors, n, silence, busy, rps, busy_bad);
    free(cl);
    free(left);
    free(ms);
    return got && !errors ? 0 : 1;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage: loadgen freeport\n"
          "       loadgen run -p PORT [-m METHOD] [-u PATH] [-H HDR]... [-c CONNS] [-d SECS] [-x]\n"
          "       loadgen idle -p PORT -n N [-t MAXSECS]\n"
          "       loadgen cold -p PORT -n RUNS [-C CPU] -- PROGRAM ARGS...\n"
          "       loadgen returning -p PORT [-n N] [-s SILENCE] [-c BUSY] [-r ROUNDS]\n",
          stderr);
    exit(2);
}

/* An option with a value: i int, d double, s string. */
struct opt {
    const char *name;
    char type;
    void *to;
};

/* Set the option `name` from `val`; 0 when there is no such option. */
static int set_opt(const struct opt *o, size_t n, const char *name, const char *val)
{
    size_t k;
    for (k = 0; k < n; k++) {
        if (strcmp(o[k].name, name))
            continue;
        if (o[k].type == 'i')
            *(int *)o[k].to = atoi(val);
        else if (o[k].type == 'd')
            *(double *)o[k].to = atof(val);
        else
            *(const char **)o[k].to = val;
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd, *method = "GET", *path = "/v2/";
    char *hdrs[MAXHDRS];
    int nh = 0, port = 0, conns = 64, n = 0, cpu = -1, newconn = 0, i;
    int rounds = 3;
    double secs = 5, maxsecs = 300, silence = 1.6;
    struct sigaction sa;
    const struct opt opts[] = {
        {"-p", 'i', &port}, {"-c", 'i', &conns}, {"-n", 'i', &n},
        {"-C", 'i', &cpu}, {"-r", 'i', &rounds}, {"-d", 'd', &secs},
        {"-t", 'd', &maxsecs}, {"-s", 'd', &silence}, {"-m", 's', &method},
        {"-u", 's', &path},
    };

    if (argc < 2)
        usage();
    cmd = argv[1];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (strcmp(cmd, "freeport") == 0)
        return cmd_freeport();
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-x") == 0)
            newconn = 1;
        else if (i + 1 >= argc)
            usage();
        else if (strcmp(a, "-H") == 0) {
            if (nh == MAXHDRS)
                die("too many -H");
            hdrs[nh++] = argv[++i];
        } else if (set_opt(opts, sizeof opts / sizeof opts[0], a, argv[i + 1]))
            i++;
        else
            usage();
    }
    if (port <= 0 || port > 65535)
        usage();
    if (strcmp(cmd, "run") == 0) {
        if (conns < 1 || secs <= 0)
            usage();
        return cmd_run(port, method, path, hdrs, nh, conns, secs, newconn);
    }
    if (strcmp(cmd, "idle") == 0) {
        if (n < 1)
            usage();
        return cmd_idle(port, n, maxsecs);
    }
    if (strcmp(cmd, "cold") == 0) {
        if (n < 1 || i >= argc)
            usage();
        return cmd_cold(port, n, cpu, argv + i);
    }
    if (strcmp(cmd, "returning") == 0) {
        if (n < 0 || conns < 0 || silence < 0 || rounds < 1)
            usage();
        return cmd_returning(port, n ? n : 20, silence, conns, rounds);
    }
    usage();
    return 2;
}
