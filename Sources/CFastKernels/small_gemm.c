// See include/small_gemm.h. The loops are written once, in small_gemm_body.h, and compiled here
// for each instruction set; `specbench_small_gemm` picks the operands' layout and the set.
#include "small_gemm.h"

#include <stdlib.h>
#include <string.h>

// Multiply-adds fuse where the target has FMA.
#pragma clang fp contract(fast)

#if defined(__x86_64__)
#define LANES 16
#define SUFFIX avx512
#define TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#include "small_gemm_body.h"
#undef LANES
#undef SUFFIX
#undef TARGET

#define LANES 8
#define SUFFIX avx2
#define TARGET __attribute__((target("avx2,fma")))
#include "small_gemm_body.h"
#undef LANES
#undef SUFFIX
#undef TARGET
#endif

#define LANES 4
#define SUFFIX base
#define TARGET
#include "small_gemm_body.h"
#undef LANES
#undef SUFFIX
#undef TARGET

typedef void (*strided_function)(long, long, long, const float *, long, long, const float *, long, float *, long, long, int);
typedef void (*dots_function)(long, long, long, const float *, long, const float *, long, float *, long, int);
typedef void (*transpose_function)(long, long, const float *, long, float *);

typedef struct {
  const char *name;
  long lanes;
  strided_function strided;
  dots_function dots;
  transpose_function transpose;
} kernel_set;

static const kernel_set sets[] = {
#if defined(__x86_64__)
    {"avx512f", 16, strided_avx512, dots_avx512, transpose_avx512},
    {"avx2", 8, strided_avx2, dots_avx2, transpose_avx2},
#endif
    {"baseline", 4, strided_base, dots_base, transpose_base},
};
enum { set_count = sizeof sets / sizeof sets[0] };

static int supported(const kernel_set *set) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (strcmp(set->name, "avx512f") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  if (strcmp(set->name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return 1;
}

// The widest set the CPU has, chosen when the program loads, before any thread runs.
static const kernel_set *chosen = &sets[set_count - 1];

static const kernel_set *named(const char *isa);

// SPECBENCH_SMALL_PRODUCTS names a set to use instead ("avx2", "baseline", …) when the CPU has
// it: for figures that must come out the same on machines with different vector widths.
__attribute__((constructor)) static void choose_small_gemm_kernels(void) {
  const char *asked = getenv("SPECBENCH_SMALL_PRODUCTS");
  if (asked != NULL && named(asked) != NULL) {
    chosen = named(asked);
    return;
  }
  for (int i = 0; i < set_count; i++)
    if (supported(&sets[i])) {
      chosen = &sets[i];
      return;
    }
}

const char *specbench_small_gemm_isa(void) { return chosen->name; }

static const kernel_set *named(const char *isa) {
  for (int i = 0; i < set_count; i++)
    if (strcmp(sets[i].name, isa) == 0 && supported(&sets[i])) return &sets[i];
  return NULL;
}

/// Both operands run along k (a·bᵀ, a dense layer's forward product): dot products, unless there
/// are enough columns (16) and rows (32) to repay transposing b into scratch, so that its rows
/// run along C's.
static int needs_transposed_b(int transpose_a, int transpose_b, long m, long n, long k) {
  return !transpose_a && transpose_b && k > 1 && n >= 16 && m >= 32;
}

long specbench_small_gemm_scratch(int transpose_a, int transpose_b, long m, long n, long k) {
  return needs_transposed_b(transpose_a, transpose_b, m, n, k) ? k * n : 0;
}

static void run(const kernel_set *set, int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                long ldb, int accumulate, float *c, long ldc, float *scratch) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
    return;
  }
  // A(i, p) and B(p, j) as strides.
  long a_row = transpose_a ? 1 : lda, a_col = transpose_a ? lda : 1;
  long b_row = transpose_b ? 1 : ldb, b_col = transpose_b ? ldb : 1;
  if (k == 1 && ldb == 1) b_col = 1;  // one row of b, stored as a column: contiguous either way
  if (b_col == 1 && !(n < set->lanes && a_row == 1 && m > n)) {
    set->strided(m, n, k, a, a_row, a_col, b, b_row, c, ldc, 1, accumulate);
  } else if (a_row == 1) {
    // Cᵀ(j, i) = Σ_p B(p, j)·A(i, p): the vectors run along A's contiguous i, into C's columns.
    set->strided(n, m, k, b, b_col, b_row, a, a_col, c, 1, ldc, accumulate);
  } else if (!needs_transposed_b(transpose_a, transpose_b, m, n, k)) {
    set->dots(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
  } else {
    set->transpose(n, k, b, ldb, scratch);
    set->strided(m, n, k, a, a_row, a_col, scratch, n, c, ldc, 1, accumulate);
  }
}

void specbench_small_gemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                          long ldb, int accumulate, float *c, long ldc, float *scratch) {
  run(chosen, transpose_a, transpose_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc, scratch);
}

int specbench_small_gemm_on(const char *isa, int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda,
                            const float *b, long ldb, int accumulate, float *c, long ldc, float *scratch) {
  const kernel_set *set = named(isa);
  if (set == NULL) return 0;
  run(set, transpose_a, transpose_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc, scratch);
  return 1;
}
