import Foundation

/// What training recorded: metrics by step and the events that plots mark.
///
/// In memory the points are plain arrays, one a metric. On disk (format version 2 on) they live
/// in the metrics file beside the spec, `NAME.history.safetensors`, which `metrics` names with its
/// hash; the spec's JSON holds only the events and that reference (docs/spec-format.md,
/// "history"). `SessionFile.load` reads the points; `SessionFile.save` writes them and fills in
/// `metrics`.
public struct HistorySpec: Hashable, Sendable {
  /// `[step, value]` points of each metric, steps non-decreasing; a metric without points may be
  /// absent.
  public var points: [Metric: [MetricPoint]] = [:]
  public var events: [HistoryEvent] = []
  /// Where the points were read from or last saved to; nil for a history never saved, or one
  /// with no points.
  public var metrics: MetricsRecord?

  public init(
    trainLoss: [MetricPoint] = [], valLoss: [MetricPoint] = [], events: [HistoryEvent] = [], metrics: MetricsRecord? = nil
  ) {
    (self.events, self.metrics) = (events, metrics)
    (self[.trainLoss], self[.valLoss]) = (trainLoss, valLoss)
  }

  /// The training loss: the loss of each recorded update's batch.
  public var trainLoss: [MetricPoint] {
    get { self[.trainLoss] }
    set { self[.trainLoss] = newValue }
  }

  /// The validation loss at each evaluation.
  public var valLoss: [MetricPoint] {
    get { self[.valLoss] }
    set { self[.valLoss] = newValue }
  }

  public var isEmpty: Bool { !hasPoints && events.isEmpty }

  /// Whether any metric has a point (so that a save writes a metrics file).
  public var hasPoints: Bool { points.values.contains { !$0.isEmpty } }

  /// The points of one metric (empty when it has none). Setting no points removes the metric, so
  /// that two histories with the same points are equal.
  public subscript(metric: Metric) -> [MetricPoint] {
    get { points[metric] ?? [] }
    set { points[metric] = newValue.isEmpty ? nil : newValue }
  }

  /// Appends a point to a metric, in place (the points are not copied). A value float32 cannot
  /// hold finitely is not a point (the format's values are finite).
  public mutating func append(_ value: Double, at step: Int, to metric: Metric) {
    guard let point = MetricPoint(step: step, finite: value) else { return }
    points[metric, default: []].append(point)
  }

  /// Drops every point recorded after `step` (early stopping's `restore_best`).
  public mutating func truncate(after step: Int) {
    for metric in Metric.allCases { self[metric].removeAll { $0.step > step } }
  }

  /// The current form: the events, and the metrics file's name, hash and point counts (every
  /// metric, 0 for those without points, when the points are held). The name and hash are those of the last save or load
  /// (`metrics` is null until the points have a file: `SessionFile.save` writes it and fills them
  /// in); the counts are the points held.
  public var json: JSONValue {
    var metricsJSON = JSONValue.null
    if let metrics {
      metricsJSON = .object([
        "file": .string(metrics.file), "sha256": .string(metrics.sha256),
        "points": .object(
          Metric.allCases.compactMap { metric in
            // Points held are written for every metric; a history read without its file keeps
            // the metrics its record declares, so that the JSON still matches that file.
            guard hasPoints || metrics.points[metric] != nil else { return nil }
            return .init(key: metric.rawValue, value: .int(hasPoints ? self[metric].count : metrics.points[metric]!))
          }),
      ])
    }
    return .object(["events": .array(events.map(\.json)), "metrics": metricsJSON])
  }

  /// Reads `history` as the file's version wrote it: version 1 with its points in the JSON,
  /// version 2 and 3 with a reference to the metrics file (whose points `SessionFile.load` reads).
  static func read(_ value: JSONValue, at path: JSONPath, version: Int, log: IssueLog) -> HistorySpec {
    guard var r = ObjectReader(value, at: path, log: log) else { return HistorySpec() }
    defer { r.finish() }
    var history = HistorySpec()
    history.events = r.array("events", default: []) { HistoryEvent.read($0, at: $1, log: log) }
    if version >= 2 {
      if let raw = r.raw("metrics"), !raw.isNull {
        history.metrics = MetricsRecord.read(raw, at: path + "metrics", version: version, log: log)
      }
      return history
    }
    history.trainLoss = r.array("train_loss", default: []) { MetricPoint.read($0, at: $1, log: log) }
    history.valLoss = r.array("val_loss", default: []) { MetricPoint.read($0, at: $1, log: log) }
    for (key, points) in [("train_loss", history.trainLoss), ("val_loss", history.valLoss)] {
      if let i = points.indices.dropFirst().first(where: { points[$0].step < points[$0 - 1].step }) {
        log.report(path + key + i, "steps must not decrease, but step \(points[i].step) follows \(points[i - 1].step)", at: nil)
      }
    }
    return history
  }
}

