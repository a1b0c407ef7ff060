/* The compiled loops' threads: a team of workers that wait for work by spinning, so that handing a part of a
 * loop (or of a matrix product) to another core costs a few microseconds, where a Python thread woken through
 * the OS costs fifty or more (python benchmarks/bench_threads.py). kernels.py compiles this file once, before
 * kernels.c, which splits its loops with `team_run`.
 *
 * A worker that has found no work for TEAM_SPIN_NS nanoseconds sleeps on a condition variable until the next
 * job, or at once after `team_rest` (perf.py calls it before handing work to Python threads); while it spins it
 * yields the core to any other runnable thread (sched_yield), so that a thread or another process waiting for
 * that core is not kept off it for long. One job runs at a time: a call that finds the
 * team busy (another thread's job) runs its parts itself. A forked child starts without workers and makes its
 * own at its first job. */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define TEAM_MAX 256
#define TEAM_SPIN_NS 2000000L /* 2 ms: longer than the Python between two ops of a step, far shorter than a pause */

/* A part of a one-pass loop should hold this many numbers at least: a handoff costs a few microseconds, what
 * one core takes for a few thousand numbers of a tanh. */
#define TEAM_MIN_NUMBERS (1 << 14)

/* A worker first spins on the CPU's pause instruction (a new job is seen within a few hundred nanoseconds), then
 * yields the core between looks. */
#define TEAM_PAUSES 4096
#if defined(__x86_64__) || defined(__i386__)
#define TEAM_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define TEAM_PAUSE() __asm__ __volatile__("yield")
#else
#define TEAM_PAUSE() ((void)0)
#endif

typedef void (*team_part)(void *job, ptrdiff_t part, ptrdiff_t parts);

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int workers;            /* started; worker i (1-based) runs parts i, i + size, ... */
    atomic_uint_fast64_t round;  /* one more for every job */
    atomic_int unfinished;  /* workers still in this round */
    atomic_int asleep;
    atomic_int resting;     /* set by team_rest: stop spinning now */
    atomic_flag busy;
    team_part fn;           /* this round's job */
    void *job;
    ptrdiff_t parts, size;  /* size: the threads this job is split over, the caller included */
    uint_fast64_t born[TEAM_MAX + 1];  /* the round when worker i started: it waits for the next */
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, ATOMIC_FLAG_INIT, NULL, NULL, 0, 0, {0}};

