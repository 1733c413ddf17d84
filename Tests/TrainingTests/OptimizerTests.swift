import Foundation
import SpecKit
import TensorCore
import Testing

/// PyTorch's update rules written out plainly in double precision, one element at a time, to
/// check `OptimizerMath` over several steps.
struct PyTorchRule {
  var optimizer: OptimizerSpec
  var p: [Double]
  var state: [String: [Double]] = [:]
  var t = 0

  init(_ optimizer: OptimizerSpec, _ p: [Double]) {
    self.optimizer = optimizer
    self.p = p
    for slot in optimizer.slots { state[slot.slot.rawValue] = Array(repeating: Double(slot.initialValue), count: p.count) }
  }

  mutating func step(_ grad: [Double], lr: Double) {
    t += 1
    for i in p.indices {
      var g = grad[i]
      switch optimizer {
      case .sgd(let o):
        g += o.weightDecay * p[i]
        if o.momentum != 0 {
          var b = state["momentum_buffer"]![i]
          b = t == 1 ? g : o.momentum * b + (1 - o.dampening) * g
          state["momentum_buffer"]![i] = b
          g = o.nesterov ? g + o.momentum * b : b
        }
        p[i] -= lr * g
      case .adam(let o), .adamw(let o):
        if case .adamw = optimizer { p[i] *= 1 - lr * o.weightDecay } else { g += o.weightDecay * p[i] }
        let m = o.beta1 * state["exp_avg"]![i] + (1 - o.beta1) * g
        let v = o.beta2 * state["exp_avg_sq"]![i] + (1 - o.beta2) * g * g
        state["exp_avg"]![i] = m
        state["exp_avg_sq"]![i] = v
        var vUsed = v
        if o.amsgrad {
          vUsed = max(state["max_exp_avg_sq"]![i], v)
          state["max_exp_avg_sq"]![i] = vUsed
        }
        let mHat = m / (1 - pow(o.beta1, Double(t)))
        let vHat = vUsed / (1 - pow(o.beta2, Double(t)))
        p[i] -= lr * mHat / (vHat.squareRoot() + o.eps)
      case .rmsprop(let o):
        g += o.weightDecay * p[i]
        let sq = o.alpha * state["square_avg"]![i] + (1 - o.alpha) * g * g
        state["square_avg"]![i] = sq
        var avg = sq
        if o.centered {
          let ga = o.alpha * state["grad_avg"]![i] + (1 - o.alpha) * g
          state["grad_avg"]![i] = ga
          avg = sq - ga * ga
        }
        let denominator = avg.squareRoot() + o.eps
        if o.momentum > 0 {
          let b = o.momentum * state["momentum_buffer"]![i] + g / denominator
          state["momentum_buffer"]![i] = b
          p[i] -= lr * b
        } else {
          p[i] -= lr * g / denominator
        }
      case .adagrad(let o):
        g += o.weightDecay * p[i]
        let clr = lr / (1 + Double(t - 1) * o.lrDecay)
        let s = state["sum"]![i] + g * g
        state["sum"]![i] = s
        p[i] -= clr * g / (s.squareRoot() + o.eps)
      case .lbfgs:
        Issue.record("lbfgs is not elementwise: LBFGSTests checks it against its own transcription")
      }
    }
  }
}

@Suite("Optimizers follow PyTorch's rules")
struct OptimizerTests {
  static let cases: [OptimizerSpec] = [
    .sgd(.init(lr: 0.1)),
    .sgd(.init(lr: 0.1, weightDecay: 0.01)),
    .sgd(.init(lr: 0.05, momentum: 0.9)),
    .sgd(.init(lr: 0.05, momentum: 0.9, dampening: 0.3)),
    .sgd(.init(lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.001)),
    .adam(.init(lr: 0.01, weightDecay: 0)),
    .adam(.init(lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05)),
    .adam(.init(lr: 0.01, weightDecay: 0, amsgrad: true)),
    .adamw(.init(lr: 0.01, weightDecay: 0.1)),
    .adamw(.init(lr: 0.02, weightDecay: 0.01, amsgrad: true)),
    .rmsprop(.init(lr: 0.01)),
    .rmsprop(.init(lr: 0.01, alpha: 0.9, momentum: 0.5, weightDecay: 0.01)),
    .rmsprop(.init(lr: 0.005, centered: true)),
    .rmsprop(.init(lr: 0.005, momentum: 0.3, centered: true)),
    .adagrad(.init(lr: 0.1)),
    .adagrad(.init(lr: 0.1, lrDecay: 0.05, initialAccumulatorValue: 0.2, weightDecay: 0.01)),
  ]