/// A metric that training records, by its name in the format (docs/spec-format.md, "history").
public enum Metric: String, CaseIterable, Hashable, Sendable {
  case trainLoss = "train_loss"
  case learningRate = "lr"
  case trainAccuracy = "train_accuracy"
  case trainMAE = "train_mae"
  case valLoss = "val_loss"
  case valAccuracy = "val_accuracy"
  case valMAE = "val_mae"
  case valR2 = "val_r2"

  /// The metrics of format version 2.
  public static let version2: [Metric] = [.trainLoss, .valLoss]

  /// The names of its two tensors in the metrics file: `M/step` (I64) and `M/value` (F32).
  public var stepTensor: String { rawValue + "/step" }
  public var valueTensor: String { rawValue + "/value" }

  /// A value as people read it: an accuracy in per cent (`96.7%`), R² to four places, others to
  /// four significant digits.
  public func text(_ value: Double) -> String {
    switch self {
    case .trainAccuracy, .valAccuracy: String(format: "%.1f%%", value * 100)
    case .valR2: String(format: "%.4f", value)
    default: String(format: "%.4g", value)
    }
  }
}

/// `history.metrics`: the metrics file beside the spec, its SHA-256, and how many points of each
/// metric it holds.
public struct MetricsRecord: Hashable, Sendable {
  public var file: String
  public var sha256: String
  public var points: [Metric: Int]

  public init(file: String, sha256: String, points: [Metric: Int]) {
    (self.file, self.sha256, self.points) = (file, sha256, points)
  }

  /// The point count of every metric, summed (for the memory check before reading the file).
  public var totalPoints: Int { points.values.reduce(0) { $0.addingReportingOverflow($1).partialValue } }

  /// Reads `history.metrics`: version 2 names exactly `train_loss` and `val_loss`; version 3
  /// any of the metrics, a metric it does not name having no points.
  static func read(_ value: JSONValue, at path: JSONPath, version: Int, log: IssueLog) -> MetricsRecord? {
    guard var r = ObjectReader(value, at: path, log: log, what: "an object {\"file\": …, \"points\": …, \"sha256\": …} or null") else {
      return nil
    }
    defer { r.finish() }
    var record = MetricsRecord(
      file: r.string("file", StateSpec.fileNameRule), sha256: r.string("sha256", StateSpec.sha256Rule), points: [:])
    if let raw = r.required("points"), var p = ObjectReader(raw, at: path + "points", log: log) {
      for metric in version == 2 ? Metric.version2 : Metric.allCases {
        let count =
          version == 2 ? p.integer(metric.rawValue, StateSpec.countRule) : p.integer(metric.rawValue, default: 0, StateSpec.countRule)
        if version == 2 || p.has(metric.rawValue) { record.points[metric] = count }
      }
      p.finish()
    }
    return record
  }
}

/// One recorded value: `[step, value]` in the file.
public struct MetricPoint: Hashable, Sendable {
  public var step: Int
  public var value: Float

  public init(step: Int, value: Float) {
    self.step = step
    self.value = value
  }

  /// The point of a value computed in double precision, or nil when float32 cannot hold it
  /// finitely (the format's values are finite).
  public init?(step: Int, finite value: Double) {
    guard Float(value).isFinite else { return nil }
    (self.step, self.value) = (step, Float(value))
  }

  public var json: JSONValue { .array([.int(step), .float(value)]) }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> MetricPoint? {
    guard let pair = value.arrayValue, pair.count == 2, let step = pair[0].numberValue?.int, step >= 0,
      let number = pair[1].numberValue?.double, Float(number).isFinite
    else {
      log.report(
        path, "must be a pair [step, value] of a non-negative integer and a finite float32 number, got \(value.excerpt())",
        at: value.location)
      return nil
    }
    return MetricPoint(step: step, value: Float(number))
  }
}

/// Something that happened during training, for plots to mark: a backend swap, an optimizer
/// change, a pause, a load. `kind` is free text so that other programs may add their own.
public struct HistoryEvent: Hashable, Sendable {
  public var step: Int
  public var kind: String
  public var detail: String

  public init(step: Int, kind: String, detail: String) {
    (self.step, self.kind, self.detail) = (step, kind, detail)
  }

  public var json: JSONValue { .object(["step": .int(step), "kind": .string(kind), "detail": .string(detail)]) }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> HistoryEvent? {
    guard var r = ObjectReader(value, at: path, log: log, what: "an event object {\"step\": …, \"kind\": …, \"detail\": …}") else {
      return nil
    }
    defer { r.finish() }
    return HistoryEvent(step: r.integer("step", .nonNegative), kind: r.string("kind", .nonEmpty), detail: r.string("detail", default: ""))
  }
}