static long team_elapsed_ns(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

static void *team_worker(void *arg) {
    const ptrdiff_t id = (ptrdiff_t)(intptr_t)arg;
    uint_fast64_t seen = team.born[id];
    for (;;) {
        struct timespec since;
        clock_gettime(CLOCK_MONOTONIC, &since);
        uint_fast64_t now;
        for (unsigned spins = 1; (now = atomic_load(&team.round)) == seen; spins++) {
            if (atomic_load(&team.resting) || (spins % 64 == 0 && team_elapsed_ns(&since) > TEAM_SPIN_NS)) {
                pthread_mutex_lock(&team.lock);
                atomic_fetch_add(&team.asleep, 1);
                while ((now = atomic_load(&team.round)) == seen) pthread_cond_wait(&team.wake, &team.lock);
                atomic_fetch_sub(&team.asleep, 1);
                pthread_mutex_unlock(&team.lock);
                break;
            }
            if (spins > TEAM_PAUSES) sched_yield(); else TEAM_PAUSE();
        }
        seen = now;
        for (ptrdiff_t p = id; p < team.parts && id < team.size; p += team.size) team.fn(team.job, p, team.parts);
        atomic_fetch_sub(&team.unfinished, 1);
    }
    return NULL;
}

static void team_forget(void) {  /* in a forked child: the parent's workers are not here */
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
    team.lock = lock;
    team.wake = wake;
    team.workers = 0;
    atomic_store(&team.asleep, 0);
    atomic_flag_clear(&team.busy);
}

/* Start workers until `size - 1` run; returns how many run (fewer when the system refuses a thread). */
static int team_grow(ptrdiff_t size) {
    static int fork_handler = 0;
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, team_forget) == 0;
    while (team.workers < size - 1 && team.workers < TEAM_MAX) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        team.born[team.workers + 1] = atomic_load(&team.round);
        const int failed = pthread_create(&thread, &attr, team_worker, (void *)(intptr_t)(team.workers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        team.workers++;
    }
    return team.workers;
}

/* fn(job, p, parts) for p in 0 .. parts - 1, on up to `threads` threads (the caller one of them). */
static void team_run(team_part fn, void *job, ptrdiff_t parts, ptrdiff_t threads) {
    ptrdiff_t size = threads < parts ? threads : parts;
    if (size < 2 || atomic_flag_test_and_set(&team.busy)) {
        for (ptrdiff_t p = 0; p < parts; p++) fn(job, p, parts);
        return;
    }
    const int workers = team_grow(size);
    if (size > workers + 1) size = workers + 1;
    team.fn = fn;
    team.job = job;
    team.parts = parts;
    team.size = size;
    atomic_store(&team.unfinished, workers);
    atomic_store(&team.resting, 0);
    atomic_fetch_add(&team.round, 1);
    if (atomic_load(&team.asleep) > 0) {
        pthread_mutex_lock(&team.lock);
        pthread_cond_broadcast(&team.wake);
        pthread_mutex_unlock(&team.lock);
    }
    for (ptrdiff_t p = 0; p < parts; p += size) fn(job, p, parts);
    while (atomic_load(&team.unfinished) > 0) sched_yield();
    atomic_flag_clear(&team.busy);
}

/* How many jobs the team has run split (0 before the first). */
ptrdiff_t team_jobs(void) {
    return (ptrdiff_t)atomic_load(&team.round);
}

/* Let the workers sleep now instead of spinning: other threads (Python's) are about to want the cores. */
void team_rest(void) {
    atomic_store(&team.resting, 1);
}

/* The part `part` of `parts` of range(n), its bounds multiples of `align` (the last part ends at n). */
static void team_bounds(ptrdiff_t n, ptrdiff_t part, ptrdiff_t parts, ptrdiff_t align, ptrdiff_t *lo, ptrdiff_t *hi) {
    const ptrdiff_t blocks = (n + align - 1) / align;
    *lo = blocks * part / parts * align;
    *hi = part + 1 == parts ? n : blocks * (part + 1) / parts * align;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

/* How many parts of at least `min_items` items range(n) makes on `threads` threads (1 to threads). */
static ptrdiff_t team_parts(ptrdiff_t n, ptrdiff_t min_items, ptrdiff_t threads) {
    const ptrdiff_t parts = min_items > 0 ? n / min_items : n;
    return parts < 1 ? 1 : parts < threads ? parts : threads;
}

/* ---- matrix products through the BLAS numpy loaded (kernels.py hands over its cblas_?gemm) ---------------- */

typedef void (*sgemm32_t)(int, int, int, int32_t, int32_t, int32_t, float, const float *, int32_t, const float *,
                          int32_t, float, float *, int32_t);
typedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *,
                          int64_t, float, float *, int64_t);
typedef void (*dgemm32_t)(int, int, int, int32_t, int32_t, int32_t, double, const double *, int32_t,
                          const double *, int32_t, double, double *, int32_t);
typedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                          const double *, int64_t, double, double *, int64_t);

typedef void (*sgemv32_t)(int, int, int32_t, int32_t, float, const float *, int32_t, const float *, int32_t, float,
                          float *, int32_t);
typedef void (*sgemv64_t)(int, int, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t, float,
                          float *, int64_t);
typedef void (*dgemv32_t)(int, int, int32_t, int32_t, double, const double *, int32_t, const double *, int32_t,
                          double, double *, int32_t);
typedef void (*dgemv64_t)(int, int, int64_t, int64_t, double, const double *, int64_t, const double *, int64_t,
                          double, double *, int64_t);

static struct {
    void *sgemm, *dgemm, *sgemv, *dgemv;
    int wide;  /* 64-bit integers (an ILP64 build: numpy's scipy_openblas64_) */
} blas;

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
/* A product's fields in kernels.c's `products` table. */
enum { PRODUCT_A, PRODUCT_B, PRODUCT_C, PRODUCT_BIAS, PRODUCT_M, PRODUCT_N, PRODUCT_K, PRODUCT_LDA, PRODUCT_LDB,
       PRODUCT_LDC, PRODUCT_TRANS_A, PRODUCT_TRANS_B, PRODUCT_FIELDS };

void set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv, ptrdiff_t wide) {
    blas.sgemm = sgemm;
    blas.dgemm = dgemm;
    blas.sgemv = sgemv;
    blas.dgemv = dgemv;
    blas.wide = (int)wide;
}
