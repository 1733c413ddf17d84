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

    /// The views of the elements from `offset` on.
    public func advanced(by offset: Int) -> SlotViews {
      var views = self
      for path in [\SlotViews.momentumBuffer, \.expAvg, \.expAvgSq, \.maxExpAvgSq, \.squareAvg, \.gradAvg, \.sum] {
        views[keyPath: path] = self[keyPath: path].map { $0 + offset }
      }
      return views
    }

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

  /// Updates `count` values of `param` from `grad` and the slots' views, in one pass, eight
  /// elements at a time (each lane's arithmetic is the scalar rule's, so the result is the same).
  public static func update(
    _ optimizer: OptimizerSpec, param p: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int, slots: SlotViews, step: Int,
    learningRate lr: Double
  ) {
    switch optimizer {
    case .sgd(let o):
      let (wd, momentum, keep, rate) = (Float(o.weightDecay), Float(o.momentum), Float(1 - o.dampening), Float(-lr))
      let decays = o.weightDecay != 0
      let buffer = o.momentum != 0 ? slots.momentumBuffer : nil
      let first = step == 1
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        var g = lanes.load(grad)
        if decays { g = g + wd * x }
        if let buffer {
          let b = first ? g : lanes.load(buffer) * momentum + keep * g
          lanes.store(b, buffer)
          g = o.nesterov ? g + momentum * b : b
        }
        x = x + rate * g
        lanes.store(x, p)
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
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        if decoupled { x *= shrink }
        var g = lanes.load(grad)
        if coupled { g = g + wd * x }
        let mean = lerp(lanes.load(m), g)
        lanes.store(mean, m)
        let square = lanes.load(v) * beta2 + oneMinusBeta2 * g * g
        lanes.store(square, v)
        var second = square
        if let peak {
          second = pointwiseMax(lanes.load(peak), square)
          lanes.store(second, peak)
        }
        let denominator = second.squareRoot() / bias2Root + eps
        x = x + stepSize * (mean / denominator)
        lanes.store(x, p)
      }

    case .rmsprop(let o):
      let wd = Float(o.weightDecay), decays = o.weightDecay != 0
      let square = slots.squareAvg!, mean = o.centered ? slots.gradAvg : nil, buffer = o.momentum > 0 ? slots.momentumBuffer : nil
      let (alpha, oneMinusAlpha) = (Float(o.alpha), Float(1 - o.alpha))
      let (eps, momentum, rate) = (Float(o.eps), Float(o.momentum), Float(-lr))
      let lerp = Lerp(weight: 1 - o.alpha)
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        var g = lanes.load(grad)
        if decays { g = g + wd * x }
        let s = lanes.load(square) * alpha + oneMinusAlpha * g * g
        lanes.store(s, square)
        var average: SIMD8<Float>
        if let mean {
          let mu = lerp(lanes.load(mean), g)
          lanes.store(mu, mean)
          average = (s - mu * mu).squareRoot()
        } else {
          average = s.squareRoot()
        }
        average += eps
        if let buffer {
          let b = lanes.load(buffer) * momentum + g / average
          lanes.store(b, buffer)
          x = x + rate * b
        } else {
          x = x + rate * (g / average)
        }
        lanes.store(x, p)
      }

    case .adagrad(let o):
      let wd = Float(o.weightDecay), decays = o.weightDecay != 0
      let clr = Float(-(lr / (1 + Double(step - 1) * o.lrDecay)))
      let sum = slots.sum!, eps = Float(o.eps)
      Lanes.forEach(count) { lanes in
        var x = lanes.load(p)
        var g = lanes.load(grad)
        if decays { g = g + wd * x }
        let total = lanes.load(sum) + g * g
        lanes.store(total, sum)
        x = x + clr * (g / (total.squareRoot() + eps))
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
  struct Lerp {
    let weight: Float
    let rest: Float
    let small: Bool

    init(weight: Double) { (self.weight, rest, small) = (Float(weight), Float(1 - weight), weight < 0.5) }

    @inline(__always)
    func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { small ? a + weight * (b - a) : b - (b - a) * rest }
  }
}
