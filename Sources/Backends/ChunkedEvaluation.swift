import Datasets
import SpecKit
import TensorCore

/// Mean loss, accuracy, MAE and R² over a dataset, in chunks: every backend evaluates this way,
/// so that their sums agree. Each chunk's mean loss is weighted by its size, summed in double
/// precision; the other measures are counted and summed over every row.
enum ChunkedEvaluation {
  /// `evaluate` gives a chunk's mean loss and its outputs (`[rows, width]`), whose rows are the
  /// samples of the range in order.
  static func run(count: Int, chunk: Int, loss: LossSpec, targets: Targets, _ evaluate: (Range<Int>) -> (loss: Float, output: Tensor))
    -> Evaluation
  {
    guard count > 0 else { return .none }
    var total = 0.0
    var correct = 0
    var sums: RegressionSums?
    for start in stride(from: 0, to: count, by: chunk) {
      let range = start..<min(start + chunk, count)
      let (chunkLoss, output) = evaluate(range)
      total += Double(chunkLoss) * Double(range.count)
      switch targets {
      case .classes(let labels):
        output.scalars.withUnsafeBufferPointer { y in
          for (row, label) in labels[range].enumerated()
          where LossSpec.predictedClass(y, row: row, width: output.rowWidth) == label {
            correct += 1
          }
        }
      case .values(let values) where loss.isRegression:
        sums = sums ?? RegressionSums(width: output.rowWidth)
        sums!.add(output: output, targets: values.gatherRows(range))
      case .values:
        break
      }
    }
    let hasClasses = if case .classes = targets { true } else { false }
    return Evaluation(
      loss: Float(total / Double(count)), accuracy: hasClasses ? Double(correct) / Double(count) : nil,
      meanAbsoluteError: sums?.meanAbsoluteError, r2: sums?.r2)
  }
}

/// A trainer that holds its data in this process and evaluates any samples: it gets
/// `evaluate(.train)` and `evaluate(.validation)` from that.
protocol EvaluatesDatasets: Trainer {
  var train: Dataset { get }
  var validation: Dataset? { get }
  func evaluate(_ data: Dataset) -> Evaluation
}

extension EvaluatesDatasets {
  func evaluate(_ part: DataPart) -> Evaluation? {
    switch part {
    case .train: evaluate(train)
    case .validation: validation.map(evaluate)
    }
  }
}
