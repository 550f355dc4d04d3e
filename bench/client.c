/* A short-lived client for the attribution bench: connect (TCP) or send
 * (UDP) to HOST PORT, print "pid proto sport" on stdout, hold the socket for
 * HOLD_MS milliseconds, close it and exit. With COUNT > 1 it opens COUNT UDP
 * flows (one socket, one destination port each) as fast as it can. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: client tcp|udp HOST PORT HOLD_MS [COUNT]\n");
    return 2;
  }
  int tcp = strcmp(argv[1], "tcp") == 0;
  const char *host = argv[2];
  int port = atoi(argv[3]);
  int hold = atoi(argv[4]);
  long count = argc > 5 ? atol(argv[5]) : 1;
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
  if (fam == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host, &a->sin6_addr);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, host, &a->sin_addr);
    sl = sizeof *a;
  }
  int s = socket(fam, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (s < 0) { perror("socket"); return 1; }
  if (count > 1) {
    /* Flood: one UDP socket, COUNT destination ports, each a new flow;
     * beyond 64000 ports the last byte of the IPv6 destination changes. */
    for (long i = 0; i < count; i++) {
      int p = 1024 + (int)(i % 64000);
      if (fam == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_port = htons(p);
        if (i % 64000 == 0 && i) a->sin6_addr.s6_addr[15]++;
      } else {
        ((struct sockaddr_in *)&ss)->sin_port = htons(p);
        if (i % 64000 == 0 && i) {
          struct sockaddr_in *a = (struct sockaddr_in *)&ss;
          a->sin_addr.s_addr = htonl(ntohl(a->sin_addr.s_addr) + 1);
        }
      }
      sendto(s, "x", 1, 0, (struct sockaddr *)&ss, sl);
    }
  } else if (tcp) {
    if (connect(s, (struct sockaddr *)&ss, sl) < 0) { perror("connect"); return 1; }
    if (write(s, "hello\n", 6) < 0) { perror("write"); }
  } else {
    if (sendto(s, "hello\n", 6, 0, (struct sockaddr *)&ss, sl) < 0) { perror("sendto"); return 1; }
  }
  struct sockaddr_storage me;
  socklen_t ml = sizeof me;
  getsockname(s, (struct sockaddr *)&me, &ml);
  int sport = fam == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&me)->sin6_port) : ntohs(((struct sockaddr_in *)&me)->sin_port);
  printf("%d %s %d\n", (int)getpid(), tcp ? "tcp" : "udp", sport);
  fflush(stdout);
  if (hold > 0) {
    struct timespec ts = { hold / 1000, (long)(hold % 1000) * 1000000L };
    nanosleep(&ts, NULL);
  }
  close(s);
  return 0;
}
