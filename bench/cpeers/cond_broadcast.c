/* cond_broadcast: the C peer of ps_cond_broadcast_8p (bench/special.go,
 * psCondBroadcast and its child role "bcast"), with glibc's process-shared
 * pthread_mutex_t and pthread_cond_t in a MAP_SHARED|MAP_ANONYMOUS region and
 * fork()ed waiters.
 *
 *   cc -O2 -Wall -Wextra -pthread -o cond_broadcast cond_broadcast.c
 *   ./cond_broadcast [-p P] [-w W] [-r R] [-d NS] [-R 0|1]
 *
 *   -p P   waiting processes (default 8; the figure is c_cond_broadcast_<P>p)
 *   -w W   untimed warm-up broadcasts (default 3)
 *   -r R   at least R timed broadcasts (default 50)
 *   -d NS  and at least NS nanoseconds of timed broadcasts (default 1e9)
 *   -R 0|1 the mutex is also PTHREAD_MUTEX_ROBUST (default 1: like c_cond_pingpong
 *          of the peers folder, and like processshared's Mutex, which survives
 *          the death of its holder)
 *
 * P children wait on the cond under the mutex. The parent, holding the mutex,
 * waits (on a second cond, "back") until all P have registered, bumps a
 * generation, reads CLOCK_MONOTONIC and calls pthread_cond_broadcast, then
 * waits on "back" until all P have returned from pthread_cond_wait (each
 * holding the mutex in turn); the last one to return reads the clock and
 * signals "back". The figure is the median of those times.
 *
 * Output, one line:  name<TAB>ns<TAB>correct=yes|no<TAB>notes
 * Checks: every waiter sees the generation go up by exactly one per
 * broadcast, the woken count is P after each broadcast, the children's rounds
 * add up to P x broadcasts, every pthread call returns 0, every child exits 0.
 * Exit status 1 if correct=no, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CACHELINE 64
#define MAXP 64
#define STALL_NS 10000000000ull /* a wait for the waiters that takes longer than this fails */

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn)) static void die(const char *what, int err) {
    fprintf(stderr, "cond_broadcast: %s: %s\n", what, strerror(err));
    exit(2);
}

struct shared {
    _Alignas(CACHELINE) pthread_mutex_t m;
    _Alignas(CACHELINE) pthread_cond_t c;    /* the waiters wait here; the parent broadcasts */
    _Alignas(CACHELINE) pthread_cond_t back; /* the parent waits here (CLOCK_MONOTONIC timeouts) */
    /* under the mutex (plain) */
    _Alignas(CACHELINE) uint64_t gen;     /* bumped by each broadcast */
    uint64_t waiting;                     /* waiters registered since the last broadcast */
    uint64_t woken;                       /* waiters returned since the last broadcast */
    uint64_t t1;                          /* when the last waiter returned */
    /* control (atomic) */
    _Alignas(CACHELINE) uint32_t stop;
    _Alignas(CACHELINE) uint64_t total;   /* rounds seen by the children */
    _Alignas(CACHELINE) uint64_t errors;  /* errors seen by the children */
};

static struct shared *s;
static pid_t kids[MAXP];
static int kid_status[MAXP], kid_reaped[MAXP];
static int procs = 8;
static char name[64];

static void out(double v, int ok, const char *fmt, ...) {
    char notes[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes, sizeof notes, fmt, ap);
    va_end(ap);
    if (isnan(v))
        printf("%s\tNaN\tcorrect=%s\t%s\n", name, ok ? "yes" : "no", notes);
    else
        printf("%s\t%.1f\tcorrect=%s\t%s\n", name, v, ok ? "yes" : "no", notes);
    fflush(stdout);
}

/* Kills and reaps every child, prints a failure line and exits 1. */
__attribute__((noreturn)) static void fail(const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    for (int i = 0; i < procs; i++)
        if (!kid_reaped[i]) kill(kids[i], SIGKILL);
    for (int i = 0; i < procs; i++)
        if (!kid_reaped[i]) waitpid(kids[i], &kid_status[i], 0);
    out(NAN, 0, "error: %s", why);
    exit(1);
}

/* Reaps the children that have exited; returns the index of one that has,
 * or -1. */
