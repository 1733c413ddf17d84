import Foundation
import SpecKit

/// The optimizers' update rules for one parameter, as `torch.optim` computes them (single-tensor
/// path): scalar coefficients in double precision, rounded once to float32, then the
/// elementwise operations in float32 in PyTorch's order — all of them for one element before the
/// next, in one pass over memory (each element's arithmetic is PyTorch's; only the order in which
/// elements are visited differs, which changes nothing).
public enum OptimizerMath {
  /// One parameter's state slots as views; a rule uses the ones its `OptimizerSpec.slots` lists.
  public struct SlotViews {
    public var momentumBuffer: UnsafeMutablePointer<Float>?
    public var expAvg: UnsafeMutablePointer<Float>?
    public var expAvgSq: UnsafeMutablePointer<Float>?
    public var maxExpAvgSq: UnsafeMutablePointer<Float>?
    public var squareAvg: UnsafeMutablePointer<Float>?
    public var gradAvg: UnsafeMutablePointer<Float>?
    public var sum: UnsafeMutablePointer<Float>?

    public init() {}

    /// Sets the view of the slot with the format's name (`exp_avg`, …).
    public mutating func set(_ name: String, _ view: UnsafeMutablePointer<Float>) {
      switch name {
      case "momentum_buffer": momentumBuffer = view
      case "exp_avg": expAvg = view
      case "exp_avg_sq": expAvgSq = view
      case "max_exp_avg_sq": maxExpAvgSq = view
      case "square_avg": squareAvg = view
      case "grad_avg": gradAvg = view
      case "sum": sum = view
      default: preconditionFailure("no optimizer slot is named \(name)")
      }
    }
  }

  /// Updates `param` in place from `grad`.
  ///
  /// - Parameters:
  ///   - slots: this parameter's state slots by the format's names (`exp_avg`, …), updated in place.
  ///   - step: the optimizer's update count including this one (t ≥ 1): Adam's bias correction,
  ///     Adagrad's decay, and SGD's first momentum step (where the buffer is set to the gradient).
  ///   - learningRate: the scheduled rate for this update.
  public static func update(
    _ optimizer: OptimizerSpec, param: inout [Float], grad: [Float], slots: inout [String: [Float]], step: Int, learningRate: Double
  ) {
    // Each slot is taken out of the dictionary while it is written, so it is changed in place.
    // No rule has more than three slots.
    let names = optimizer.slots.map(\.name)
    func take(_ index: Int) -> [Float] { index < names.count ? slots.removeValue(forKey: names[index])! : [] }
    var (slot0, slot1, slot2) = (take(0), take(1), take(2))
    let count = param.count
    param.withUnsafeMutableBufferPointer { param in
      grad.withUnsafeBufferPointer { grad in
        slot0.withUnsafeMutableBufferPointer { s0 in
          slot1.withUnsafeMutableBufferPointer { s1 in
            slot2.withUnsafeMutableBufferPointer { s2 in
              guard count > 0 else { return }
              var views = SlotViews()
              for (name, slot) in zip(names, [s0, s1, s2]) { views.set(name, slot.baseAddress!) }
              update(
                optimizer, param: param.baseAddress!, grad: grad.baseAddress!, count: count, slots: views, step: step,
                learningRate: learningRate)
            }
          }
        }
      }
    }
    for (name, values) in zip(names, [slot0, slot1, slot2]) { slots[name] = values }
  }

