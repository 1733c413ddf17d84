import SpecKit
import TermPlot

/// What the training worker is doing.
public enum TrainingStatus: String, Sendable {
  case idle
  case running
  case paused
}

/// Something front ends print as it happens: training started, paused, stopped and why, an
/// optimizer or backend changed, the model's state mapped, saved, an error. `line` is the one way
/// every front end shows it.
public struct EngineEvent: Hashable, Sendable, CustomStringConvertible {
  public enum Kind: String, Hashable, Sendable, CaseIterable {
    case started, paused, stopped, diverged, failed, optimizer, backend, model, posterior, saved, error
  }

  public var kind: Kind
  public var text: String

  public init(_ kind: Kind, _ text: String) {
    self.kind = kind
    self.text = text
  }

  /// `[kind] text`, as the REPL prints it above the prompt and the dashboard logs it.
  public var line: String { "[\(kind.rawValue)] \(text)" }

  public var description: String { line }
}

/// An immutable picture of training, published by the worker and read by front ends at any time.
public struct Snapshot: Sendable {
  public var status: TrainingStatus = .idle
  public var backend = "reference"
  public var step = 0
  public var epoch = 0
  /// The step training will stop at, when a step limit says so.
  public var plannedStep: Int?
  public var lastLoss: Float?
  public var learningRate: Double?
  /// What an iterating optimizer (L-BFGS) did: while training, the last recorded step's
  /// iterations, evaluations, line-search evaluations and step size (`last step: …`); idle, the
  /// state's counts over the whole run (`so far: …`).
  public var optimizerReport: String?
  /// The predictive uncertainty of the weights as they stand, when a calibration was measured
  /// at them (`posterior`, `calibration`): a summary line, then the reliability diagram's lines.
  public var uncertainty: [String] = []
  public var stepsPerSecond: Double?
  /// The metrics recorded so far (a metric without points may be absent), and the events plots
  /// mark.
  public var logs: [Metric: MetricLog] = [:]
  public var events: [HistoryEvent] = []

  /// The training loss: each recorded update's batch loss.
  public var trainLoss: MetricLog { logs[.trainLoss] ?? MetricLog() }
  /// The validation loss at each evaluation.
  public var valLoss: MetricLog { logs[.valLoss] ?? MetricLog() }
  /// The values of every parameter and buffer (by tensor name, `dense1.weight`) at
  /// `histogramStep`, refreshed every `record.histograms_every` steps (at most ten times a
  /// second while training).
  public var tensorValues: [String: [Float]] = [:]
  public var histogramStep = 0
  /// Seconds since this training run started (nil when idle).
  public var elapsedSeconds: Double?
  /// Per parameter (by tensor name): the last measured gradient norm and update-to-weight
  /// ratio, measured at the step after each histogram refresh while a front end asks for them
  /// (`SessionEngine.wantsTensorStatistics`).
  public var tensorStatistics: [String: TensorStatistics] = [:]
  /// Per tensor: its distribution at every histogram refresh (TensorBoard's histogram mode),
  /// at most `DistributionColumn.limit` columns, thinned evenly when full.
  public var distributions: [String: [DistributionColumn]] = [:]

  public init() {}

  /// The recorded history as the session file holds it. Reading it copies the losses (once the
  /// log has more than one chunk), so a front end reads it once a frame.
  public var history: HistorySpec {
    get {
      var history = HistorySpec(events: events)
      for (metric, log) in logs { history[metric] = log.points }
      return history
    }
    set {
      logs = newValue.points.mapValues { MetricLog($0) }
      events = newValue.events
    }
  }

  /// Appends points at `step` (values float32 cannot hold finitely are not points).
  mutating func record(_ values: [(Metric, Double)], at step: Int) {
    for (metric, value) in values {
      if let point = MetricPoint(step: step, finite: value) { logs[metric, default: MetricLog()].append(point) }
    }
  }

  /// The mean of a metric's last `count` points, and how many there were; nil without points.
  public func recentMean(_ metric: Metric, count: Int = 50) -> (mean: Double, points: Int)? {
    guard let log = logs[metric], log.count > 0 else { return nil }
    // From the newest point back, without listing the log's chunks (this runs every frame).
    let taken = min(count, log.count)
    let sum = (log.count - taken..<log.count).reduce(0.0) { $0 + log.point($1).y }
    return (sum / Double(taken), taken)
  }
}

/// How a parameter moved in one step.
public struct TensorStatistics: Hashable, Sendable {
  /// The L2 norm of its gradient in that step.
  public var gradientNorm: Float
  /// ‖w_after − w_before‖ / ‖w_before‖ for that step (0 when the weights were all zero).
  public var updateRatio: Float
  /// The step measured.
  public var step: Int