static int exited_child(void) {
    int found = -1;
    for (int i = 0; i < procs; i++) {
        if (kid_reaped[i]) continue;
        if (waitpid(kids[i], &kid_status[i], WNOHANG) == kids[i]) {
            kid_reaped[i] = 1;
            found = i;
        }
    }
    return found;
}

static const char *status_str(int st) {
    static char b[64];
    if (WIFEXITED(st))
        snprintf(b, sizeof b, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(b, sizeof b, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(b, sizeof b, "status 0x%x", st);
    return b;
}

/* Waits on "back" (the mutex held) until *word reaches want. The wait is cut
 * into slices of 100 ms to notice a child that died; it fails after
 * STALL_NS without reaching want. */
static void await_back(uint64_t *word, uint64_t want, long round, const char *what) {
    uint64_t start = now_ns();
    while (*word < want) {
        uint64_t deadline = now_ns() + 100000000ull;
        struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
        int r = pthread_cond_timedwait(&s->back, &s->m, &ts);
        if (r != 0 && r != ETIMEDOUT)
            fail("round %ld: %s (%llu/%llu): pthread_cond_timedwait: %s", round, what,
                 (unsigned long long)*word, (unsigned long long)want, strerror(r));
        if (r == ETIMEDOUT) {
            int k = exited_child();
            if (k >= 0)
                fail("round %ld: %s (%llu/%llu): child %d exited (%s)", round, what,
                     (unsigned long long)*word, (unsigned long long)want, k + 1, status_str(kid_status[k]));
            if (now_ns() - start > STALL_NS)
                fail("round %ld: %s (%llu/%llu): stalled for %llu s", round, what,
                     (unsigned long long)*word, (unsigned long long)want, STALL_NS / 1000000000ull);
        }
    }
}

/* A waiter: the loop of the "bcast" child role. */
__attribute__((noreturn)) static void waiter(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(3); /* the parent died before prctl */
    uint64_t errs = 0, rounds = 0;
    int r = pthread_mutex_lock(&s->m);
    if (r != 0) {
        fprintf(stderr, "cond_broadcast child: pthread_mutex_lock: %s\n", strerror(r));
        __atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
        _exit(1);
    }
    for (;;) {
        s->waiting++;
        if (s->waiting == (uint64_t)procs) errs += pthread_cond_signal(&s->back) != 0;
        uint64_t g = s->gen;
        while (s->gen == g) {
            r = pthread_cond_wait(&s->c, &s->m);
            if (r != 0) {
                /* EOWNERDEAD: we hold the mutex, but the data may be half-written */
                fprintf(stderr, "cond_broadcast child: pthread_cond_wait: %s\n", strerror(r));
                __atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
                _exit(1);
            }
        }
        if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) break;
        if (s->gen != g + 1) {
            fprintf(stderr, "cond_broadcast child: generation %llu after %llu: a broadcast was missed\n",
                    (unsigned long long)s->gen, (unsigned long long)g);
            errs++;
            break;
        }
        rounds++;
        s->woken++;
        if (s->woken == (uint64_t)procs) {
            s->t1 = now_ns();
            errs += pthread_cond_signal(&s->back) != 0;
        }
    }
    __atomic_fetch_add(&s->total, rounds, __ATOMIC_RELAXED);
    errs += pthread_mutex_unlock(&s->m) != 0;
    if (errs) __atomic_fetch_add(&s->errors, errs, __ATOMIC_RELAXED);
    _exit(errs ? 1 : 0);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: cond_broadcast [-p procs] [-w warm-up] [-r min rounds] [-d min ns] [-R 0|1]\n");
    exit(2);
}

int main(int argc, char **argv) {
    long warm = 3, min_rounds = 50;
    uint64_t dur = 1000000000ull;
    int robust = 1, c;
    while ((c = getopt(argc, argv, "p:w:r:d:R:")) != -1) {
        switch (c) {
        case 'p': procs = atoi(optarg); break;
        case 'w': warm = atol(optarg); break;
        case 'r': min_rounds = atol(optarg); break;
        case 'd': dur = strtoull(optarg, NULL, 10); break;
        case 'R': robust = atoi(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || procs < 1 || procs > MAXP || warm < 0 || min_rounds < 1) usage();
    snprintf(name, sizeof name, "c_cond_broadcast_%dp", procs);
    /* a hang dies instead of blocking the harness; the children die with the parent */
    alarm((unsigned)(dur / 1000000000ull) + 120);

    s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) die("mmap", errno);
    memset(s, 0, sizeof *s);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    if (robust) pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&s->m, &ma);
    if (r) die("pthread_mutex_init", r);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    if ((r = pthread_cond_init(&s->c, &ca))) die("pthread_cond_init", r);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if ((r = pthread_cond_init(&s->back, &ca))) die("pthread_cond_init", r);
    pthread_condattr_destroy(&ca);

    pid_t self = getpid();
    for (int i = 0; i < procs; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t p = fork();
        if (p < 0) fail("fork: %s", strerror(errno));
        if (p == 0) {
            alarm((unsigned)(dur / 1000000000ull) + 120);
            waiter(self);
        }
        kids[i] = p;
    }

    if ((r = pthread_mutex_lock(&s->m))) fail("pthread_mutex_lock: %s", strerror(r));
    size_t cap = 1024, n = 0;
    int64_t *lat = malloc(cap * sizeof *lat);
    if (!lat) fail("out of memory");
    long bad = 0;
    uint64_t start = now_ns();
    for (long rd = 0;; rd++) {
        await_back(&s->waiting, (uint64_t)procs, rd, "waiting for the waiters");
        if (rd >= warm + min_rounds && now_ns() - start >= dur) break;
        s->waiting = 0;
        s->woken = 0;
        s->gen++;
        uint64_t t0 = now_ns();
        if ((r = pthread_cond_broadcast(&s->c))) fail("round %ld: pthread_cond_broadcast: %s", rd, strerror(r));
        await_back(&s->woken, (uint64_t)procs, rd, "woken");
        if (s->woken != (uint64_t)procs) bad++;
        if (rd == warm) start = now_ns();
        if (rd >= warm) {
            if (n == cap) {
                cap *= 2;
                int64_t *l2 = realloc(lat, cap * sizeof *lat);
                if (!l2) fail("out of memory");
                lat = l2;
            }
            lat[n++] = (int64_t)(s->t1 - t0);
        }
    }
    uint64_t rounds = s->gen;
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    s->gen++;
    if ((r = pthread_cond_broadcast(&s->c))) fail("final pthread_cond_broadcast: %s", strerror(r));
    if ((r = pthread_mutex_unlock(&s->m))) fail("pthread_mutex_unlock: %s", strerror(r));

    int kids_ok = 1;
    char kid_note[128] = "";
    for (int i = 0; i < procs; i++) {
        if (!kid_reaped[i]) {
            while (waitpid(kids[i], &kid_status[i], 0) < 0)
                if (errno != EINTR) fail("waitpid: %s", strerror(errno));
            kid_reaped[i] = 1;
        }
        if (!WIFEXITED(kid_status[i]) || WEXITSTATUS(kid_status[i]) != 0) {
            if (kids_ok) snprintf(kid_note, sizeof kid_note, "; child %d: %s", i + 1, status_str(kid_status[i]));
            kids_ok = 0;
        }
    }
    uint64_t child_rounds = __atomic_load_n(&s->total, __ATOMIC_RELAXED);
    uint64_t child_errs = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
    int ok = bad == 0 && child_errs == 0 && kids_ok && child_rounds == rounds * (uint64_t)procs;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)lat[i];
    qsort(lat, n, sizeof *lat, cmp_i64);
    out((double)lat[n / 2], ok,
        "median time from pthread_cond_broadcast until all %d waiting processes have returned from "
        "pthread_cond_wait (holding the mutex in turn), glibc PTHREAD_PROCESS_SHARED %smutex + cond, "
        "fork()ed waiters; rounds=%zu mean=%.0f min=%lld max=%lld ns; every waiter woken exactly once "
        "per broadcast (%llu/%llu wake-ups)%s%s",
        procs, robust ? "robust " : "", n, sum / (double)n, (long long)lat[0], (long long)lat[n - 1],
        (unsigned long long)child_rounds, (unsigned long long)(rounds * (uint64_t)procs),
        child_errs ? "; errors in the children" : "", kid_note);
    free(lat);
    pthread_cond_destroy(&s->c);
    pthread_cond_destroy(&s->back);
    pthread_mutex_destroy(&s->m);
    munmap(s, sizeof *s);
    return ok ? 0 : 1;
}
