/* rwlock: the C peer of the ps_rwmutex figures (bench/rwlock.go), with
 * glibc's process-shared pthread_rwlock_t (default attributes but
 * PTHREAD_PROCESS_SHARED: glibc's default prefers readers) in a
 * MAP_SHARED|MAP_ANONYMOUS region and fork()ed processes.
 *
 *   cc -O2 -Wall -Wextra -pthread -o rwlock rwlock.c
 *   ./rwlock -n NAME -m MODE [-p P] [-d NS]
 *
 *   -n NAME  the figure's name, printed first
 *   -m MODE  uncontended: rdlock+unlock pairs, 1 process;
 *            read: P processes each rdlock, copy the 256-byte record and
 *            check it, unlock;
 *            mixed: P processes, each op 9 times in 10 a read as above, and
 *            1 in 10 a wrlock, a rewrite of the record with a new value,
 *            an unlock
 *   -p P     processes (default 1), this one included
 *   -d NS    how long each process runs, in nanoseconds (default 1e9)
 *
 * The figure is ns per operation: the wall time over the operations of all
 * P processes. Output, one line:  name<TAB>ns<TAB>correct=yes|no<TAB>notes
 * Checks: every read sees the 32 words of the record equal (no half-written
 * record), no reader sees a writer inside, the record's final value is the
 * number of writes, every pthread call returns 0, every child exits 0.
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

#define WORDS 32 /* 256 bytes */
#define MAXP 64

struct shared {
    pthread_rwlock_t lock;
    char pad0[64];
    uint64_t record[WORDS] __attribute__((aligned(64)));
    uint64_t writer_in __attribute__((aligned(64))); /* plain, under the lock */
    uint64_t ready __attribute__((aligned(64)));     /* atomic */
    uint64_t go __attribute__((aligned(64)));        /* atomic */
    uint64_t ops[MAXP] __attribute__((aligned(64)));
    uint64_t writes[MAXP];
    uint64_t bad[MAXP];
    uint64_t errs[MAXP];
};

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void run(struct shared *sh, int me, int mixed, uint64_t dur) {
    uint64_t buf[WORDS];
    uint64_t ops = 0, writes = 0, bad = 0, errs = 0;
    __atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&sh->go, __ATOMIC_SEQ_CST))
        ;
    uint64_t end = now_ns() + dur;
    while (now_ns() < end) {
        for (int k = 0; k < 64; k++, ops++) {
            if (mixed && ops % 10 == 9) {
                if (pthread_rwlock_wrlock(&sh->lock) != 0) errs++;
                sh->writer_in = 1;
                uint64_t v = sh->record[0] + 1;
                for (int i = 0; i < WORDS; i++) sh->record[i] = v;
                sh->writer_in = 0;
                writes++;
                if (pthread_rwlock_unlock(&sh->lock) != 0) errs++;
                continue;
            }
            if (pthread_rwlock_rdlock(&sh->lock) != 0) errs++;
            if (sh->writer_in) bad++;
            memcpy(buf, sh->record, sizeof buf);
            for (int i = 1; i < WORDS; i++)
                if (buf[i] != buf[0]) { bad++; break; }
            if (pthread_rwlock_unlock(&sh->lock) != 0) errs++;
        }
    }
    sh->ops[me] = ops;
    sh->writes[me] = writes;
    sh->bad[me] = bad;
    sh->errs[me] = errs;
}

int main(int argc, char **argv) {
    const char *name = "c_pthread_rwlock";
    const char *mode = "uncontended";
    int procs = 1;
    uint64_t dur = 1000000000ull;
    int opt;
    while ((opt = getopt(argc, argv, "n:m:p:d:")) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 'm': mode = optarg; break;
        case 'p': procs = atoi(optarg); break;
        case 'd': dur = strtoull(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (procs < 1 || procs > MAXP) return 2;
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { perror("mmap"); return 2; }
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (pthread_rwlock_init(&sh->lock, &a) != 0) { perror("pthread_rwlock_init"); return 2; }

    if (strcmp(mode, "uncontended") == 0) {
        uint64_t n = 0, errs = 0, cnt = 0;
        for (int k = 0; k < 1024; k++) { /* warm-up */
            pthread_rwlock_rdlock(&sh->lock);
            pthread_rwlock_unlock(&sh->lock);
        }
        uint64_t start = now_ns(), t;
        do {
            for (int k = 0; k < 1024; k++) {
                if (pthread_rwlock_rdlock(&sh->lock) != 0) errs++;
                cnt++;
                if (pthread_rwlock_unlock(&sh->lock) != 0) errs++;
            }
            n += 1024;
            t = now_ns();
        } while (t - start < dur);
        int ok = errs == 0 && cnt == n && pthread_rwlock_trywrlock(&sh->lock) == 0;
        printf("%s\t%.1f\tcorrect=%s\tpthread_rwlock_rdlock+unlock pair (PTHREAD_PROCESS_SHARED, glibc default: prefers readers), 1 process, n=%llu\n",
               name, (double)(t - start) / (double)n, ok ? "yes" : "no", (unsigned long long)n);
        return ok ? 0 : 1;
    }
    int mixed = strcmp(mode, "mixed") == 0;
    if (!mixed && strcmp(mode, "read") != 0) return 2;
    pid_t kids[MAXP];
    for (int i = 1; i < procs; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            run(sh, i, mixed, dur);
            _exit(0);
        }
        kids[i] = pid;
    }
    while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) < (uint64_t)procs - 1)
        usleep(100);
    uint64_t start = now_ns();
    __atomic_store_n(&sh->go, 1, __ATOMIC_SEQ_CST);
    run(sh, 0, mixed, dur);
    int kidsok = 1;
    for (int i = 1; i < procs; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) kidsok = 0;
    }
    uint64_t elapsed = now_ns() - start;
    uint64_t ops = 0, writes = 0, bad = 0, errs = 0;
    for (int i = 0; i < procs; i++) {
        ops += sh->ops[i];
        writes += sh->writes[i];
        bad += sh->bad[i];
        errs += sh->errs[i];
    }
    int ok = kidsok && errs == 0 && bad == 0 && ops > 0 && sh->record[0] == writes && sh->record[WORDS - 1] == writes;
    printf("%s\t%.1f\tcorrect=%s\tns per op (wall/total), %d processes, pthread_rwlock (PTHREAD_PROCESS_SHARED, glibc default: prefers readers), %s; ops=%llu writes=%llu bad=%llu\n",
           name, (double)elapsed / (double)ops, ok ? "yes" : "no", procs,
           mixed ? "9 in 10 ops read (copy + check 256 bytes), 1 in 10 rewrites them" : "each op reads (copies + checks) a 256-byte record",
           (unsigned long long)ops, (unsigned long long)writes, (unsigned long long)bad);
    return ok ? 0 : 1;
}
