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
    let rows = output.rows, width = output.rowWidth
    let y = output.scalars
    var gradient = [Float](repeating: 0, count: y.count)
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
      return (Float(total / Double(rows)), Tensor(shape: output.shape, scalars: gradient))
    case .mse, .huber, .sigmoidBinaryCrossEntropy:
      let t = targets.asValues(width: width).scalars
      let n = Float(y.count)
      for i in 0..<y.count {
        let d = y[i] - t[i]
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
          total += Double(max(y[i], 0) - y[i] * t[i] + log1p(exp(-abs(y[i]))))
          gradient[i] = (Activation.sigmoid(y[i]) - t[i]) / n
        }
      }
      return (Float(total / Double(y.count)), Tensor(shape: output.shape, scalars: gradient))
    }
  }

  /// The number of rows whose predicted class is the target's, or nil for value targets.
  /// The predicted class is the argmax of the row (for one logit: 1 when it is above 0).
  public func correctCount(output: Tensor, targets: Targets) -> Int? {
    guard case .classes(let labels) = targets else { return nil }
    let width = output.rowWidth
    var correct = 0
    for i in 0..<output.rows {
      let row = output.scalars[i * width..<(i + 1) * width]
      let predicted = width == 1 ? (row.first! > 0 ? 1 : 0) : (row.indices.max { row[$0] < row[$1] }! - i * width)
      if predicted == labels[i] { correct += 1 }
    }
    return correct
  }
}
