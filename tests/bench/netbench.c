/* netbench: the in-container half of tests/bench/network.py and name_moves.py.
 *
 *   netbench serve PORT                  TCP sink: accept, read to EOF, close (one at a time)
 *   netbench connect IP[,IP..] PORT N    N connect()+close() per target, round robin over the
 *                                        targets; prints one "us: N N ..." line per target
 *   netbench send IP PORT SECONDS        stream for SECONDS, then half-close and wait for the
 *                                        server's close; prints "bytes B seconds S"
 *   netbench lookup NAME COUNT [SERVER]  COUNT DNS A queries over UDP (SERVER: default the first
 *                                        nameserver of /etc/resolv.conf); prints "us: N ..." and
 *                                        "addrs: A,B" (the last answer) and "failed: F"
 *   netbench watch NAME MS SECONDS       one query every MS ms for SECONDS; prints one line per
 *                                        answer: "<unix time, us resolution> A,B" ("-" for none,
 *                                        "ERR <what>" on a failure)
 *
 * Why a tool of its own: every figure must be timed inside the container (a `docker exec` costs
 * tens of milliseconds, more than what is measured), and the images are made locally from
 * busybox, whose applets time nothing finer than a second. Built statically with gcc by
 * network.py into local/netbench:1 (FROM local/busybox:1), as deploy/images/build.sh builds
 * udpecho. The DNS query is written by hand (a dozen lines) so that exactly one A query goes to
 * exactly the server named, which getaddrinfo does not promise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_term(int sig) { (void)sig; _exit(0); }

/* A TCP socket whose connect() gives up after 3 s (a dropped SYN must fail, not hang for minutes:
 * Linux applies SO_SNDTIMEO to connect, which then fails with EINPROGRESS). */
static int tcp_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int addr_of(const char *ip, const char *port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) { fprintf(stderr, "not an IPv4 address: %s\n", ip); return -1; }
    return 0;
}

static int serve(const char *port) {
    signal(SIGTERM, on_term);  /* PID 1 ignores signals it has no handler for */
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 512) != 0) { perror("bind/listen"); return 2; }
    static char buf[1 << 18];
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        while (read(c, buf, sizeof buf) > 0) {}
        close(c);
    }
}

static int connect_many(const char *ips, const char *port, int count) {
    /* Round robin over the targets, one connect each in turn: every target sees the same
     * moments of a shared machine's load, so their percentiles compare. */
    enum { MAX_TARGETS = 8 };
    struct sockaddr_in sa[MAX_TARGETS];
    char list[256], *save = NULL;
    int n = 0, failed = 0, last_errno = 0;
    snprintf(list, sizeof list, "%s", ips);
    for (char *ip = strtok_r(list, ",", &save); ip && n < MAX_TARGETS; ip = strtok_r(NULL, ",", &save))
        if (addr_of(ip, port, &sa[n++]) != 0) return 2;
    double *us = calloc((size_t)(count * n), sizeof *us);
    for (int i = 0; i < count; i++) {
        for (int k = 0; k < n; k++) {
            int fd = tcp_socket();
            double t0 = mono();
            int rc = connect(fd, (struct sockaddr *)&sa[k], sizeof sa[k]);
            double t1 = mono();
            if (rc != 0) { failed++; last_errno = errno; }
            close(fd);
            us[i * n + k] = rc == 0 ? (t1 - t0) * 1e6 : -1;
        }
    }
    for (int k = 0; k < n; k++) {  /* one line per target, in the order given */
        printf("us:");
        for (int i = 0; i < count; i++)
            if (us[i * n + k] >= 0) printf(" %.1f", us[i * n + k]);
        printf("\n");
    }
    printf("failed: %d%s%s\n", failed, failed ? " " : "", failed ? strerror(last_errno) : "");
    free(us);
    return failed ? 1 : 0;
}

static int send_for(const char *ip, const char *port, double seconds) {
    struct sockaddr_in sa;
    if (addr_of(ip, port, &sa) != 0) return 2;
    int fd = tcp_socket();
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("connect"); return 1; }
    struct timeval none = {0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    static char buf[1 << 18];
    memset(buf, 'x', sizeof buf);
    long long total = 0;
    double t0 = mono(), end = t0 + seconds;
    while (mono() < end) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n <= 0) { perror("write"); return 1; }
        total += n;
    }
    shutdown(fd, SHUT_WR);
    while (read(fd, buf, sizeof buf) > 0) {}  /* the server closes once it has read everything */
    double t1 = mono();
    close(fd);
    printf("bytes %lld seconds %.6f\n", total, t1 - t0);
    return 0;
}

/* ------------------------------------------------------------------ DNS */

static int first_nameserver(char *out, size_t size) {
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (!f) return -1;
    char line[256];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        char ns[64];
        if (sscanf(line, " nameserver %63s", ns) == 1) { snprintf(out, size, "%s", ns); found = 0; break; }
    }
    fclose(f);
    return found;
}

static int build_query(unsigned char *q, const char *name, uint16_t id) {
    int n = 0;
    q[n++] = (unsigned char)(id >> 8); q[n++] = (unsigned char)id;
    q[n++] = 0x01; q[n++] = 0x00;             /* RD */
    q[n++] = 0; q[n++] = 1;                   /* QDCOUNT 1 */
    memset(q + n, 0, 6); n += 6;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || len > 63) return -1;
        q[n++] = (unsigned char)len;
        memcpy(q + n, p, len); n += (int)len;
        p += len + (dot ? 1 : 0);
    }
    q[n++] = 0;
    q[n++] = 0; q[n++] = 1;                   /* A */
    q[n++] = 0; q[n++] = 1;                   /* IN */
    return n;
}

