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
    for i in 0..<rows {
      let row = x[i * width..<(i + 1) * width]
      let top = row.max() ?? 0
      var sum: Float = 0
      for j in 0..<width {
        let e = exp(x[i * width + j] - top)
        out[i * width + j] = e
        sum += e
      }
      for j in 0..<width { out[i * width + j] /= sum }
    }
    return out
  }

  /// The gradient through a row softmax: dx = s ⊙ (g − Σ g ⊙ s), per row.
  public static func softmaxBackwardRows(output s: [Float], gradient g: [Float], rows: Int, width: Int) -> [Float] {
    var out = [Float](repeating: 0, count: s.count)
    for i in 0..<rows {
      var dot: Float = 0
      for j in 0..<width { dot += g[i * width + j] * s[i * width + j] }
      for j in 0..<width { out[i * width + j] = s[i * width + j] * (g[i * width + j] - dot) }
    }
    return out
  }

  /// f over a batch: elementwise, or softmax over the last axis.
  public func forward(_ x: Tensor) -> Tensor {
    if isElementwise { return Tensor(shape: x.shape, scalars: x.scalars.map(value)) }
    let width = x.shape.last ?? 1
    return Tensor(shape: x.shape, scalars: Self.softmaxRows(x.scalars, rows: x.count / width, width: width))
  }

  /// The input gradient given the input `x`, the output `y = f(x)` and the output gradient.
  public func backward(input x: Tensor, output y: Tensor, gradient g: Tensor) -> Tensor {
    if isElementwise {
      var out = [Float](repeating: 0, count: x.count)
      for i in 0..<x.count { out[i] = g.scalars[i] * derivative(x.scalars[i]) }
      return Tensor(shape: x.shape, scalars: out)
    }
    let width = x.shape.last ?? 1
    return Tensor(
      shape: x.shape, scalars: Self.softmaxBackwardRows(output: y.scalars, gradient: g.scalars, rows: x.count / width, width: width))
  }
}
