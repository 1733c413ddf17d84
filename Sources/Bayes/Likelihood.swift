import Foundation
import SpecKit
import TensorCore

/// The likelihood a loss stands for, per sample: its log-density and a square root of its
/// Hessian in the outputs (Λ = LLᵀ, L's columns the output gradients the curvature backpropagates).
enum Likelihood {
  /// softmax_cross_entropy: categorical over the outputs.
  case categorical
  /// sigmoid_binary_cross_entropy: Bernoulli of the one output.
  case bernoulli
  /// mse: Gaussian with this noise standard deviation on every output.
  case gaussian(sigma: Double)

  init?(_ loss: LossSpec, noiseSigma: Double?) {
    switch loss {
    case .softmaxCrossEntropy: self = .categorical
    case .sigmoidBinaryCrossEntropy: self = .bernoulli
    case .mse: self = .gaussian(sigma: noiseSigma ?? 1)
    case .huber: return nil
    }
  }

  /// Columns of L per sample: C for the categorical and the Gaussian, 1 for the Bernoulli.
  func rootColumns(outputs width: Int) -> Int {
    switch self {
    case .bernoulli: 1
    case .categorical, .gaussian: width
    }
  }

  /// Column k of L for every sample, as a `[B, width]` output gradient.
  func rootColumn(_ k: Int, outputs f: Tensor) -> Tensor {
    let (rows, width) = (f.rows, f.rowWidth)
    var column = [Float](repeating: 0, count: rows * width)
    for n in 0..<rows {
      let row = n * width
      switch self {
      case .categorical:
        let p = Self.softmax(f.scalars[row..<row + width])
        let root = p[k].squareRoot()
        for c in 0..<width { column[row + c] = Float(root * ((c == k ? 1 : 0) - p[c])) }
      case .bernoulli:
        let p = Self.sigmoid(Double(f.scalars[row]))
        column[row] = Float((p * (1 - p)).squareRoot())
      case .gaussian(let sigma):
        column[row + k] = Float(1 / sigma)
      }
    }
    return Tensor(shape: [rows, width], scalars: column)
  }

  /// Σ over the samples of log p(y | f).
  func logLikelihood(outputs f: Tensor, targets: Targets) -> Double {
    let (rows, width) = (f.rows, f.rowWidth)
    var total = 0.0
    for n in 0..<rows {
      let row = n * width
      switch (self, targets) {
      case (.categorical, .classes(let labels)):
        let logits = f.scalars[row..<row + width].map(Double.init)
        let m = logits.max()!
        total += logits[labels[n]] - m - log(logits.reduce(0) { $0 + exp($1 - m) })
      case (.bernoulli, .classes(let labels)):
        let z = Double(f.scalars[row]), y = Double(labels[n])
        total -= max(z, 0) - z * y + log1p(exp(-abs(z)))
      case (.gaussian(let sigma), .values(let values)):
        for d in 0..<width {
          let r = Double(values.scalars[row + d]) - Double(f.scalars[row + d])
          total += -r * r / (2 * sigma * sigma) - 0.5 * log(2 * Double.pi * sigma * sigma)
        }
      default:
        preconditionFailure("the loss's targets do not match its likelihood")
      }
    }
    return total
  }

  static func softmax(_ logits: some Collection<Float>) -> [Double] { softmax(doubles: logits.map(Double.init)) }

  /// Softmax of double-precision logits.
  static func softmax(doubles logits: [Double]) -> [Double] {
    let m = logits.max() ?? 0
    let e = logits.map { exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
  }

  static func sigmoid(_ z: Double) -> Double { z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)) }
}
