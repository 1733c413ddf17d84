import Foundation
import SpecKit

/// The optimizers' update rules for one parameter, as `torch.optim` computes them (single-tensor
/// path): scalar coefficients in double precision, rounded once to float32, then the
/// elementwise operations in float32 in PyTorch's order.
public enum OptimizerMath {
  /// Updates `param` in place from `grad`.
  ///
  /// - Parameters:
  ///   - slots: this parameter's state slots by the format's names (`exp_avg`, …), updated in place.
  ///   - step: the optimizer's update count including this one (t ≥ 1): Adam's bias correction,
  ///     Adagrad's decay, and SGD's first momentum step (where the buffer is set to the gradient).
  ///   - learningRate: the scheduled rate for this update.
  ///
  /// Slots are taken out of `slots` while they are updated and put back, so that each is
  /// modified in place rather than copied.
  public static func update(
    _ optimizer: OptimizerSpec, param: inout [Float], grad gradIn: [Float], slots: inout [String: [Float]], step: Int,
    learningRate lr: Double
  ) {
    let count = param.count
    switch optimizer {
    case .sgd(let o):
      var g = coupledDecay(gradIn, param, o.weightDecay)
      if o.momentum != 0 {
        var buffer = slots.removeValue(forKey: "momentum_buffer")!
        if step == 1 {
          buffer = g
        } else {
          let (momentum, keep) = (Float(o.momentum), Float(1 - o.dampening))
          for i in 0..<count { buffer[i] = buffer[i] * momentum + keep * g[i] }
        }
        if o.nesterov {
          let momentum = Float(o.momentum)
          for i in 0..<count { g[i] = g[i] + momentum * buffer[i] }
        } else {
          g = buffer
        }
        slots["momentum_buffer"] = buffer
      }
      let rate = Float(-lr)
      for i in 0..<count { param[i] = param[i] + rate * g[i] }

    case .adam(let o), .adamw(let o):
      var g = gradIn
      if case .adamw = optimizer {
        let shrink = Float(1 - lr * o.weightDecay)
        for i in 0..<count { param[i] *= shrink }
      } else {
        g = coupledDecay(gradIn, param, o.weightDecay)
      }
      var m = slots.removeValue(forKey: "exp_avg")!, v = slots.removeValue(forKey: "exp_avg_sq")!
      lerp(&m, toward: g, weight: 1 - o.beta1)
      let (beta2, oneMinusBeta2) = (Float(o.beta2), Float(1 - o.beta2))
      for i in 0..<count { v[i] = v[i] * beta2 + oneMinusBeta2 * g[i] * g[i] }
      let bias1 = 1 - pow(o.beta1, Double(step))
      let bias2Root = Float((1 - pow(o.beta2, Double(step))).squareRoot())
      let stepSize = Float(-(lr / bias1))
      let eps = Float(o.eps)
      var second = v
      if o.amsgrad {
        var peak = slots.removeValue(forKey: "max_exp_avg_sq")!
        for i in 0..<count { peak[i] = max(peak[i], v[i]) }
        second = peak
        slots["max_exp_avg_sq"] = peak
      }
      for i in 0..<count {
        let denominator = second[i].squareRoot() / bias2Root + eps
        param[i] = param[i] + stepSize * (m[i] / denominator)
      }
      slots["exp_avg"] = m
      slots["exp_avg_sq"] = v

    case .rmsprop(let o):
      let g = coupledDecay(gradIn, param, o.weightDecay)
      var square = slots.removeValue(forKey: "square_avg")!
      let (alpha, oneMinusAlpha) = (Float(o.alpha), Float(1 - o.alpha))
      for i in 0..<count { square[i] = square[i] * alpha + oneMinusAlpha * g[i] * g[i] }
      var average = [Float](repeating: 0, count: count)
      if o.centered {
        var mean = slots.removeValue(forKey: "grad_avg")!
        lerp(&mean, toward: g, weight: 1 - o.alpha)
        for i in 0..<count { average[i] = (square[i] - mean[i] * mean[i]).squareRoot() }
        slots["grad_avg"] = mean
      } else {
        for i in 0..<count { average[i] = square[i].squareRoot() }
      }
      let eps = Float(o.eps)
      for i in 0..<count { average[i] += eps }
      if o.momentum > 0 {
        var buffer = slots.removeValue(forKey: "momentum_buffer")!
        let momentum = Float(o.momentum)
        for i in 0..<count { buffer[i] = buffer[i] * momentum + g[i] / average[i] }
        let rate = Float(-lr)
        for i in 0..<count { param[i] = param[i] + rate * buffer[i] }
        slots["momentum_buffer"] = buffer
      } else {
        let rate = Float(-lr)
        for i in 0..<count { param[i] = param[i] + rate * (g[i] / average[i]) }
      }
      slots["square_avg"] = square

    case .adagrad(let o):
      let g = coupledDecay(gradIn, param, o.weightDecay)
      let clr = Float(-(lr / (1 + Double(step - 1) * o.lrDecay)))
      var sum = slots.removeValue(forKey: "sum")!
      for i in 0..<count { sum[i] = sum[i] + g[i] * g[i] }
      let eps = Float(o.eps)
      for i in 0..<count { param[i] = param[i] + clr * (g[i] / (sum[i].squareRoot() + eps)) }
      slots["sum"] = sum
    }
  }

  /// g + wd·p (PyTorch's `grad.add(param, alpha=weight_decay)`), or g when wd is 0.
  static func coupledDecay(_ g: [Float], _ p: [Float], _ weightDecay: Double) -> [Float] {
    guard weightDecay != 0 else { return g }
    let wd = Float(weightDecay)
    var out = g
    for i in 0..<g.count { out[i] = g[i] + wd * p[i] }
    return out
  }

  /// PyTorch's `lerp_`: `a + w·(b − a)` for w < 0.5, `b − (b − a)·(1 − w)` otherwise.
  static func lerp(_ a: inout [Float], toward b: [Float], weight: Double) {
    let w = Float(weight)
    if w < 0.5 {
      for i in 0..<a.count { a[i] = a[i] + w * (b[i] - a[i]) }
    } else {
      let rest = Float(1 - weight)
      for i in 0..<a.count { a[i] = b[i] - (b[i] - a[i]) * rest }
    }
  }
}
