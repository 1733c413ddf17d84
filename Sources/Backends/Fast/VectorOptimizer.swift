import CFastKernels
import SpecKit
import TensorCore

/// The optimizer rules at the machine's vector width: `OptimizerMath`'s coefficients, and its
/// elementwise arithmetic in the C kernels of `CFastKernels` (AVX-512 or AVX2 when the CPU has
/// them). Same bits as `OptimizerMath.update`, several times faster: Swift compiles `SIMD8` for
/// baseline x86-64, where its square root runs one lane at a time.
enum VectorOptimizer {
  /// Updates `count` values; returns false when a value written (a parameter or a slot) is
  /// not finite.
  @discardableResult
  static func update(
    _ optimizer: OptimizerSpec, param: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int,
    slots: OptimizerMath.SlotViews, step: Int, learningRate: Double
  ) -> Bool {
    let n = count
    switch OptimizerMath.Coefficients(optimizer, step: step, learningRate: learningRate) {
    case .sgd(let c):
      return specbench_sgd(
        param, grad, c.usesMomentum ? slots.momentumBuffer : nil, n, c.wd, c.decays ? 1 : 0, c.momentum, c.keep, c.first ? 1 : 0,
        c.nesterov ? 1 : 0, c.rate) == 0
    case .adam(let c):
      var k = specbench_adam_coefficients(
        beta2: c.beta2, one_minus_beta2: c.oneMinusBeta2, lerp_weight: c.lerp.weight, lerp_rest: c.lerp.rest,
        lerp_small: c.lerp.small ? 1 : 0, decoupled: c.decoupled ? 1 : 0, coupled: c.coupled ? 1 : 0, shrink: c.shrink, wd: c.wd,
        bias2_root: c.bias2Root, step_size: c.stepSize, eps: c.eps)
      return specbench_adam(param, grad, slots.expAvg!, slots.expAvgSq!, slots.maxExpAvgSq, n, &k) == 0
    case .rmsprop(let c):
      var k = specbench_rmsprop_coefficients(
        alpha: c.alpha, one_minus_alpha: c.oneMinusAlpha, lerp_weight: c.lerp.weight, lerp_rest: c.lerp.rest,
        lerp_small: c.lerp.small ? 1 : 0, decays: c.decays ? 1 : 0, wd: c.wd, eps: c.eps, momentum: c.momentum, rate: c.rate)
      return specbench_rmsprop(
        param, grad, slots.squareAvg!, c.centered ? slots.gradAvg : nil, c.usesMomentum ? slots.momentumBuffer : nil, n, &k) == 0
    case .adagrad(let c):
      return specbench_adagrad(param, grad, slots.sum!, n, c.decays ? 1 : 0, c.wd, c.clr, c.eps) == 0
    }
  }
}
