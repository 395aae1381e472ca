/* barrier: the C peer of ps_barrier_8p (bench/syncprims.go, psBarrier8p and
 * its child role "ps_barrier_party"), with glibc's process-shared
 * pthread_barrier_t in a MAP_SHARED|MAP_ANONYMOUS region and fork()ed
 * parties.
 *
 *   cc -O2 -Wall -Wextra -pthread -o barrier barrier.c
 *   ./barrier [-p P] [-w W] [-g G]
 *
 *   -p P   parties, one per process (default 8; the figure is
 *          c_pthread_barrier_<P>p)
 *   -w W   warm-up generations (default 50)
 *   -g G   generations in all (default 3000)
 *
 * Each party adds 1 to a shared counter, calls pthread_barrier_wait, and
 * checks that the counter covers every party's arrival in that generation.
 * Party 1 reads CLOCK_MONOTONIC after W generations and after G; the figure
 * is the time between the two divided by G-W.
 *
 * Output, one line:  name<TAB>ns<TAB>correct=yes|no<TAB>notes
 * Checks: every pthread call returns 0 (or PTHREAD_BARRIER_SERIAL_THREAD),
 * the counter check holds after every wait, the parties' waits add up to
 * P x G, every child exits 0. Exit status 1 if correct=no, 2 on a usage
 * error. A party that dies leaves the others blocked for good (pthread
 * barriers know nothing of deaths), so the parent kills them all after 60 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
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

#define CACHELINE 64
#define MAXP 64

struct shared {
    _Alignas(CACHELINE) pthread_barrier_t b;
    _Alignas(CACHELINE) uint64_t arrivals; /* atomic */
    _Alignas(CACHELINE) uint64_t t0, t1;
    _Alignas(CACHELINE) uint64_t total;  /* atomic */
    _Alignas(CACHELINE) uint64_t errors; /* atomic */
};

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void) {
    fprintf(stderr, "usage: barrier [-p parties] [-w warm-up] [-g generations]\n");
    exit(2);
}

static int party(struct shared *s, int id, int procs, int warm, int gens) {
    for (int g = 0; g < gens; g++) {
        __atomic_add_fetch(&s->arrivals, 1, __ATOMIC_SEQ_CST);
        int r = pthread_barrier_wait(&s->b);
        if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD) {
            fprintf(stderr, "barrier party %d: pthread_barrier_wait: %s\n", id, strerror(r));
            __atomic_add_fetch(&s->errors, 1, __ATOMIC_SEQ_CST);
            return 1;
        }
        __atomic_add_fetch(&s->total, 1, __ATOMIC_SEQ_CST);
        uint64_t v = __atomic_load_n(&s->arrivals, __ATOMIC_SEQ_CST);
        if (v < (uint64_t)procs * (uint64_t)(g + 1)) {
            fprintf(stderr, "barrier party %d: generation %d: %llu arrivals counted, want at least %llu\n",
                    id, g, (unsigned long long)v, (unsigned long long)procs * (g + 1));
            __atomic_add_fetch(&s->errors, 1, __ATOMIC_SEQ_CST);
            return 1;
        }
        if (id == 1 && g == warm - 1) s->t0 = now_ns();
        if (id == 1 && g == gens - 1) s->t1 = now_ns();
    }
    return 0;
}

int main(int argc, char **argv) {
    int procs = 8, warm = 50, gens = 3000, opt;
    while ((opt = getopt(argc, argv, "p:w:g:")) != -1) {
        switch (opt) {
        case 'p': procs = atoi(optarg); break;
        case 'w': warm = atoi(optarg); break;
        case 'g': gens = atoi(optarg); break;
        default: usage();
        }
    }
    if (procs < 1 || procs > MAXP || warm < 1 || gens <= warm) usage();
    char name[64];
    snprintf(name, sizeof name, "c_pthread_barrier_%dp", procs);

    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) {
        perror("barrier: mmap");
        return 2;
    }
    pthread_barrierattr_t a;
    int r = pthread_barrierattr_init(&a);
    if (r == 0) r = pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = pthread_barrier_init(&s->b, &a, (unsigned)procs);
    if (r != 0) {
        printf("%s\tNaN\tcorrect=no\terror: pthread_barrier_init: %s\n", name, strerror(r));
        return 1;
    }
    pid_t kids[MAXP];
    for (int i = 0; i < procs; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("barrier: fork");
            return 2;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            _exit(party(s, i + 1, procs, warm, gens));
        }
        kids[i] = pid;
    }
    alarm(60); /* the default action ends the parent; the children die with it */
    int kids_ok = 1;
    for (int i = 0; i < procs; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) kids_ok = 0;
    }
    uint64_t total = __atomic_load_n(&s->total, __ATOMIC_SEQ_CST);
    int ok = kids_ok && s->errors == 0 && total == (uint64_t)procs * (uint64_t)gens && s->t1 > s->t0;
    double v = ok ? (double)(s->t1 - s->t0) / (double)(gens - warm) : 0;
    printf("%s\t%.1f\tcorrect=%s\ttime per generation of a glibc process-shared pthread_barrier_t of %d parties, "
           "one per fork()ed process; %d generations (+%d warm-up), timed by party 1; every party checked after each "
           "wait that all %d arrived (%llu waits returned, want %llu)\n",
           name, v, ok ? "yes" : "no", procs, gens - warm, warm, procs,
           (unsigned long long)total, (unsigned long long)procs * (unsigned long long)gens);
    return ok ? 0 : 1;
}
