// See include/blas_loader.h.
#define _GNU_SOURCE
#include "blas_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// cblas.h's values: CblasRowMajor, CblasNoTrans, CblasTrans. `blasint` is int in the LP64
// builds that distributions ship as libopenblas.so.0.
enum { row_major = 101, no_transpose = 111, transpose = 112 };
typedef void (*sgemm_function)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef char *(*corename_function)(void);
typedef void (*set_threads_function)(int);
typedef int (*get_threads_function)(void);

// OpenBLAS picks its kernels from the CPU's model number when it loads, and a CPU newer than the
// library (Debian's OpenBLAS on a recent Xeon) gets its oldest x86-64 kernels, "Prescott": three
// times slower on mlp-mnist here. Unless the user chose (OPENBLAS_CORETYPE is set), SpecBench
// names the kernels the CPU's features allow — the ones OpenBLAS itself picks on the CPUs it
// knows — at start-up, before any thread runs (setenv is not safe beside other threads).
#if defined(__x86_64__)
__attribute__((constructor)) static void choose_openblas_kernels(void) {
  if (getenv("OPENBLAS_CORETYPE") != NULL) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd")) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    setenv("OPENBLAS_CORETYPE", "Haswell", 0);
  }
}
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static sgemm_function sgemm;
static corename_function corename;
static set_threads_function set_threads;
static get_threads_function get_threads;
static const char *failure;

static void load(void) {
  // SPECBENCH_OPENBLAS names another build (a path, or a name the loader searches for).
  const char *chosen = getenv("SPECBENCH_OPENBLAS");
  const char *names[] = {chosen && *chosen ? chosen : "libopenblas.so.0", chosen && *chosen ? NULL : "libopenblas.so"};
  void *library = NULL;
  for (unsigned i = 0; i < 2 && names[i] != NULL && library == NULL; i++) library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    const char *message = dlerror();
    failure = message ? strdup(message) : "not found";
    return;
  }
  sgemm = (sgemm_function)dlsym(library, "cblas_sgemm");
  corename = (corename_function)dlsym(library, "openblas_get_corename");
  set_threads = (set_threads_function)dlsym(library, "openblas_set_num_threads");
  get_threads = (get_threads_function)dlsym(library, "openblas_get_num_threads");
  if (sgemm == NULL) failure = "libopenblas has no cblas_sgemm";
}

int specbench_blas_threads(int threads) {
  if (!specbench_blas_load() || set_threads == NULL || get_threads == NULL) return -1;
  int previous = get_threads();
  if (threads > 0 && threads != previous) set_threads(threads);
  return previous;
}

static pthread_mutex_t single_lock = PTHREAD_MUTEX_INITIALIZER;
static int single_stretches;
static int threads_before_stretches;

void specbench_blas_single_begin(void) {
  if (!specbench_blas_load() || set_threads == NULL || get_threads == NULL) return;
  pthread_mutex_lock(&single_lock);
  if (single_stretches++ == 0) {
    threads_before_stretches = get_threads();
    if (threads_before_stretches != 1) set_threads(1);
  }
  pthread_mutex_unlock(&single_lock);
}

void specbench_blas_single_end(void) {
  if (!specbench_blas_load() || set_threads == NULL || get_threads == NULL) return;
  pthread_mutex_lock(&single_lock);
  if (single_stretches > 0 && --single_stretches == 0 && threads_before_stretches > 1) set_threads(threads_before_stretches);
  pthread_mutex_unlock(&single_lock);
}

int specbench_blas_threads_outside_stretches(void) {
  if (!specbench_blas_load() || get_threads == NULL) return -1;
  pthread_mutex_lock(&single_lock);
  int threads = single_stretches > 0 ? threads_before_stretches : get_threads();
  pthread_mutex_unlock(&single_lock);
  return threads;
}

int specbench_blas_load(void) {
  pthread_once(&once, load);
  return sgemm != NULL;
}

const char *specbench_blas_error(void) {
  specbench_blas_load();
  return failure;
}

const char *specbench_blas_core(void) {
  if (!specbench_blas_load() || corename == NULL) return "unknown";
  const char *name = corename();
  return name ? name : "unknown";
}

void specbench_sgemm(int transpose_a, int transpose_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc) {
  sgemm(row_major, transpose_a ? transpose : no_transpose, transpose_b ? transpose : no_transpose, m, n, k, 1.0f, a, lda, b, ldb,
        beta, c, ldc);
}

// LAPACK's dsyevd (OpenBLAS carries LAPACK), for the symmetric eigendecompositions of the Laplace
// posterior. Fortran calling convention: every argument by pointer, column-major.
typedef void (*dsyevd_function)(const char *, const char *, const int *, double *, const int *, double *, double *, const int *,
                                int *, const int *, int *);
typedef void (*dgemm_function)(int, int, int, int, int, int, double, const double *, int, const double *, int, double, double *, int);
static pthread_once_t lapack_once = PTHREAD_ONCE_INIT;
static dsyevd_function dsyevd;
static dgemm_function dgemm;

static void load_lapack(void) {
  if (!specbench_blas_load()) return;
  const char *chosen = getenv("SPECBENCH_OPENBLAS");
  void *library = dlopen(chosen && *chosen ? chosen : "libopenblas.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (library == NULL) library = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (library != NULL) {
    dsyevd = (dsyevd_function)dlsym(library, "dsyevd_");
    dgemm = (dgemm_function)dlsym(library, "cblas_dgemm");
  }
}

int specbench_dgemm_nt(int m, int n, int k, const double *a, const double *b, double *c) {
  pthread_once(&lapack_once, load_lapack);
  if (dgemm == NULL) return -1;
  if (m <= 0 || n <= 0) return 0;
  dgemm(row_major, no_transpose, transpose, m, n, k, 1.0, a, k, b, k, 0.0, c, n);
  return 0;
}

int specbench_dsyevd(int n, double *a, double *w) {
  pthread_once(&lapack_once, load_lapack);
  if (dsyevd == NULL) return -1;
  if (n <= 0) return 0;
  long lwork = 1 + 6 * (long)n + 2 * (long)n * (long)n, liwork = 3 + 5 * (long)n;
  if (lwork > 0x7fffffff) return -2;
  double *work = malloc(sizeof(double) * (size_t)lwork);
  int *iwork = malloc(sizeof(int) * (size_t)liwork);
  if (work == NULL || iwork == NULL) {
    free(work);
    free(iwork);
    return -2;
  }
  int info = 0, lw = (int)lwork, liw = (int)liwork;
  dsyevd("V", "U", &n, a, &n, w, work, &lw, iwork, &liw, &info);
  free(work);
  free(iwork);
  return info;
}
