// See include/core_pair.h.
#define _GNU_SOURCE
#include "core_pair.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

// The job's state: the caller posts it, the helper claims it (or the caller takes it back), the
// helper marks it done.
enum { idle, posted, claimed, done };

// How long the helper spins after its last job before it sleeps. A spirals step hands over a job
// every few microseconds and starts the next step within tens: 200 µs keeps the helper awake
// through training and lets it sleep soon after.
static const long spin_nanoseconds = 200 * 1000;

struct specbench_pair {
  _Atomic int state;
  _Atomic int sleeping;
  _Atomic int stopping;
  _Atomic long helper_parts;
  specbench_pair_work work;
  void *context;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
  int started; // 1 running, 0 not yet, -1 could not be started
};

static long nanoseconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void *helper(void *argument) {
  specbench_pair *pair = argument;
  for (;;) {
    long since = nanoseconds();
    for (unsigned spins = 1;; spins++) {
      if (atomic_load_explicit(&pair->stopping, memory_order_relaxed)) return NULL;
      int expected = posted;
      if (atomic_load_explicit(&pair->state, memory_order_acquire) == posted &&
          atomic_compare_exchange_strong_explicit(&pair->state, &expected, claimed, memory_order_acq_rel,
                                                  memory_order_acquire)) {
        pair->work(pair->context, 1);
        atomic_fetch_add_explicit(&pair->helper_parts, 1, memory_order_relaxed);
        atomic_store_explicit(&pair->state, done, memory_order_release);
        since = nanoseconds();
        continue;
      }
      // Every 64th look, give the core to any other thread that wants it (OpenBLAS's own
      // threads share it), and see whether it is time to sleep.
      if (spins % 64 == 0) {
        sched_yield();
        if (nanoseconds() - since > spin_nanoseconds) break;
      } else {
        relax();
      }
    }
    // Sleep until a job is posted. `sleeping` and `state` are sequentially consistent, so that
    // the caller, which posts and then reads `sleeping`, and the helper, which sets `sleeping`
    // and then reads `state`, cannot both miss the other.
    pthread_mutex_lock(&pair->lock);
    atomic_store(&pair->sleeping, 1);
    while (atomic_load(&pair->state) != posted && !atomic_load(&pair->stopping)) pthread_cond_wait(&pair->wake, &pair->lock);
    atomic_store(&pair->sleeping, 0);
    pthread_mutex_unlock(&pair->lock);
  }
}

specbench_pair *specbench_pair_create(void) {
  specbench_pair *pair = calloc(1, sizeof *pair);
  if (pair == NULL) return NULL;
  atomic_init(&pair->state, idle);
  atomic_init(&pair->sleeping, 0);
  atomic_init(&pair->stopping, 0);
  atomic_init(&pair->helper_parts, 0);
  pthread_mutex_init(&pair->lock, NULL);
  pthread_cond_init(&pair->wake, NULL);
  return pair;
}

void specbench_pair_run(specbench_pair *pair, specbench_pair_work work, void *context) {
  if (pair->started == 0) pair->started = pthread_create(&pair->thread, NULL, helper, pair) == 0 ? 1 : -1;
  if (pair->started < 0) {
    work(context, 0);
    work(context, 1);
    return;
  }
  pair->work = work;
  pair->context = context;
  atomic_store(&pair->state, posted);
  if (atomic_load(&pair->sleeping)) {
    pthread_mutex_lock(&pair->lock);
    pthread_cond_signal(&pair->wake);
    pthread_mutex_unlock(&pair->lock);
  }
  work(context, 0);
  int expected = posted;
  if (atomic_compare_exchange_strong_explicit(&pair->state, &expected, idle, memory_order_acq_rel, memory_order_acquire)) {
    // The helper has not started: part 1 here, rather than wait for it to wake.
    work(context, 1);
    return;
  }
  for (unsigned spins = 1; atomic_load_explicit(&pair->state, memory_order_acquire) != done; spins++) {
    if (spins % 64 == 0) sched_yield();
    else relax();
  }
  atomic_store_explicit(&pair->state, idle, memory_order_relaxed);
}

long specbench_pair_helper_parts(const specbench_pair *pair) {
  return atomic_load_explicit(&((specbench_pair *)pair)->helper_parts, memory_order_relaxed);
}

void specbench_pair_destroy(specbench_pair *pair) {
  if (pair == NULL) return;
  if (pair->started > 0) {
    pthread_mutex_lock(&pair->lock);
    atomic_store(&pair->stopping, 1);
    pthread_cond_signal(&pair->wake);
    pthread_mutex_unlock(&pair->lock);
    pthread_join(pair->thread, NULL);
  }
  pthread_mutex_destroy(&pair->lock);
  pthread_cond_destroy(&pair->wake);
  free(pair);
}
