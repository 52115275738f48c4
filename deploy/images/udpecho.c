/* udpecho: the UDP half of the network tests (busybox nc has no UDP mode in Debian's build).
 *
 *   udpecho serve PORT            answer every datagram with "<hostname>:<datagram>"
 *   udpecho send HOST PORT TEXT   send TEXT, print the answer; exit 1 after 3 s without one
 *
 * Built statically by deploy/images/build.sh into local/netcheck:1. The answer names the
 * server, so a test sees which container answered, as `nc -e /bin/hostname` does for TCP.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int serve(const char *port) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE}, *ai;
    if (getaddrinfo(NULL, port, &hints, &ai) != 0) { fprintf(stderr, "bad port %s\n", port); return 2; }
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) { perror("bind"); return 2; }
    char host[64] = "?", in[1024], out[1100];
    gethostname(host, sizeof host - 1);
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, in, sizeof in - 1, 0, (struct sockaddr *)&peer, &len);
        if (n < 0) continue;
        in[n] = 0;
        int m = snprintf(out, sizeof out, "%s:%s", host, in);
        sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&peer, len);
    }
}

static int send_one(const char *host, const char *port, const char *text) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) { fprintf(stderr, "cannot resolve %s: %s\n", host, gai_strerror(rc)); return 2; }
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) { perror("connect"); return 2; }
    char buf[1100];
    for (int attempt = 0; attempt < 3; attempt++) { /* UDP may lose a datagram: 3 tries, 1 s each */
        if (send(fd, text, strlen(text), 0) < 0) { perror("send"); return 1; }
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n >= 0) { buf[n] = 0; printf("%s\n", buf); return 0; }
    }
    fprintf(stderr, "no answer from %s:%s\n", host, port);
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
    if (argc == 5 && strcmp(argv[1], "send") == 0) return send_one(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: udpecho serve PORT | udpecho send HOST PORT TEXT\n");
    return 2;
}