  /// Updates `count` values of `param` from `grad` and the slots' views, in one pass.
  public static func update(
    _ optimizer: OptimizerSpec, param p: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int, slots: SlotViews, step: Int,
    learningRate lr: Double
  ) {
    switch optimizer {
    case .sgd(let o):
      let (wd, momentum, keep, rate) = (Float(o.weightDecay), Float(o.momentum), Float(1 - o.dampening), Float(-lr))
      let decays = o.weightDecay != 0
      guard o.momentum != 0, let buffer = slots.momentumBuffer else {
        for i in 0..<count { p[i] = p[i] + rate * (decays ? grad[i] + wd * p[i] : grad[i]) }
        return
      }
      let first = step == 1
      for i in 0..<count {
        var g = decays ? grad[i] + wd * p[i] : grad[i]
        buffer[i] = first ? g : buffer[i] * momentum + keep * g
        g = o.nesterov ? g + momentum * buffer[i] : buffer[i]
        p[i] = p[i] + rate * g
      }

    case .adam(let o), .adamw(let o):
      let decoupled = if case .adamw = optimizer { true } else { false }
      let shrink = Float(1 - lr * o.weightDecay), wd = Float(o.weightDecay)
      let coupled = !decoupled && o.weightDecay != 0
      let m = slots.expAvg!, v = slots.expAvgSq!, peak = slots.maxExpAvgSq
      let (beta2, oneMinusBeta2) = (Float(o.beta2), Float(1 - o.beta2))
      let bias1 = 1 - pow(o.beta1, Double(step))
      let bias2Root = Float((1 - pow(o.beta2, Double(step))).squareRoot())
      let stepSize = Float(-(lr / bias1))
      let eps = Float(o.eps)
      let lerp = Lerp(weight: 1 - o.beta1)
      for i in 0..<count {
        if decoupled { p[i] *= shrink }
        let g = coupled ? grad[i] + wd * p[i] : grad[i]
        m[i] = lerp(m[i], g)
        v[i] = v[i] * beta2 + oneMinusBeta2 * g * g
        var second = v[i]
        if let peak {
          peak[i] = max(peak[i], v[i])
          second = peak[i]
        }
        let denominator = second.squareRoot() / bias2Root + eps
        p[i] = p[i] + stepSize * (m[i] / denominator)
      }

    case .rmsprop(let o):
      let wd = Float(o.weightDecay), decays = o.weightDecay != 0
      let square = slots.squareAvg!, mean = slots.gradAvg, buffer = slots.momentumBuffer
      let (alpha, oneMinusAlpha) = (Float(o.alpha), Float(1 - o.alpha))
      let (eps, momentum, rate) = (Float(o.eps), Float(o.momentum), Float(-lr))
      let lerp = Lerp(weight: 1 - o.alpha)
      for i in 0..<count {
        let g = decays ? grad[i] + wd * p[i] : grad[i]
        square[i] = square[i] * alpha + oneMinusAlpha * g * g
        var average: Float
        if o.centered, let mean {
          mean[i] = lerp(mean[i], g)
          average = (square[i] - mean[i] * mean[i]).squareRoot()
        } else {
          average = square[i].squareRoot()
        }
        average += eps
        if o.momentum > 0, let buffer {
          buffer[i] = buffer[i] * momentum + g / average
          p[i] = p[i] + rate * buffer[i]
        } else {
          p[i] = p[i] + rate * (g / average)
        }
      }

    case .adagrad(let o):
      let wd = Float(o.weightDecay), decays = o.weightDecay != 0
      let clr = Float(-(lr / (1 + Double(step - 1) * o.lrDecay)))
      let sum = slots.sum!, eps = Float(o.eps)
      for i in 0..<count {
        let g = decays ? grad[i] + wd * p[i] : grad[i]
        sum[i] = sum[i] + g * g
        p[i] = p[i] + clr * (g / (sum[i].squareRoot() + eps))
      }
    }
  }

  /// PyTorch's `lerp_` toward b with weight w: `a + w·(b − a)` for w < 0.5,
  /// `b − (b − a)·(1 − w)` otherwise.
  struct Lerp {
    let weight: Float
    let rest: Float
    let small: Bool

    init(weight: Double) { (self.weight, rest, small) = (Float(weight), Float(1 - weight), weight < 0.5) }

    @inline(__always)
    func callAsFunction(_ a: Float, _ b: Float) -> Float { small ? a + weight * (b - a) : b - (b - a) * rest }
  }
}
