import Foundation
import SpecKit

/// The optimizers' update rules for one parameter, as `torch.optim` computes them (single-tensor
/// path): scalar coefficients in double precision, rounded once to float32, then the
/// elementwise operations in float32 in PyTorch's order — all of them for one element before the
/// next, in one pass over memory (each element's arithmetic is PyTorch's; only the order in which
/// elements are visited differs, which changes nothing).
public enum OptimizerMath {
  /// One parameter's state slots as views; a rule uses the ones its `OptimizerSpec.slots` lists.
  package struct SlotViews {
    package var momentumBuffer: UnsafeMutablePointer<Float>?
    package var expAvg: UnsafeMutablePointer<Float>?
    package var expAvgSq: UnsafeMutablePointer<Float>?
    package var maxExpAvgSq: UnsafeMutablePointer<Float>?
    package var squareAvg: UnsafeMutablePointer<Float>?
    package var gradAvg: UnsafeMutablePointer<Float>?
    package var sum: UnsafeMutablePointer<Float>?

    package init() {}

    /// The views of the elements from `offset` on.
    package func advanced(by offset: Int) -> SlotViews {
      var views = self
      for path in [\SlotViews.momentumBuffer, \.expAvg, \.expAvgSq, \.maxExpAvgSq, \.squareAvg, \.gradAvg, \.sum] {
        views[keyPath: path] = self[keyPath: path].map { $0 + offset }
      }
      return views
    }

    /// Sets the view of a slot.
    package mutating func set(_ slot: OptimizerSlot, _ view: UnsafeMutablePointer<Float>) {
      switch slot {
      case .momentumBuffer: momentumBuffer = view
      case .expAvg: expAvg = view
      case .expAvgSq: expAvgSq = view
      case .maxExpAvgSq: maxExpAvgSq = view
      case .squareAvg: squareAvg = view
      case .gradAvg: gradAvg = view
      case .sum: sum = view
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
    let names = optimizer.slots.map(\.slot)
    func take(_ index: Int) -> [Float] { index < names.count ? slots.removeValue(forKey: names[index].rawValue)! : [] }
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
    for (slot, values) in zip(names, [slot0, slot1, slot2]) { slots[slot.rawValue] = values }
  }

  /// A rule's scalar coefficients for one update: computed in double precision from the spec,
  /// the step and the learning rate, and rounded once to float32, as `torch.optim` does. The
  /// elementwise passes here and the fast backend's vector kernels both start from these.
  public enum Coefficients: Sendable {
    case sgd(SGD)
    case adam(Adam)
    case rmsprop(RMSprop)
    case adagrad(Adagrad)

    public struct SGD: Sendable {
      /// Weight decay, added to the gradient when `decays`.
      public let wd: Float
      public let decays: Bool
      public let momentum: Float
      /// 1 − dampening.
      public let keep: Float
      /// −lr.
      public let rate: Float
      /// Whether the momentum buffer is used (momentum > 0), and this is its first update.
      public let usesMomentum: Bool
      public let first: Bool
      public let nesterov: Bool
    }

    public struct Adam: Sendable {
      /// AdamW: `p ← p·shrink` first, with shrink = 1 − lr·wd.
      public let decoupled: Bool
      public let shrink: Float
      /// Adam with weight decay: `g ← g + wd·p`.
      public let coupled: Bool
      public let wd: Float
      public let beta2: Float
      public let oneMinusBeta2: Float
      /// −lr / (1 − β1ᵗ).
      public let stepSize: Float
      /// √(1 − β2ᵗ).
      public let bias2Root: Float
      public let eps: Float
      /// `lerp_` toward the gradient with weight 1 − β1.
      public let lerp: Lerp
    }

    public struct RMSprop: Sendable {
      public let decays: Bool
      public let wd: Float
      public let alpha: Float
      public let oneMinusAlpha: Float
      public let eps: Float
      public let momentum: Float
      /// Whether the momentum buffer is used (momentum > 0), and whether the gradient's average
      /// is (centered).
      public let usesMomentum: Bool
      public let centered: Bool
      /// −lr.
      public let rate: Float
      /// `lerp_` of the gradient average (centered) with weight 1 − α.
      public let lerp: Lerp
    }

    public struct Adagrad: Sendable {
      public let decays: Bool
      public let wd: Float
      /// −lr / (1 + (t − 1)·lr_decay).
      public let clr: Float
      public let eps: Float
    }

    /// The coefficients of update `step` (t ≥ 1) at `learningRate`.
    public init(_ optimizer: OptimizerSpec, step: Int, learningRate lr: Double) {
      switch optimizer {
      case .sgd(let o):
        self = .sgd(
          SGD(
            wd: Float(o.weightDecay), decays: o.weightDecay != 0, momentum: Float(o.momentum), keep: Float(1 - o.dampening),
            rate: Float(-lr), usesMomentum: o.momentum != 0, first: step == 1, nesterov: o.nesterov))
      case .adam(let o), .adamw(let o):
        let decoupled = if case .adamw = optimizer { true } else { false }
        let bias1 = 1 - pow(o.beta1, Double(step))
        self = .adam(
          Adam(
            decoupled: decoupled, shrink: Float(1 - lr * o.weightDecay), coupled: !decoupled && o.weightDecay != 0,
            wd: Float(o.weightDecay), beta2: Float(o.beta2), oneMinusBeta2: Float(1 - o.beta2), stepSize: Float(-(lr / bias1)),
            bias2Root: Float((1 - pow(o.beta2, Double(step))).squareRoot()), eps: Float(o.eps), lerp: Lerp(weight: 1 - o.beta1)))
      case .rmsprop(let o):
        self = .rmsprop(
          RMSprop(
            decays: o.weightDecay != 0, wd: Float(o.weightDecay), alpha: Float(o.alpha), oneMinusAlpha: Float(1 - o.alpha),
            eps: Float(o.eps), momentum: Float(o.momentum), usesMomentum: o.momentum > 0, centered: o.centered, rate: Float(-lr),
            lerp: Lerp(weight: 1 - o.alpha)))
      case .adagrad(let o):
        self = .adagrad(
          Adagrad(
            decays: o.weightDecay != 0, wd: Float(o.weightDecay), clr: Float(-(lr / (1 + Double(step - 1) * o.lrDecay))),
            eps: Float(o.eps)))
      case .lbfgs:
        preconditionFailure("lbfgs is not an elementwise rule: it runs as Backends' LBFGSRule, never through these coefficients")
      }
    }
  }

  /// Updates `count` values of `param` from `grad` and the slots' views, in one pass, eight
  /// elements at a time (each lane's arithmetic is the scalar rule's, so the result is the same).
  package static func update(
    _ optimizer: OptimizerSpec, param p: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int, slots: SlotViews, step: Int,
    learningRate lr: Double
  ) {
    switch Coefficients(optimizer, step: step, learningRate: lr) {
    case .sgd(let c):
      let buffer = c.usesMomentum ? slots.momentumBuffer : nil
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        var g = lanes.load(grad)
        if c.decays { g = g + c.wd * x }
        if let buffer {
          let b = c.first ? g : lanes.load(buffer) * c.momentum + c.keep * g
          lanes.store(b, buffer)
          g = c.nesterov ? g + c.momentum * b : b
        }
        x = x + c.rate * g
        lanes.store(x, p)
      }

    case .adam(let c):
      let m = slots.expAvg!, v = slots.expAvgSq!, peak = slots.maxExpAvgSq
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        if c.decoupled { x *= c.shrink }
        var g = lanes.load(grad)
        if c.coupled { g = g + c.wd * x }
        let mean = c.lerp(lanes.load(m), g)
        lanes.store(mean, m)
        let square = lanes.load(v) * c.beta2 + c.oneMinusBeta2 * g * g
        lanes.store(square, v)
        var second = square
        if let peak {
          second = pointwiseMax(lanes.load(peak), square)
          lanes.store(second, peak)
        }
        let denominator = second.squareRoot() / c.bias2Root + c.eps
        x = x + c.stepSize * (mean / denominator)
        lanes.store(x, p)
      }

    case .rmsprop(let c):
      let square = slots.squareAvg!, average = c.centered ? slots.gradAvg : nil, buffer = c.usesMomentum ? slots.momentumBuffer : nil
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        var g = lanes.load(grad)
        if c.decays { g = g + c.wd * x }
        let s = lanes.load(square) * c.alpha + c.oneMinusAlpha * g * g
        lanes.store(s, square)
        var denominator: SIMD8<Float>
        if let average {
          let mu = c.lerp(lanes.load(average), g)
          lanes.store(mu, average)
          denominator = (s - mu * mu).squareRoot()
        } else {
          denominator = s.squareRoot()
        }
        denominator += c.eps
        if let buffer {
          let b = lanes.load(buffer) * c.momentum + g / denominator
          lanes.store(b, buffer)
          x = x + c.rate * b
        } else {
          x = x + c.rate * (g / denominator)
        }
        lanes.store(x, p)
      }

    case .adagrad(let c):
      let sum = slots.sum!
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        var g = lanes.load(grad)
        if c.decays { g = g + c.wd * x }
        let total = lanes.load(sum) + g * g
        lanes.store(total, sum)
        x = x + c.clr * (g / (total.squareRoot() + c.eps))
        lanes.store(x, p)
      }
    }
  }

  /// Eight consecutive elements from `start`, of which the first `count` exist (the last chunk
  /// of a tensor may be short; its missing lanes read as 0 and are never written).
  struct Lanes {
    let start: Int
    let count: Int

    /// Calls `body` on the chunks of `total` elements in order.
    @inline(__always)
    static func forEach(_ total: Int, _ body: (Lanes) -> Void) {
      var start = 0
      while start + 8 <= total {
        body(Lanes(start: start, count: 8))
        start += 8
      }
      if start < total { body(Lanes(start: start, count: total - start)) }
    }

    @inline(__always)
    func load(_ base: UnsafePointer<Float>) -> SIMD8<Float> {
      if count == 8 { return UnsafeRawPointer(base + start).loadUnaligned(as: SIMD8<Float>.self) }
      var value = SIMD8<Float>()
      for lane in 0..<count { value[lane] = base[start + lane] }
      return value
    }

    @inline(__always)
    func load(_ base: UnsafeMutablePointer<Float>) -> SIMD8<Float> { load(UnsafePointer(base)) }

    @inline(__always)
    func store(_ value: SIMD8<Float>, _ base: UnsafeMutablePointer<Float>) {
      if count == 8 { return UnsafeMutableRawPointer(base + start).storeBytes(of: value, as: SIMD8<Float>.self) }
      for lane in 0..<count { base[start + lane] = value[lane] }
    }
  }

  /// PyTorch's `lerp_` toward b with weight w: `a + w·(b − a)` for w < 0.5,
  /// `b − (b − a)·(1 − w)` otherwise.
  public struct Lerp: Sendable {
    public let weight: Float
    /// 1 − weight.
    public let rest: Float
    /// Whether the weight is below one half (which of the two forms applies).
    public let small: Bool

    init(weight: Double) { (self.weight, rest, small) = (Float(weight), Float(1 - weight), weight < 0.5) }

    @inline(__always)
    func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { small ? a + weight * (b - a) : b - (b - a) * rest }
  }
}
