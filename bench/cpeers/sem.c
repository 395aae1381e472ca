/* sem: the POSIX sem_t peers of ps_sem_uncontended and ps_sem_contended_2p
 * (bench/locks.go), with a process-shared sem_t of one permit (sem_init
 * with pshared 1) in a MAP_SHARED mapping.
 *
 *   uncontended  one process: sem_wait; counter++; sem_post, for NS
 *                nanoseconds; ns per pair
 *   contended    two processes (the parent and a fork()ed child) increment a
 *                shared counter under the semaphore used as a lock until the
 *                parent raises the stop word; ns per increment (wall/total);
 *                the counter must equal the increments counted
 *
 *   cc -O2 -Wall -Wextra -pthread -o sem sem.c
 *   ./sem -m uncontended|contended [-d NS] -n NAME
 *
 * Output, one line:  NAME<TAB>ns<TAB>correct=yes|no<TAB>notes
 */
#define _GNU_SOURCE
#include <semaphore.h>
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

struct shared {
    sem_t sem;
    volatile uint64_t counter; /* under sem */
    volatile uint64_t owner;   /* under sem: who is inside, 0 if nobody */
    uint64_t viol;             /* under sem */
    volatile int ready, go, stop;
    uint64_t child_n;
};

static uint64_t loop(struct shared *sh, uint64_t me) {
    uint64_t n = 0;
    while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
        for (int k = 0; k < 32; k++) {
            while (sem_wait(&sh->sem) != 0) {
            }
            if (sh->owner != 0) sh->viol++;
            sh->owner = me;
            sh->counter++;
            if (sh->owner != me) sh->viol++;
            sh->owner = 0;
            sem_post(&sh->sem);
            n++;
        }
    }
    return n;
}

int main(int argc, char **argv) {
    const char *mode = "uncontended", *name = "c_sem";
    uint64_t dur = 1000000000ull;
    int opt;
    while ((opt = getopt(argc, argv, "m:d:n:")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'd': dur = strtoull(optarg, NULL, 10); break;
        case 'n': name = optarg; break;
        default: return 2;
        }
    }
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || sem_init(&sh->sem, 1, 1) != 0) {
        perror("sem: setup");
        return 1;
    }
    if (strcmp(mode, "uncontended") == 0) {
        uint64_t n = 0, start = now_ns(), elapsed;
        do {
            for (int k = 0; k < 1024; k++, n++) {
                while (sem_wait(&sh->sem) != 0) {
                }
                sh->counter++;
                sem_post(&sh->sem);
            }
            elapsed = now_ns() - start;
        } while (elapsed < dur);
        int v = -1;
        sem_getvalue(&sh->sem, &v);
        int ok = sh->counter == n && v == 1;
        printf("%s\t%.2f\tcorrect=%s\tglibc sem_t (pshared) sem_wait+sem_post pair (+1 increment), 1 process, n=%llu, value after=%d\n",
               name, (double)elapsed / (double)n, ok ? "yes" : "no", (unsigned long long)n, v);
        return ok ? 0 : 1;
    }
    if (strcmp(mode, "contended") != 0) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        __atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
        while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE)) {
        }
        sh->child_n = loop(sh, 2);
        _exit(0);
    }
    while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE)) {
    }
    uint64_t start = now_ns();
    __atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
    /* The parent loops too; a timer thread is not needed: check the clock
     * between batches of 32. */
    uint64_t n = 0;
    while (now_ns() - start < dur) {
        for (int k = 0; k < 32; k++) {
            while (sem_wait(&sh->sem) != 0) {
            }
            if (sh->owner != 0) sh->viol++;
            sh->owner = 1;
            sh->counter++;
            if (sh->owner != 1) sh->viol++;
            sh->owner = 0;
            sem_post(&sh->sem);
            n++;
        }
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
    int st;
    waitpid(pid, &st, 0);
    uint64_t elapsed = now_ns() - start;
    uint64_t total = n + sh->child_n;
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && sh->counter == total && sh->viol == 0 && total > 0;
    printf("%s\t%.1f\tcorrect=%s\tns per increment (wall/total), 2 processes, glibc sem_t (pshared) of 1 permit as a lock; counter=%llu/%llu violations=%llu\n",
           name, (double)elapsed / (double)total, ok ? "yes" : "no", (unsigned long long)sh->counter,
           (unsigned long long)total, (unsigned long long)sh->viol);
    return ok ? 0 : 1;
}
