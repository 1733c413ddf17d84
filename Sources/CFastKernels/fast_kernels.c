// See include/fast_kernels.h. Every loop body below mirrors TensorCore/OptimizerMath.swift line by
// line; change both together (TrainingTests/FastKernelTests checks they agree bit for bit).
//
// No fused multiply-add: `a * b + c` must round twice, as PyTorch and the Swift rule do.
#pragma STDC FP_CONTRACT OFF
#include "fast_kernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define SPECBENCH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SPECBENCH_CLONES
#endif
#define SPECBENCH_INLINE static inline __attribute__((always_inline))

/// Square root and maximum as the Swift rule computes them: correctly rounded, and the number
/// over a quiet NaN (IEEE maxNum), without errno, so that the loops vectorize.
#if __has_builtin(__builtin_elementwise_sqrt)
SPECBENCH_INLINE float root(float x) { return __builtin_elementwise_sqrt(x); }
#else
SPECBENCH_INLINE float root(float x) { return __builtin_sqrtf(x); }
#endif
SPECBENCH_INLINE float larger(float a, float b) { return __builtin_fmaxf(a, b); }

/// 1 when x is ±inf or NaN (x − x is NaN then, 0 otherwise): a compare the loops vectorize.
SPECBENCH_INLINE int not_finite(float x) { return !(x - x == 0.0f); }

/// PyTorch's `lerp_(b, w)` from a: `a + w·(b − a)` for w < 0.5, `b − (b − a)·(1 − w)` otherwise.
SPECBENCH_INLINE float lerp(float a, float b, float weight, float rest, int small) {
  return small ? a + weight * (b - a) : b - (b - a) * rest;
}

// Each rule's loop is written once, as an always-inlined body with its pointer-presence flags as
// parameters, and called with constant flags: each call becomes its own branch-free loop.

SPECBENCH_INLINE int sgd_loop(float *restrict p, const float *restrict g, float *restrict buffer, long n, float wd, int decays,
                               float momentum, float keep, int first, int nesterov, float rate, const int has_buffer) {
#pragma clang fp contract(off)
  int bad = 0;
  for (long i = 0; i < n; i++) {
    float x = p[i];
    float gi = g[i];
    if (decays) gi = gi + wd * x;
    if (has_buffer) {
      float b = first ? gi : buffer[i] * momentum + keep * gi;
      buffer[i] = b;
      bad |= not_finite(b);
      gi = nesterov ? gi + momentum * b : b;
    }
    x = x + rate * gi;
    p[i] = x;
    bad |= not_finite(x);
  }
  return bad;
}

SPECBENCH_CLONES
int specbench_sgd(float *p, const float *g, float *buffer, long n, float wd, int decays, float momentum, float keep,
                  int first, int nesterov, float rate) {
  if (buffer)
    return sgd_loop(p, g, buffer, n, wd, decays, momentum, keep, first, nesterov, rate, 1);
  else
    return sgd_loop(p, g, buffer, n, wd, decays, momentum, keep, first, nesterov, rate, 0);
}

SPECBENCH_INLINE int adam_loop(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                                float *restrict vmax, long n, const specbench_adam_coefficients c, const int amsgrad) {
#pragma clang fp contract(off)
  int bad = 0;
  for (long i = 0; i < n; i++) {
    float x = p[i];
    if (c.decoupled) x *= c.shrink;
    float gi = g[i];
    if (c.coupled) gi = gi + c.wd * x;
    float mean = lerp(m[i], gi, c.lerp_weight, c.lerp_rest, c.lerp_small);
    m[i] = mean;
    float square = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    v[i] = square;
    float second = square;
    if (amsgrad) {
      second = larger(vmax[i], square);
      vmax[i] = second;
    }
    float denominator = root(second) / c.bias2_root + c.eps;
    x = x + c.step_size * (mean / denominator);
    p[i] = x;
    bad |= not_finite(x) | not_finite(mean) | not_finite(second);
  }
  return bad;
}

SPECBENCH_CLONES
int specbench_adam(float *p, const float *g, float *m, float *v, float *vmax, long n, const specbench_adam_coefficients *c) {
  if (vmax)
    return adam_loop(p, g, m, v, vmax, n, *c, 1);
  else
    return adam_loop(p, g, m, v, vmax, n, *c, 0);
}

