import Datasets

/// Mean loss and accuracy over a dataset, in chunks: every backend evaluates this way, so that
/// their sums agree. Each chunk's mean loss is weighted by its size, summed in double precision.
enum ChunkedEvaluation {
  /// `evaluate` gives a chunk's mean loss and, for class targets, how many it got right.
  static func run(count: Int, chunk: Int, _ evaluate: (Range<Int>) -> (loss: Float, correct: Int?)) -> Evaluation {
    guard count > 0 else { return Evaluation(loss: .nan, accuracy: nil) }
    var total = 0.0
    var correct = 0
    var hasClasses = false
    for start in stride(from: 0, to: count, by: chunk) {
      let range = start..<min(start + chunk, count)
      let (loss, right) = evaluate(range)
      total += Double(loss) * Double(range.count)
      if let right {
        correct += right
        hasClasses = true
      }
    }
    return Evaluation(loss: Float(total / Double(count)), accuracy: hasClasses ? Double(correct) / Double(count) : nil)
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
