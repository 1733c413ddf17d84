import Foundation
import SpecKit

extension LossSpec {
  /// The mean loss of a batch and its gradient with respect to the output.
  ///
  /// `output` is `[batch, width]`. Sums are accumulated in double precision and rounded once.
  /// - mse: mean over all elements of (y − t)²; ∂ = 2(y − t)/N.
  /// - softmax_cross_entropy: mean over rows of logsumexp(y) − y[t]; ∂ = (softmax(y) − onehot(t))/B.
  /// - sigmoid_binary_cross_entropy: mean of max(y, 0) − y·t + log(1 + e^(−|y|)); ∂ = (σ(y) − t)/N.
  /// - huber: mean of ½d² where |d| < δ, δ(|d| − ½δ) elsewhere, d = y − t; ∂ = d or δ·sign(d), over N.
  public func evaluate(output: Tensor, targets: Targets) -> (loss: Float, gradient: Tensor) {
    var gradient = [Float](repeating: 0, count: output.count)
    let loss = output.scalars.withUnsafeBufferPointer { y in
      gradient.withUnsafeMutableBufferPointer { gradient in
        switch targets {
        case .classes(let labels):
          labels.withUnsafeBufferPointer { labels in
            evaluate(output: y, rows: output.rows, width: output.rowWidth, targets: .classes(labels), gradient: gradient)
          }
        case .values(let values):
          values.scalars.withUnsafeBufferPointer { values in
            evaluate(output: y, rows: output.rows, width: output.rowWidth, targets: .values(values), gradient: gradient)
          }
        }
      }
    }
    return (loss, Tensor(shape: output.shape, scalars: gradient))
  }

  /// The targets of a batch as a view, for `evaluate(output:rows:width:targets:gradient:)`.
  public enum TargetView {
    /// One class index per row.
    case classes(UnsafeBufferPointer<Int>)
    /// `rows × width` values.
    case values(UnsafeBufferPointer<Float>)

    /// The value compared with output (row, column): a class target is one-hot for a width above
    /// 1, the index itself (0 or 1) for width 1.
    @inline(__always)
    func value(row: Int, column: Int, width: Int) -> Float {
      switch self {
      case .values(let values): return values[row * width + column]
      case .classes(let labels): return width == 1 ? Float(labels[row]) : (labels[row] == column ? 1 : 0)
      }
    }
  }

  /// `evaluate(output:targets:)` on views: the mean loss of `rows × width` outputs, with its
  /// gradient written to `gradient` (same size), allocating nothing.
  package func evaluate(
    output y: UnsafeBufferPointer<Float>, rows: Int, width: Int, targets: TargetView, gradient: UnsafeMutableBufferPointer<Float>
  ) -> Float {
    var total = 0.0
    switch self {
    case .softmaxCrossEntropy:
      guard case .classes(let labels) = targets else { preconditionFailure("softmax_cross_entropy needs class targets") }
      let scale = 1 / Float(rows)
      for i in 0..<rows {
        let row = i * width
        var top = -Float.infinity
        for j in 0..<width { top = max(top, y[row + j]) }
        var sum: Float = 0
        for j in 0..<width { sum += exp(y[row + j] - top) }
        let logSum = log(sum) + top
        total += Double(logSum - y[row + labels[i]])
        for j in 0..<width { gradient[row + j] = exp(y[row + j] - logSum) * scale }
        gradient[row + labels[i]] -= scale
      }
      return Float(total / Double(rows))
    case .mse, .huber, .sigmoidBinaryCrossEntropy:
      let count = rows * width
      let n = Float(count)
      for i in 0..<count {
        let t = targets.value(row: i / width, column: i % width, width: width)
        let d = y[i] - t
        switch self {
        case .mse:
          total += Double(d * d)
          gradient[i] = 2 * d / n
        case .huber(let deltaValue):
          let delta = Float(deltaValue)
          if abs(d) < delta {
            total += Double(0.5 * d * d)
            gradient[i] = d / n
          } else {
            total += Double(delta * (abs(d) - 0.5 * delta))
            gradient[i] = (d > 0 ? delta : -delta) / n
          }
        default:
          total += Double(max(y[i], 0) - y[i] * t + log1p(exp(-abs(y[i]))))
          gradient[i] = (Activation.sigmoid(y[i]) - t) / n
        }
      }
      return Float(total / Double(count))
    }
  }
}
