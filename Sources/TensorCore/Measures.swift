import SpecKit

/// What a batch or a split says beyond its loss: the accuracy for class targets, the mean
/// absolute error and R² for the regression losses (docs/spec-format.md, "history").
extension LossSpec {
  /// True for the losses that compare real values (mse, huber): their outputs have an MAE and R².
  public var isRegression: Bool {
    switch self {
    case .mse, .huber: true
    case .softmaxCrossEntropy, .sigmoidBinaryCrossEntropy: false
    }
  }

  /// The accuracy and MAE of one batch's `rows × width` outputs (before its update), for the
  /// history's `train_accuracy` and `train_mae`: the accuracy for class targets, the MAE for a
  /// regression loss, nil otherwise.
  package func batchMeasures(output y: UnsafeBufferPointer<Float>, rows: Int, width: Int, targets: TargetView) -> BatchMeasures {
    guard rows > 0 else { return BatchMeasures() }
    switch targets {
    case .classes(let labels):
      var correct = 0
      for row in 0..<rows where Self.predictedClass(y, row: row, width: width) == labels[row] { correct += 1 }
      return BatchMeasures(accuracy: Float(Double(correct) / Double(rows)))
    case .values(let values):
      guard isRegression else { return BatchMeasures() }
      var sum = 0.0
      for i in 0..<(rows * width) { sum += Double(abs(y[i] - values[i])) }
      return BatchMeasures(meanAbsoluteError: Float(sum / Double(rows * width)))
    }
  }

  /// `batchMeasures` of a `[rows, width]` tensor of outputs.
  public func batchMeasures(output: Tensor, targets: Targets) -> BatchMeasures {
    output.scalars.withUnsafeBufferPointer { y in
      switch targets {
      case .classes(let labels):
        labels.withUnsafeBufferPointer { batchMeasures(output: y, rows: output.rows, width: output.rowWidth, targets: .classes($0)) }
      case .values(let values):
        values.scalars.withUnsafeBufferPointer {
          batchMeasures(output: y, rows: output.rows, width: output.rowWidth, targets: .values($0))
        }
      }
    }
  }

  /// The class a row of outputs predicts: its argmax (the first of equal maxima), or for one
  /// output (a binary classifier's logit) 1 when it is above 0.
  @inline(__always)
  public static func predictedClass(_ y: UnsafeBufferPointer<Float>, row: Int, width: Int) -> Int {
    let start = row * width
    if width == 1 { return y[start] > 0 ? 1 : 0 }
    var best = 0
    for j in 1..<width where y[start + j] > y[start + best] { best = j }
    return best
  }
}

/// One batch's measures beyond its loss (see `LossSpec.batchMeasures`).
public struct BatchMeasures: Hashable, Sendable {
  public var accuracy: Float?
  public var meanAbsoluteError: Float?

  public init(accuracy: Float? = nil, meanAbsoluteError: Float? = nil) {
    (self.accuracy, self.meanAbsoluteError) = (accuracy, meanAbsoluteError)
  }
}

/// Sums over outputs and real-valued targets, added chunk by chunk in double precision, for the
/// mean absolute error, the root mean squared error and R² of a whole split.
public struct RegressionSums: Hashable, Sendable {
  public private(set) var rows = 0
  public let width: Int
  private var absolute = 0.0
  private var squared = 0.0
  /// Per output: the first target seen (a shift that keeps the variance sums exact), Σ(t − k),
  /// Σ(t − k)² and Σ(y − t)².
  private var shift: [Double]
  private var shifted: [Double]
  private var shiftedSquares: [Double]
  private var residualSquares: [Double]

  public init(width: Int) {
    self.width = width
    (shift, shifted, shiftedSquares, residualSquares) = (
      Array(repeating: 0, count: width), Array(repeating: 0, count: width), Array(repeating: 0, count: width),
      Array(repeating: 0, count: width)
    )
  }

  /// Adds `rows × width` outputs and their targets.
  public mutating func add(output y: UnsafeBufferPointer<Float>, targets t: UnsafeBufferPointer<Float>, rows count: Int) {
    guard count > 0 else { return }
    if rows == 0 { for j in 0..<width { shift[j] = Double(t[j]) } }
    for row in 0..<count {
      for j in 0..<width {
        let i = row * width + j
        let d = Double(y[i]) - Double(t[i])
        absolute += abs(d)
        squared += d * d
        residualSquares[j] += d * d
        let s = Double(t[i]) - shift[j]
        shifted[j] += s
        shiftedSquares[j] += s * s
      }
    }
    rows += count
  }

  /// Adds a tensor of outputs and its targets (same shape, `[rows, width]`).
  public mutating func add(output: Tensor, targets: Tensor) {
    output.scalars.withUnsafeBufferPointer { y in
      targets.scalars.withUnsafeBufferPointer { t in add(output: y, targets: t, rows: output.rows) }
    }
  }

  private var elements: Double { Double(rows * width) }

  /// The mean of |y − t| over every output; nil before any row.
  public var meanAbsoluteError: Double? { rows > 0 ? absolute / elements : nil }

  /// √(mean of (y − t)²) over every output; nil before any row.
  public var rootMeanSquaredError: Double? { rows > 0 ? (squared / elements).squareRoot() : nil }

  /// R² averaged over the outputs whose target varies (1 − Σ(y − t)² / Σ(t − t̄)² each); nil
  /// when none varies.
  public var r2: Double? {
    let n = Double(rows)
    var total = 0.0
    var varying = 0
    for j in 0..<width {
      let spread = shiftedSquares[j] - shifted[j] * shifted[j] / n
      guard spread > 0 else { continue }
      total += 1 - residualSquares[j] / spread
      varying += 1
    }
    return varying > 0 ? total / Double(varying) : nil
  }
}
