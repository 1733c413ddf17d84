// OpenBLAS (BSD-3-Clause), loaded when the fast backend first needs it rather than linked, so
// that SpecBench starts, and the reference backend works, on a machine without it; the fast
// backend then says what to install. OpenBLAS chooses its kernels for the CPU when it loads
// (or as OPENBLAS_CORETYPE says). SPECBENCH_OPENBLAS, when set, names the library to load
// instead of libopenblas.so.0 (another build, or a path).
#ifndef SPECBENCH_BLAS_LOADER_H
#define SPECBENCH_BLAS_LOADER_H

#ifdef __cplusplus
extern "C" {
#endif

/// Loads OpenBLAS once (thread-safe); 1 when its sgemm can be called, 0 otherwise.
int specbench_blas_load(void);

/// Why loading failed (the loader's message), or NULL.
const char *specbench_blas_error(void);

/// OpenBLAS's name for the kernels it uses ("SkylakeX", "Haswell", …), or "unknown".
const char *specbench_blas_core(void);

/// Sets OpenBLAS's thread count (when `threads` > 0) and returns the count it had, or -1 when
/// OpenBLAS or its thread functions are missing. Call from one thread, between products.
int specbench_blas_threads(int threads);

/// Begins a stretch in which OpenBLAS runs each product on the calling thread: for work that
/// splits itself over the cores. Stretches may overlap, from any threads (several trainers at
/// once): the first sets one thread, and the last to end puts back the count the first found,
/// so that no trainer's stretch ends another's or leaves OpenBLAS on one thread.
void specbench_blas_single_begin(void);

/// Ends a stretch begun by `specbench_blas_single_begin`.
void specbench_blas_single_end(void);

/// The thread count OpenBLAS has outside the stretches (the one the last end puts back), or -1.
int specbench_blas_threads_outside_stretches(void);

/// `c = op(a)·op(b) + beta·c`, row-major, c `[m, n]`: cblas_sgemm with alpha 1. Call only after
/// `specbench_blas_load` returned 1.
void specbench_sgemm(int transpose_a, int transpose_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc);

/// The eigenvalues (ascending, into `w`) and eigenvectors of the symmetric `n × n` matrix `a`
/// (row-major or column-major alike), with OpenBLAS's LAPACK `dsyevd`: on return row k of `a`
/// (read row-major) is the eigenvector of `w[k]`. 0 on success, -1 when OpenBLAS or its dsyevd
/// cannot be loaded, -2 when the workspace cannot be had, LAPACK's `info` otherwise.
int specbench_dsyevd(int n, double *a, double *w);

/// `c = a·bᵀ` in double precision, row-major: a `[m, k]`, b `[n, k]`, c `[m, n]` (OpenBLAS's
/// cblas_dgemm). 0 on success, -1 when OpenBLAS cannot be loaded.
int specbench_dgemm_nt(int m, int n, int k, const double *a, const double *b, double *c);

#ifdef __cplusplus
}
#endif

#endif
