/* mq_oneway: the POSIX message queue peer of ps_queue_oneway_<size>
 * (bench/queue.go): process A (the parent) mq_send()s messages of SIZE bytes
 * back to back for NS nanoseconds, then a zero-length end message; process B
 * (a fork()ed child) mq_receive()s each into a buffer of its own and checks
 * the message number in its first and last 8 bytes. The figure is ns per
 * message from A's first send to B's exit.
 *
 *   cc -O2 -Wall -Wextra -pthread -o mq_oneway mq_oneway.c
 *   ./mq_oneway -s SIZE [-m MAXMSG] [-d NS] -n NAME
 *
 * Output, one line:  NAME<TAB>ns<TAB>correct=yes|no<TAB>notes
 * If the system's limits refuse a queue of MAXMSG messages of SIZE bytes
 * (/proc/sys/fs/mqueue/msgsize_max, msg_max), the line says so with NaN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void send_all(mqd_t q, const char *p, long n) {
    while (mq_send(q, p, n, 0) < 0) {
        if (errno != EINTR) {
            perror("mq_send");
            _exit(1);
        }
    }
}

static ssize_t receive(mqd_t q, char *p, long n) {
    for (;;) {
        ssize_t r = mq_receive(q, p, n, NULL);
        if (r >= 0) return r;
        if (errno != EINTR) {
            perror("mq_receive");
            _exit(1);
        }
    }
}

/* run_pingpong: ping on q, pong on a second queue; a zero-length ping ends. */
static int run_pingpong(const char *name, mqd_t ping, struct mq_attr *attr, long size, uint64_t dur) {
    char qname[64];
    snprintf(qname, sizeof qname, "/psbench-mq-%d-pong", (int)getpid());
    mqd_t pong = mq_open(qname, O_CREAT | O_EXCL | O_RDWR, 0600, attr);
    if (pong == (mqd_t)-1) {
        printf("%s\tNaN\tcorrect=no\tnot run: mq_open of the second queue: %s\n", name, strerror(errno));
        return 0;
    }
    mq_unlink(qname);
    char *buf = malloc(size), *val = malloc(size);
    for (long i = 0; i < size; i++) val[i] = (char)(i * 7 + 1);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            ssize_t r = receive(ping, buf, size);
            if (r == 0) _exit(0);
            send_all(pong, buf, r);
        }
    }
    uint64_t i = 0, bad = 0, warm = 1000, start = 0;
    for (;; i++) {
        if (i == warm) start = now_ns();
        if (i > warm && (i - warm) % 64 == 0 && now_ns() - start >= dur) break;
        memcpy(val, &i, 8);
        memcpy(val + size - 8, &i, 8);
        send_all(ping, val, size);
        ssize_t r = receive(pong, buf, size);
        uint64_t a, b;
        memcpy(&a, buf, 8);
        memcpy(&b, buf + size - 8, 8);
        if (r != size || a != i || b != i) bad++;
    }
    uint64_t elapsed = now_ns() - start, n = i - warm;
    send_all(ping, val, 0);
    int st;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && bad == 0;
    printf("%s\t%.1f\tcorrect=%s\tround trip between 2 processes (fork), two POSIX mqs of %ld x %ld bytes, one per direction, mq_send / mq_receive; n=%llu (+%llu warm-up), numbers checked every hop\n",
           name, (double)elapsed / (double)n, ok ? "yes" : "no", (long)attr->mq_maxmsg, size, (unsigned long long)n, (unsigned long long)warm);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    long size = 64, maxmsg = 10;
    uint64_t dur = 1000000000ull;
    const char *name = "c_mq_oneway";
    int opt, pingpong = 0;
    while ((opt = getopt(argc, argv, "s:m:d:n:p")) != -1) {
        switch (opt) {
        case 'p': pingpong = 1; break;
        case 's': size = atol(optarg); break;
        case 'm': maxmsg = atol(optarg); break;
        case 'd': dur = strtoull(optarg, NULL, 10); break;
        case 'n': name = optarg; break;
        default: return 2;
        }
    }
    if (size < 16) {
        fprintf(stderr, "mq_oneway: size %ld < 16\n", size);
        return 2;
    }
    char qname[64];
    snprintf(qname, sizeof qname, "/psbench-mq-%d", (int)getpid());
    struct mq_attr attr = {.mq_maxmsg = maxmsg, .mq_msgsize = size};
    mqd_t q = mq_open(qname, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    if (q == (mqd_t)-1) {
        printf("%s\tNaN\tcorrect=no\tnot run: mq_open of %ld messages of %ld bytes: %s (the system's limits)\n", name, maxmsg, size, strerror(errno));
        return 0;
    }
    mq_unlink(qname); /* nothing left behind; the descriptors keep it */
    if (pingpong)
        return run_pingpong(name, q, &attr, size, dur);
    volatile uint64_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared[0] = 0;
    shared[1] = 0;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char *buf = malloc(size);
        uint64_t n = 0, bad = 0;
        for (;;) {
            ssize_t r = mq_receive(q, buf, size, NULL);
            if (r < 0) {
                if (errno == EINTR) continue;
                _exit(3);
            }
            if (r == 0) break;
            uint64_t a, b;
            memcpy(&a, buf, 8);
            memcpy(&b, buf + size - 8, 8);
            if (r != size || a != n || b != n) bad++;
            n++;
        }
        shared[0] = n;
        shared[1] = bad;
        _exit(0);
    }
    char *val = malloc(size);
    for (long i = 0; i < size; i++) val[i] = (char)(i * 7 + 1);
    uint64_t i = 0, start = now_ns();
    while (now_ns() - start < dur || i < 16) {
        for (int k = 0; k < 64; k++, i++) {
            memcpy(val, &i, 8);
            memcpy(val + size - 8, &i, 8);
            while (mq_send(q, val, size, 0) < 0) {
                if (errno != EINTR) {
                    perror("mq_send");
                    return 1;
                }
            }
        }
    }
    while (mq_send(q, val, 0, 0) < 0 && errno == EINTR) {
    }
    int st;
    waitpid(pid, &st, 0);
    uint64_t elapsed = now_ns() - start;
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && shared[0] == i && shared[1] == 0;
    printf("%s\t%.1f\tcorrect=%s\tone-way A->B, POSIX mq of %ld x %ld bytes, mq_send and mq_receive into a buffer of its own; n=%llu, B received %llu, %.0f MB/s, numbers checked\n",
           name, (double)elapsed / (double)i, ok ? "yes" : "no", maxmsg, size, (unsigned long long)i,
           (unsigned long long)shared[0], (double)i * (double)size / ((double)elapsed / 1e9) / 1e6);
    return ok ? 0 : 1;
}