SPECBENCH_INLINE int rmsprop_loop(float *restrict p, const float *restrict g, float *restrict square_avg,
                                   float *restrict grad_avg, float *restrict buffer, long n,
                                   const specbench_rmsprop_coefficients c, const int centered, const int has_buffer) {
#pragma clang fp contract(off)
  int bad = 0;
  for (long i = 0; i < n; i++) {
    float x = p[i];
    float gi = g[i];
    if (c.decays) gi = gi + c.wd * x;
    float s = square_avg[i] * c.alpha + c.one_minus_alpha * gi * gi;
    square_avg[i] = s;
    float average;
    if (centered) {
      float mu = lerp(grad_avg[i], gi, c.lerp_weight, c.lerp_rest, c.lerp_small);
      grad_avg[i] = mu;
      average = root(s - mu * mu);
    } else {
      average = root(s);
    }
    average += c.eps;
    if (has_buffer) {
      float b = buffer[i] * c.momentum + gi / average;
      buffer[i] = b;
      bad |= not_finite(b);
      x = x + c.rate * b;
    } else {
      x = x + c.rate * (gi / average);
    }
    p[i] = x;
    bad |= not_finite(x) | not_finite(average);
  }
  return bad;
}

SPECBENCH_CLONES
int specbench_rmsprop(float *p, const float *g, float *square_avg, float *grad_avg, float *buffer, long n,
                      const specbench_rmsprop_coefficients *c) {
  if (grad_avg && buffer)
    return rmsprop_loop(p, g, square_avg, grad_avg, buffer, n, *c, 1, 1);
  else if (grad_avg)
    return rmsprop_loop(p, g, square_avg, grad_avg, buffer, n, *c, 1, 0);
  else if (buffer)
    return rmsprop_loop(p, g, square_avg, grad_avg, buffer, n, *c, 0, 1);
  else
    return rmsprop_loop(p, g, square_avg, grad_avg, buffer, n, *c, 0, 0);
}

SPECBENCH_CLONES
int specbench_adagrad(float *restrict p, const float *restrict g, float *restrict sum, long n, int decays, float wd, float clr,
                      float eps) {
#pragma clang fp contract(off)
  int bad = 0;
  for (long i = 0; i < n; i++) {
    float x = p[i];
    float gi = g[i];
    if (decays) gi = gi + wd * x;
    float total = sum[i] + gi * gi;
    sum[i] = total;
    x = x + clr * (gi / (root(total) + eps));
    p[i] = x;
    bad |= not_finite(x) | not_finite(total);
  }
  return bad;
}

SPECBENCH_CLONES
void specbench_bias_relu(float *z, const float *bias, float *y, long rows, long width) {
  for (long r = 0; r < rows; r++) {
    float *zr = z + r * width, *yr = y + r * width;
    if (bias) {
      for (long j = 0; j < width; j++) {
        float v = zr[j] + bias[j];
        zr[j] = v;
        yr[j] = v > 0.0f ? v : 0.0f;
      }
    } else {
      for (long j = 0; j < width; j++) {
        float v = zr[j];
        yr[j] = v > 0.0f ? v : 0.0f;
      }
    }
  }
}

SPECBENCH_CLONES
void specbench_bias_add(float *restrict z, const float *restrict bias, long rows, long width) {
  for (long r = 0; r < rows; r++) {
    float *zr = z + r * width;
    for (long j = 0; j < width; j++) zr[j] += bias[j];
  }
}

SPECBENCH_CLONES
void specbench_relu_backward(float *restrict g, const float *restrict z, float *restrict bias_gradient, long rows, long width) {
  if (bias_gradient)
    for (long j = 0; j < width; j++) bias_gradient[j] = 0.0f;
  for (long r = 0; r < rows; r++) {
    float *gr = g + r * width;
    const float *zr = z + r * width;
    for (long j = 0; j < width; j++) gr[j] = gr[j] * (zr[j] > 0.0f ? 1.0f : 0.0f);
    if (bias_gradient)
      for (long j = 0; j < width; j++) bias_gradient[j] += gr[j];
  }
}

SPECBENCH_CLONES
void specbench_bias_gradient(const float *restrict g, float *restrict bias_gradient, long rows, long width) {
  for (long j = 0; j < width; j++) bias_gradient[j] = 0.0f;
  for (long r = 0; r < rows; r++) {
    const float *gr = g + r * width;
    for (long j = 0; j < width; j++) bias_gradient[j] += gr[j];
  }
}

SPECBENCH_CLONES
int specbench_all_finite(const float *values, long n) {
  // On the bits, so that no compiler setting can fold the test away: the exponent all ones is
  // ±inf or NaN. Sixteen lanes of flags or'ed together, one branch at the end.
  const unsigned *bits = (const unsigned *)values;
  unsigned bad = 0;
  for (long i = 0; i < n; i++) bad |= (bits[i] & 0x7F800000u) == 0x7F800000u;
  return bad == 0;
}

const char *specbench_fast_kernels_isa(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
  return "baseline";
}
