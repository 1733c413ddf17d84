// The fast backend's optimizer update rules, in C so that they run at the vector width of the
// machine: each function is compiled for AVX-512, AVX2 and baseline x86-64, and the loader picks
// the widest the CPU has (GCC/Clang `target_clones`). Each element's arithmetic is exactly that
// of TensorCore's `OptimizerMath` (PyTorch's order of operations, float32, no fused
// multiply-add), so the results are the same bits; the tests check that for every rule.
#ifndef SPECBENCH_FAST_KERNELS_H
#define SPECBENCH_FAST_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// The optimizer rules below return 1 when a value they wrote (a parameter or a slot) is ±inf
/// or NaN, 0 otherwise: the trainer then puts the last finite state back.
///
/// SGD: `buffer` is NULL without momentum. `keep` = 1 − dampening, `rate` = −lr; `first` is
/// non-zero on the first update (the buffer takes the gradient).
int specbench_sgd(float *p, const float *g, float *buffer, long n, float wd, int decays, float momentum, float keep,
                   int first, int nesterov, float rate);

/// Adam and AdamW: `vmax` is NULL without amsgrad. `lerp_*` are PyTorch's `lerp_` with weight
/// 1 − β1 (`lerp_small`: the weight is below one half); `shrink` = 1 − lr·wd (AdamW);
/// `step_size` = −lr / (1 − β1ᵗ); `bias2_root` = √(1 − β2ᵗ).
typedef struct {
  float beta2, one_minus_beta2;
  float lerp_weight, lerp_rest;
  int lerp_small;
  int decoupled, coupled;
  float shrink, wd;
  float bias2_root, step_size, eps;
} specbench_adam_coefficients;

int specbench_adam(float *p, const float *g, float *m, float *v, float *vmax, long n,
                    const specbench_adam_coefficients *c);

/// RMSprop: `grad_avg` is NULL unless centered, `buffer` NULL without momentum; `lerp_*` with
/// weight 1 − α; `rate` = −lr.
typedef struct {
  float alpha, one_minus_alpha;
  float lerp_weight, lerp_rest;
  int lerp_small;
  int decays;
  float wd, eps, momentum, rate;
} specbench_rmsprop_coefficients;

int specbench_rmsprop(float *p, const float *g, float *square_avg, float *grad_avg, float *buffer, long n,
                       const specbench_rmsprop_coefficients *c);

/// Adagrad: `clr` = −lr / (1 + (t − 1)·lr_decay).
int specbench_adagrad(float *p, const float *g, float *sum, long n, int decays, float wd, float clr, float eps);

// The elementwise passes around a dense layer's products, `rows` × `width` row-major. `bias` may
// be NULL (a layer without one); `z` and `y` may be the same memory.

/// 1 when none of the `n` values is ±inf or NaN, 0 otherwise (the trainer's check of every
/// gradient and parameter at every step, at the vector width of the machine).
int specbench_all_finite(const float *values, long n);

/// z += bias per row; y = max(z, 0) (ReLU; NaN gives 0).
void specbench_bias_relu(float *z, const float *bias, float *y, long rows, long width);

/// z += bias per row.
void specbench_bias_add(float *z, const float *bias, long rows, long width);

/// ReLU's backward pass in place: g = g·(z > 0 ? 1 : 0) (a product, so that an infinite or NaN
/// gradient stays NaN as in the plain rule); and, when `bias_gradient` is not NULL, the bias
/// gradient Σ over rows of the result, summed row after row from zero.
void specbench_relu_backward(float *g, const float *z, float *bias_gradient, long rows, long width);

/// The bias gradient Σ over rows of g, summed row after row from zero.
void specbench_bias_gradient(const float *g, float *bias_gradient, long rows, long width);

/// The widest instruction set the kernels use on this CPU: "avx512f", "avx2" or "baseline".
const char *specbench_fast_kernels_isa(void);

#ifdef __cplusplus
}
#endif

#endif
