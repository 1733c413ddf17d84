// Two cores on one job, handed over in well under a microsecond: the fast trainer's way to split
// a step's products and updates between the caller and a helper thread. The helper spins for a
// while after each job (yielding the core to any other thread that wants it), so that the next
// job of the same step finds it awake, and sleeps when no job has come for a while. The caller
// never waits for a helper that has not started its part: if the helper has not claimed it by
// the time the caller's own part is done, the caller runs it too. Which thread runs a part never
// changes what it computes.
#ifndef SPECBENCH_CORE_PAIR_H
#define SPECBENCH_CORE_PAIR_H

#ifdef __cplusplus
extern "C" {
#endif

/// Part `part` (0 or 1) of a job over `context`.
typedef void (*specbench_pair_work)(void *context, long part);

typedef struct specbench_pair specbench_pair;

/// A pair whose helper thread starts on first use. NULL when memory is short.
specbench_pair *specbench_pair_create(void);

/// Runs `work(context, 0)` on the calling thread and `work(context, 1)` on the helper (or on the
/// calling thread, when the helper has not claimed it in time or could not be started); returns
/// when both are done. One caller at a time.
void specbench_pair_run(specbench_pair *pair, specbench_pair_work work, void *context);

/// How many parts the helper has run (for tests: that the hand-over happens at all).
long specbench_pair_helper_parts(const specbench_pair *pair);

/// Stops and joins the helper, and frees the pair.
void specbench_pair_destroy(specbench_pair *pair);

#ifdef __cplusplus
}
#endif

#endif
