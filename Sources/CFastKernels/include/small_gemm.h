// Matrix products too small for OpenBLAS to pay off: no packing, no threads, no call into a
// library — register-blocked loops over the operands where they lie. Compiled for AVX-512
// (16 lanes), AVX2 with FMA (8 lanes) and baseline x86-64 (4 lanes); the widest the CPU has is
// chosen when the program loads. Products use fused multiply-add where the CPU has it, as
// OpenBLAS's kernels do: results agree with sgemm's within float rounding, not bit for bit.
#ifndef SPECBENCH_SMALL_GEMM_H
#define SPECBENCH_SMALL_GEMM_H

#ifdef __cplusplus
extern "C" {
#endif

/// `c = op(a)·op(b)`, or `c += op(a)·op(b)` with `accumulate`, row-major as cblas_sgemm: c
/// `[m, n]` with row width `ldc`, op(a) `[m, k]`, op(b) `[k, n]`; `lda`/`ldb` are the row widths
/// of a and b as stored. `scratch` holds at least `specbench_small_gemm_scratch` floats for the
/// same operands (b transposed, for a·bᵀ with enough rows and columns to repay it), and may be
/// NULL when that is 0.
void specbench_small_gemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda, const float *b,
                          long ldb, int accumulate, float *c, long ldc, float *scratch);

/// The floats of scratch `specbench_small_gemm` needs for these operands (0 when none).
long specbench_small_gemm_scratch(int transpose_a, int transpose_b, long m, long n, long k);

/// The instruction set the small products use on this CPU: "avx512f", "avx2" or "baseline".
const char *specbench_small_gemm_isa(void);

/// For tests: `specbench_small_gemm` in the kernels of `isa` ("avx512f", "avx2" or "baseline")
/// whatever the CPU's widest is; returns 1, or 0 (and does nothing) when the CPU lacks `isa`.
int specbench_small_gemm_on(const char *isa, int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda,
                            const float *b, long ldb, int accumulate, float *c, long ldc, float *scratch);

#ifdef __cplusplus
}
#endif

#endif
