/* A connect-heavy workload for the audit bench: COUNT times, open a socket,
 * connect (TCP, blocking, to HOST PORT) or send one datagram (UDP), close.
 * `connect-loop listen PORT` is its TCP server: accept and close, as fast as
 * it can, so that the accept queue never holds the clients back.
 * Prints "COUNT SECONDS CPU" on stdout: how many succeeded, the wall-clock
 * seconds they took, and the CPU seconds (user + system) this process used:
 * audit's cost falls mostly on the process making the calls, as system time
 * at syscall exit, and CPU time varies less with the machine's load. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int serve(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4096) < 0) { perror("listen"); return 1; }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c >= 0) close(c);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "listen") == 0) return serve(atoi(argv[2]));
  if (argc < 5) {
    fprintf(stderr, "usage: connect-loop tcp|udp HOST PORT COUNT\n");
    return 2;
  }
  int tcp = strcmp(argv[1], "tcp") == 0;
  long count = atol(argv[4]);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[3]));
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long ok = 0;
  for (long i = 0; i < count; i++) {
    int s = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (s < 0) { perror("socket"); return 1; }
    if (tcp) {
      /* Close with a reset: no TIME_WAIT, so the ephemeral ports last. */
      struct linger l = { 1, 0 };
      setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) ok++;
    } else if (sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1) ok++;
    close(s);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("%ld %.6f %.6f\n", ok, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, cpu);
  return 0;
}
