/*
 * wanlink: a long fat pipe between two network namespaces, for the bench's WAN conditions.
 *
 *   wanlink CLIENT_NS SERVER_NS DELAY_MS RATE_MBIT QUEUE_MS MTU
 *
 * Opens TUN device wan-c0 in CLIENT_NS (10.79.0.2, peer 10.79.0.1) and wan-s0 in SERVER_NS
 * (10.79.0.1, peer 10.79.0.2) and forwards every IP packet between them. Each direction is one
 * FIFO: a packet is serialised at RATE_MBIT after the packets before it, then held DELAY_MS
 * (one way), and dropped on arrival when more than QUEUE_MS of bytes already wait for the wire
 * (a router's buffer), so TCP sees loss and backs off as on a real path. Every TCP connection
 * (ssh, and the direct plane on any port) takes the same path; the kernel here has no netem.
 *
 * C rather than Python (../shared/lab/wan-emu.py): a Python loop tops out near 50 MB/s with
 * 9000-byte packets, below the 1 Gbit/s the bench needs, and its CPU would be counted against
 * the tools. Prints "ready" once both devices are up; on SIGTERM/SIGINT prints its counters and
 * exits (the devices vanish with it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAXPKT 65536
#define RING 8192

struct pkt {
  double due;
  int len;
  unsigned char *data;
};

struct dir {
  int src, dst;
  struct pkt ring[RING];
  unsigned head, tail; /* ring[head..tail) wait, oldest first */
  double wire_free;    /* when the wire has sent every packet accepted so far */
  unsigned long sent, dropped, bytes;
};

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* Opens TUN device `name` inside network namespace `ns` (this process enters ns to create it). */
static int tun_in(const char *ns, const char *name) {
  char p[256];
  snprintf(p, sizeof p, "/var/run/netns/%s", ns);
  int nsfd = open(p, O_RDONLY);
  if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) die(p);
  close(nsfd);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF");
  return fd;
}

static void run(const char *cmd) {
  if (system(cmd) != 0) {
    fprintf(stderr, "wanlink: failed: %s\n", cmd);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: wanlink CLIENT_NS SERVER_NS DELAY_MS RATE_MBIT QUEUE_MS MTU\n");
    return 2;
  }
  const char *cns = argv[1], *sns = argv[2];
  double delay = atof(argv[3]) / 1000.0;
  double rate = atof(argv[4]) * 1e6 / 8.0; /* bytes per second */
  double qmax = rate * atof(argv[5]) / 1000.0;
  int mtu = atoi(argv[6]);

  int tc = tun_in(cns, "wan-c0");
  int ts = tun_in(sns, "wan-s0");
  char cmd[512];
  const char *conf[2][4] = {{cns, "wan-c0", "10.79.0.2", "10.79.0.1"}, {sns, "wan-s0", "10.79.0.1", "10.79.0.2"}};
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd, "ip -n %s addr add %s peer %s dev %s", conf[i][0], conf[i][2], conf[i][3], conf[i][1]);
    run(cmd);
    snprintf(cmd, sizeof cmd, "ip -n %s link set %s mtu %d txqueuelen 10000 up", conf[i][0], conf[i][1], mtu);
    run(cmd);
    snprintf(cmd, sizeof cmd, "ip -n %s link set lo up", conf[i][0]);
    run(cmd);
  }

  static struct dir dirs[2];
  dirs[0].src = tc, dirs[0].dst = ts; /* client -> server */
  dirs[1].src = ts, dirs[1].dst = tc; /* server -> client */
  for (int d = 0; d < 2; d++)
    for (int i = 0; i < RING; i++)
      if (!(dirs[d].ring[i].data = malloc(MAXPKT))) die("malloc");

  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  printf("ready\n");
  fflush(stdout);

  struct pollfd fds[2] = {{.fd = tc, .events = POLLIN}, {.fd = ts, .events = POLLIN}};
  while (!stop) {
    double t = now(), next = -1;
    for (int d = 0; d < 2; d++) {
      struct dir *x = &dirs[d];
      while (x->head != x->tail && x->ring[x->head % RING].due <= t) {
        struct pkt *p = &x->ring[x->head % RING];
        if (write(x->dst, p->data, p->len) < 0 && errno != EAGAIN) die("write");
        x->head++;
      }
      if (x->head != x->tail) {
        double due = x->ring[x->head % RING].due;
        if (next < 0 || due < next) next = due;
      }
    }
    struct timespec wait, *w = NULL;
    if (next >= 0) {
      double left = next - now();
      if (left < 0) left = 0;
      wait.tv_sec = (time_t)left;
      wait.tv_nsec = (long)((left - wait.tv_sec) * 1e9);
      w = &wait;
    }
    if (ppoll(fds, 2, w, NULL) < 0 && errno != EINTR) die("ppoll");
    for (int d = 0; d < 2; d++) {
      if (!(fds[d].revents & POLLIN)) continue;
      struct dir *x = &dirs[d];
      for (int k = 0; k < 256; k++) {
        if (x->tail - x->head >= RING) { /* no slot: read it to drop it */
          unsigned char scratch[MAXPKT];
          if (read(x->src, scratch, sizeof scratch) < 0) break;
          x->dropped++;
          continue;
        }
        struct pkt *p = &x->ring[x->tail % RING];
        ssize_t n = read(x->src, p->data, MAXPKT);
        if (n < 0) break;
        double at = now();
        double start = x->wire_free > at ? x->wire_free : at;
        if ((start - at) * rate > qmax) {
          x->dropped++;
          continue;
        }
        x->wire_free = start + n / rate;
        p->due = x->wire_free + delay;
        p->len = (int)n;
        x->tail++;
        x->sent++;
        x->bytes += n;
      }
    }
  }
  fprintf(stderr, "wanlink: up %lu packets %lu bytes %lu dropped; down %lu packets %lu bytes %lu dropped\n",
          dirs[0].sent, dirs[0].bytes, dirs[0].dropped, dirs[1].sent, dirs[1].bytes, dirs[1].dropped);
  return 0;
}
