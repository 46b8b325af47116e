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
 *
 * Only 127.0.0.1 is ever a target.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct sockaddr_in target(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* Non-blocking connect; returns fd (connect may still be in progress). */
static int start_connect(int port)
{
    struct sockaddr_in sa = target(port);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
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

/* Find end of head; returns length including CRLFCRLF or 0. */
static size_t head_end(const char *b, size_t n)
{
    size_t i;
    for (i = 3; i < n; i++)
        if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Parse status and Content-Length / Connection from a complete head. */
static int parse_head(struct conn *c, size_t hl, int is_head)
{
    char *p = c->head, *end = c->head + hl, *nl;
    long long cl = -1;
    c->close_after = 0;
    if (hl < 12 || strncmp(p, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(p + 9);
    nl = memchr(p, '\n', (size_t)(end - p));
    while (nl && nl + 1 < end) {
        p = nl + 1;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
            cl = atoll(p + 15);
        else if ((size_t)(nl - p) > 11 && strncasecmp(p, "connection:", 11) == 0) {
            const char *v = p + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                c->close_after = 1;
        }
    }
    if (is_head || c->status == 304 || c->status == 204 || (c->status >= 100 && c->status < 200))
        c->body_left = 0;
    else if (cl >= 0)
        c->body_left = cl;
    else
        return -1; /* no framing we understand (chunked is not used here) */
    return 0;
}

/* ---- freeport ------------------------------------------------------------ */

static int cmd_freeport(void)
{
    struct sockaddr_in sa = target(0);
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
    c->fd = start_connect(R->port);
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
            hl = head_end(c->head, c->hlen);
            if (!hl) {
                if (c->hlen == sizeof c->head) {
                    R->errors++;
                    return 1;
                }
                continue;
            }
            if (parse_head(c, hl, R->is_head) < 0) {
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
            cs[opened].fd = start_connect(port);
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
                hl = head_end(c->head, c->hlen);
                if (hl && parse_head(c, hl, 0) == 0 && c->hlen - hl >= (size_t)c->body_left) {
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

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
    struct sockaddr_in sa = target(port);
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
                if (head_end(buf, got))
                    break;
                if (got == sizeof buf - 1)
                    break;
            }
        }
        close(fd);
        if (got && head_end(buf, got)) {
            if (got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && atoi(buf + 9) == 200)
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

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage: loadgen freeport\n"
          "       loadgen run -p PORT [-m METHOD] [-u PATH] [-H HDR]... [-c CONNS] [-d SECS] [-x]\n"
          "       loadgen idle -p PORT -n N [-t MAXSECS]\n"
          "       loadgen cold -p PORT -n RUNS [-C CPU] -- PROGRAM ARGS...\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cmd, *method = "GET", *path = "/v2/";
    char *hdrs[MAXHDRS];
    int nh = 0, port = 0, conns = 64, n = 0, cpu = -1, newconn = 0, i;
    double secs = 5, maxsecs = 300;
    struct sigaction sa;

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
        if (strcmp(a, "-x") == 0) {
            newconn = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "-p") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(a, "-m") == 0)
            method = argv[++i];
        else if (strcmp(a, "-u") == 0)
            path = argv[++i];
        else if (strcmp(a, "-H") == 0) {
            if (nh == MAXHDRS)
                die("too many -H");
            hdrs[nh++] = argv[++i];
        } else if (strcmp(a, "-c") == 0)
            conns = atoi(argv[++i]);
        else if (strcmp(a, "-d") == 0)
            secs = atof(argv[++i]);
        else if (strcmp(a, "-n") == 0)
            n = atoi(argv[++i]);
        else if (strcmp(a, "-t") == 0)
            maxsecs = atof(argv[++i]);
        else if (strcmp(a, "-C") == 0)
            cpu = atoi(argv[++i]);
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
    usage();
    return 2;
}