static int skip_name(const unsigned char *m, int len, int i) {
    while (i < len) {
        if (m[i] == 0) return i + 1;
        if ((m[i] & 0xc0) == 0xc0) return i + 2;
        i += m[i] + 1;
    }
    return -1;
}

/* One query; 0 and the A records as "a,b" in `addrs` ("-" for none), or -1 with `addrs` saying why. */
static int query(int fd, const struct sockaddr_in *srv, const char *name, char *addrs, size_t size) {
    unsigned char q[512], r[4096];
    uint16_t id = (uint16_t)(rand() & 0xffff);
    int qn = build_query(q, name, id);
    if (qn < 0) { snprintf(addrs, size, "bad name"); return -1; }
    if (sendto(fd, q, (size_t)qn, 0, (const struct sockaddr *)srv, sizeof *srv) != qn) {
        snprintf(addrs, size, "send: %s", strerror(errno)); return -1;
    }
    double deadline = mono() + 2.0;
    for (;;) {
        int left = (int)((deadline - mono()) * 1000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0) { snprintf(addrs, size, "timeout"); return -1; }
        ssize_t n = recv(fd, r, sizeof r, 0);
        if (n < 12 || r[0] != q[0] || r[1] != q[1]) continue;  /* a late answer to an earlier query */
        int rcode = r[3] & 0x0f, an = (r[6] << 8) | r[7], i = skip_name(r, (int)n, 12);
        if (rcode != 0) { snprintf(addrs, size, "rcode %d", rcode); return -1; }
        if (i < 0) { snprintf(addrs, size, "short answer"); return -1; }
        i += 4;
        size_t used = 0;
        addrs[0] = 0;
        for (int k = 0; k < an && i >= 0 && i + 10 <= n; k++) {
            i = skip_name(r, (int)n, i);
            if (i < 0 || i + 10 > n) break;
            int type = (r[i] << 8) | r[i + 1], rdlen = (r[i + 8] << 8) | r[i + 9];
            i += 10;
            if (type == 1 && rdlen == 4 && i + 4 <= n && used + 17 < size) {
                char a[16];
                inet_ntop(AF_INET, r + i, a, sizeof a);
                used += (size_t)snprintf(addrs + used, size - used, "%s%s", used ? "," : "", a);
            }
            i += rdlen;
        }
        if (!used) snprintf(addrs, size, "-");
        return 0;
    }
}

static int dns_socket(const char *server, struct sockaddr_in *srv) {
    char ns[64];
    if (server) snprintf(ns, sizeof ns, "%s", server);
    else if (first_nameserver(ns, sizeof ns) != 0) { fprintf(stderr, "no nameserver in /etc/resolv.conf\n"); return -1; }
    if (addr_of(ns, "53", srv) != 0) return -1;
    srand((unsigned)(mono() * 1e6));
    return socket(AF_INET, SOCK_DGRAM, 0);
}

static int lookup_many(const char *name, int count, const char *server) {
    struct sockaddr_in srv;
    int fd = dns_socket(server, &srv), failed = 0;
    if (fd < 0) return 2;
    char addrs[1024] = "-", last_error[128] = "";
    printf("us:");
    for (int i = 0; i < count; i++) {
        double t0 = mono();
        int rc = query(fd, &srv, name, addrs, sizeof addrs);
        double t1 = mono();
        if (rc != 0) { failed++; snprintf(last_error, sizeof last_error, "%s", addrs); continue; }
        printf(" %.1f", (t1 - t0) * 1e6);
    }
    printf("\naddrs: %s\nfailed: %d %s\n", failed == count ? "-" : addrs, failed, last_error);
    return failed ? 1 : 0;
}

static int watch(const char *name, int interval_ms, double seconds) {
    struct sockaddr_in srv;
    int fd = dns_socket(NULL, &srv);
    if (fd < 0) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char addrs[1024];
    double end = mono() + seconds;
    struct timespec pause = {.tv_sec = interval_ms / 1000, .tv_nsec = (long)(interval_ms % 1000) * 1000000L};
    while (mono() < end) {
        int rc = query(fd, &srv, name, addrs, sizeof addrs);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        printf("%lld.%06ld %s%s\n", (long long)now.tv_sec, now.tv_nsec / 1000, rc ? "ERR " : "", addrs);
        nanosleep(&pause, NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
    if (argc == 5 && strcmp(argv[1], "connect") == 0) return connect_many(argv[2], argv[3], atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "send") == 0) return send_for(argv[2], argv[3], atof(argv[4]));
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "lookup") == 0)
        return lookup_many(argv[2], atoi(argv[3]), argc == 5 ? argv[4] : NULL);
    if (argc == 5 && strcmp(argv[1], "watch") == 0) return watch(argv[2], atoi(argv[3]), atof(argv[4]));
    fprintf(stderr, "usage: netbench serve PORT | connect IP[,IP...] PORT N | send IP PORT SECONDS | "
                    "lookup NAME N [SERVER] | watch NAME MS SECONDS\n");
    return 2;
}