  public init(gradientNorm: Float, updateRatio: Float, step: Int) {
    (self.gradientNorm, self.updateRatio, self.step) = (gradientNorm, updateRatio, step)
  }
}

/// A tensor's distribution at one step: its values at the quantiles of `DistributionColumn.levels`.
public struct DistributionColumn: Hashable, Sendable {
  /// The quantile levels (per cent): min, ±1.5σ, ±1σ, ±0.5σ and the median of a normal, max.
  public static let levels: [Double] = [0, 6.68, 15.87, 30.85, 50, 69.15, 84.13, 93.32, 100]
  /// Columns kept per tensor.
  public static let limit = 256
  /// Values sampled for the inner quantiles (min and max are exact).
  public static let sampleSize = 1024

  public var step: Int
  public var quantiles: [Float]

  public init(step: Int, quantiles: [Float]) {
    (self.step, self.quantiles) = (step, quantiles)
  }

  /// The column of `values` at `step`: min and max over all values; the inner quantiles from an
  /// evenly strided sample of at most `sampleSize` values (linear interpolation between order
  /// statistics), so that a large tensor costs little. Nil for an empty tensor.
  public init?(step: Int, values: [Float]) {
    guard let first = values.first else { return nil }
    var (low, high) = (first, first)
    for value in values {
      low = min(low, value)
      high = max(high, value)
    }
    let stride = max(1, values.count / Self.sampleSize)
    var sample: [Float] = []
    sample.reserveCapacity(min(values.count, Self.sampleSize + 1))
    for index in Swift.stride(from: 0, to: values.count, by: stride) { sample.append(values[index]) }
    sample.sort()
    let inner = Self.levels.dropFirst().dropLast().map { level -> Float in
      let position = level / 100 * Double(sample.count - 1)
      let below = Int(position.rounded(.down))
      let above = min(below + 1, sample.count - 1)
      let fraction = Float(position - Double(below))
      return sample[below] + (sample[above] - sample[below]) * fraction
    }
    self.init(step: step, quantiles: [low] + inner.map { min(max($0, low), high) } + [high])
  }

  /// Appends `column`, halving the columns (every other one kept, the newest always) when the
  /// limit is reached, so a long run keeps its whole time range at a coarser resolution.
  public static func append(_ column: DistributionColumn, to columns: inout [DistributionColumn]) {
    columns.append(column)
    guard columns.count > limit else { return }
    columns = columns.enumerated().filter { $0.offset % 2 == 1 || $0.offset == columns.count - 1 }.map(\.element)
  }
}

/// One labelled figure of `Snapshot.metricReadings`, and what it measures (a status bar drops
/// the recent batches' mean first, then the validation's, the last batch's loss last).
public struct MetricReading: Hashable, Sendable {
  public enum Kind: Hashable, Sendable { case lastBatch, recentBatches, validation }

  public var kind: Kind
  public var text: String
}

extension Snapshot {
  /// The latest figures, labelled by what they measure: the last batch's loss, the recent
  /// batches' accuracy or MAE (their mean over the last 50 recorded), and the last validation's
  /// loss, accuracy, MAE and R². `short` labels fit a status bar (`val acc 96.7%`).
  public func metricReadings(short: Bool = false) -> [MetricReading] {
    var readings: [MetricReading] = []
    if let loss = lastLoss ?? trainLoss.last?.value {
      readings.append(MetricReading(kind: .lastBatch, text: "batch loss \(ProgressLine.significant(Double(loss)))"))
    }
    for metric in [Metric.trainAccuracy, .trainMAE] {
      guard let (mean, points) = recentMean(metric) else { continue }
      let name = metric == .trainAccuracy ? (short ? "acc" : "accuracy") : "MAE"
      let value = metric.text(mean)
      readings.append(
        MetricReading(
          kind: .recentBatches, text: short ? "\(name) \(value) (\(points) batches)" : "\(name) \(value) over the last \(points) batches"))
    }
    let validation: [(Metric, String)] = [(.valLoss, "loss"), (.valAccuracy, short ? "acc" : "accuracy"), (.valMAE, "MAE"), (.valR2, "R²")]
    for (metric, name) in validation {
      guard let last = logs[metric]?.last else { continue }
      readings.append(MetricReading(kind: .validation, text: "\(short ? "val" : "validation") \(name) \(metric.text(Double(last.value)))"))
    }
    return readings
  }
}