  @Test(arguments: cases)
  func severalStepsMatchTheRuleInDouble(optimizer: OptimizerSpec) {
    let start: [Float] = [0.5, -1.25, 2.0, 0.0, -0.03]
    var param = start
    var slots = Dictionary(
      uniqueKeysWithValues: optimizer.slots.map { ($0.slot.rawValue, [Float](repeating: $0.initialValue, count: start.count)) })
    var rule = PyTorchRule(optimizer, start.map(Double.init))
    let schedule = ScheduleSpec.step(stepSize: 3, gamma: 0.5)
    for t in 1...8 {
      // Gradients that change sign and size from step to step.
      let grad: [Float] = (0..<start.count).map { i in Float(sin(Double(t * 3 + i)) * (1 + Double(i)) / 2) }
      let lr = schedule.learningRate(at: t, base: optimizer.learningRate)
      OptimizerMath.update(optimizer, param: &param, grad: grad, slots: &slots, step: t, learningRate: lr)
      rule.step(grad.map(Double.init), lr: lr)
    }
    for i in start.indices {
      #expect(abs(Double(param[i]) - rule.p[i]) <= 1e-5 * max(1, abs(rule.p[i])), "\(optimizer) p[\(i)]: \(param[i]) vs \(rule.p[i])")
    }
    for (name, values) in rule.state {
      for i in values.indices {
        #expect(abs(Double(slots[name]![i]) - values[i]) <= 1e-5 * max(1, abs(values[i])), "\(optimizer) \(name)[\(i)]")
      }
    }
  }

  /// First steps worked by hand.
  @Test func handWorkedFirstSteps() {
    func one(_ optimizer: OptimizerSpec, p: Float, g: Float, lr: Double? = nil) -> (Float, [String: [Float]]) {
      var param = [p]
      var slots = Dictionary(uniqueKeysWithValues: optimizer.slots.map { ($0.slot.rawValue, [$0.initialValue]) })
      OptimizerMath.update(optimizer, param: &param, grad: [g], slots: &slots, step: 1, learningRate: lr ?? optimizer.learningRate)
      return (param[0], slots)
    }
    // Adam: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 → p = 1 − 0.1 · 0.5 / (0.5 + 1e-8) ≈ 0.9.
    let adam = one(.adam(.init(lr: 0.1, weightDecay: 0)), p: 1, g: 0.5)
    #expect(abs(adam.0 - 0.9) < 1e-6)
    #expect(adam.1["exp_avg"] == [0.05] && abs(adam.1["exp_avg_sq"]![0] - 0.00025) < 1e-10)
    // AdamW shrinks first: p = 1·(1 − 0.1·0.5) = 0.95, then the same Adam step: 0.85.
    #expect(abs(one(.adamw(.init(lr: 0.1, weightDecay: 0.5)), p: 1, g: 0.5).0 - 0.85) < 1e-6)
    // Adam with coupled decay: g = 0.5 + 0.5·1 = 1; m̂/sqrt(v̂) = 1 → p = 0.9.
    #expect(abs(one(.adam(.init(lr: 0.1, weightDecay: 0.5)), p: 1, g: 0.5).0 - 0.9) < 1e-6)
    // SGD with momentum and dampening: the first buffer is the gradient itself (PyTorch).
    let sgd = one(.sgd(.init(lr: 0.1, momentum: 0.9, dampening: 0.5)), p: 1, g: 2)
    #expect(sgd.1["momentum_buffer"] == [2])
    #expect(abs(sgd.0 - 0.8) < 1e-6)
    // Nesterov: buffer 2, step with g + 0.9·2 = 3.8 → p = 1 − 0.38.
    #expect(abs(one(.sgd(.init(lr: 0.1, momentum: 0.9, nesterov: true)), p: 1, g: 2).0 - 0.62) < 1e-6)
    // RMSprop: square_avg = 0.01·4 = 0.04 → p = 1 − 0.01·2/(0.2 + 1e-8).
    #expect(abs(one(.rmsprop(.init(lr: 0.01)), p: 1, g: 2).0 - 0.9) < 1e-6)
    // Adagrad with an initial accumulator 5: sum = 9 → p = 1 − 0.3·2/3 = 0.8.
    #expect(abs(one(.adagrad(.init(lr: 0.3, initialAccumulatorValue: 5)), p: 1, g: 2).0 - 0.8) < 1e-6)
  }

  @Test func adagradLearningRateDecays() {
    var param: [Float] = [0]
    var slots: [String: [Float]] = ["sum": [0]]
    let optimizer = OptimizerSpec.adagrad(.init(lr: 1, lrDecay: 1, eps: 0))
    // Step 3: clr = 1/(1 + 2·1) = 1/3; sum = 3 after three unit gradients → Δ = −(1/3)/sqrt(3).
    for t in 1...2 { OptimizerMath.update(optimizer, param: &param, grad: [1], slots: &slots, step: t, learningRate: 1) }
    let before = param[0]
    OptimizerMath.update(optimizer, param: &param, grad: [1], slots: &slots, step: 3, learningRate: 1)
    #expect(abs(Double(param[0] - before) + 1.0 / 3 / 3.0.squareRoot()) < 1e-6)
  }
}
