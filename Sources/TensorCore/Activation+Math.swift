import Foundation
import SpecKit

/// The activations' values and derivatives (PyTorch's definitions).
extension Activation {
  /// Whether the function acts on each element alone (all but softmax).
  public var isElementwise: Bool { self != .softmax }

  /// f(x) for an elementwise function.
  @inlinable
  public func value(_ x: Float) -> Float {
    switch self {
    case .identity: return x
    case .relu: return x > 0 ? x : 0
    case .leakyReLU(let alpha): return x > 0 ? x : Float(alpha) * x
    case .sigmoid: return Self.sigmoid(x)
    case .tanh: return Foundation.tanh(x)
    case .gelu: return 0.5 * x * (1 + erf(x * Float(0.5).squareRoot()))
    case .silu: return x * Self.sigmoid(x)
    // PyTorch's softplus (beta 1) returns x itself above the threshold 20.
    case .softplus: return x > 20 ? x : log1p(exp(x))
    case .elu: return x > 0 ? x : expm1(x)
    case .softmax: preconditionFailure("softmax is not elementwise; use Activation.softmaxRows")
    }
  }

  /// f′(x) for an elementwise function (at a kink, the derivative PyTorch uses: 0 for relu at 0,
  /// alpha for leaky_relu at 0).
  @inlinable
  public func derivative(_ x: Float) -> Float {
    switch self {
    case .identity: return 1
    case .relu: return x > 0 ? 1 : 0
    case .leakyReLU(let alpha): return x > 0 ? 1 : Float(alpha)
    case .sigmoid:
      let s = Self.sigmoid(x)
      return s * (1 - s)
    case .tanh:
      let t = Foundation.tanh(x)
      return 1 - t * t
    case .gelu:
      let cdf = 0.5 * (1 + erf(x * Float(0.5).squareRoot()))
      let pdf = exp(-0.5 * x * x) / Float(2 * Double.pi).squareRoot()
      return cdf + x * pdf
    case .silu:
      let s = Self.sigmoid(x)
      return s * (1 + x * (1 - s))
    case .softplus: return x > 20 ? 1 : Self.sigmoid(x)
    case .elu: return x > 0 ? 1 : exp(x)
    case .softmax: preconditionFailure("softmax is not elementwise; use Activation.softmaxBackwardRows")
    }
  }

  /// The logistic function, computed without overflow for large |x|.
  @inlinable
  public static func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + exp(-x)) }
    let e = exp(x)
    return e / (1 + e)
  }

  /// Softmax over each row of a `[rows, width]` matrix (max subtracted first, for stability).
  public static func softmaxRows(_ x: [Float], rows: Int, width: Int) -> [Float] {
    var out = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { softmaxRows(x, rows: rows, width: width, into: $0) } }
    return out
  }

  /// Softmax over each row, written to `out` (which may be `x` itself).
  package static func softmaxRows(_ x: UnsafeBufferPointer<Float>, rows: Int, width: Int, into out: UnsafeMutableBufferPointer<Float>) {
    for i in 0..<rows {
      let row = i * width
      var top = -Float.infinity
      for j in 0..<width { top = max(top, x[row + j]) }
      var sum: Float = 0
      for j in 0..<width {
        let e = exp(x[row + j] - top)
        out[row + j] = e
        sum += e
      }
      for j in 0..<width { out[row + j] /= sum }
    }
  }

  /// The gradient through a row softmax: dx = s ⊙ (g − Σ g ⊙ s), per row, written to `out`
  /// (which may be `g` itself).
  package static func softmaxBackwardRows(
    output s: UnsafeBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>, rows: Int, width: Int,
    into out: UnsafeMutableBufferPointer<Float>
  ) {
    for i in 0..<rows {
      let row = i * width
      var dot: Float = 0
      for j in 0..<width { dot += g[row + j] * s[row + j] }
      for j in 0..<width { out[row + j] = s[row + j] * (g[row + j] - dot) }
    }
  }

  /// f over a batch: elementwise, or softmax over the last axis.
  public func forward(_ x: Tensor) -> Tensor {
    var y = [Float](repeating: 0, count: x.count)
    let width = x.shape.last ?? 1
    x.scalars.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { forward(x, into: $0, width: width) } }
    return Tensor(shape: x.shape, scalars: y)
  }

  /// f of `x.count` values written to `y` (which may be `x` itself); softmax acts on rows of
  /// `width` values.
  package func forward(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, width: Int) {
    switch self {
    case .identity: for i in 0..<x.count { y[i] = x[i] }
    case .relu: for i in 0..<x.count { y[i] = x[i] > 0 ? x[i] : 0 }
    case .softmax: Self.softmaxRows(x, rows: x.count / width, width: width, into: y)
    default: for i in 0..<x.count { y[i] = value(x[i]) }
    }
  }

  /// The input gradient given the input `x`, the output `y = f(x)` and the output gradient.
  public func backward(input x: Tensor, output y: Tensor, gradient g: Tensor) -> Tensor {
    var dx = [Float](repeating: 0, count: x.count)
    let width = x.shape.last ?? 1
    x.scalars.withUnsafeBufferPointer { x in
      y.scalars.withUnsafeBufferPointer { y in
        g.scalars.withUnsafeBufferPointer { g in
          dx.withUnsafeMutableBufferPointer { backward(input: x, output: y, gradient: g, into: $0, width: width) }
        }
      }
    }
    return Tensor(shape: x.shape, scalars: dx)
  }

  /// The input gradient written to `dx` (which may be `g` itself) from the input `x`, the output
  /// `y` and the output gradient `g`; softmax acts on rows of `width` values.
  package func backward(
    input x: UnsafeBufferPointer<Float>, output y: UnsafeBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>,
    into dx: UnsafeMutableBufferPointer<Float>, width: Int
  ) {
    switch self {
    case .identity: for i in 0..<g.count { dx[i] = g[i] }
    case .relu: for i in 0..<g.count { dx[i] = g[i] * (x[i] > 0 ? 1 : 0) }
    case .softmax: Self.softmaxBackwardRows(output: y, gradient: g, rows: g.count / width, width: width, into: dx)
    default: for i in 0..<g.count { dx[i] = g[i] * derivative(x[i]) }
    }
  }
}
