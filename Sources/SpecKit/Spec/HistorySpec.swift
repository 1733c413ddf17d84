/// What training recorded: losses by step and the events that plots mark.
///
/// In memory the points are plain arrays. On disk (format version 2) they live in the metrics
/// file beside the spec, `NAME.history.safetensors`, which `metrics` names with its hash; the
/// spec's JSON holds only the events and that reference (docs/spec-format.md, "history").
/// `SessionFile.load` reads the points; `SessionFile.save` writes them and fills in `metrics`.
public struct HistorySpec: Hashable, Sendable {
  /// `[step, value]` pairs of the training loss, steps non-decreasing.
  public var trainLoss: [MetricPoint] = []
  /// `[step, value]` pairs of the validation loss.
  public var valLoss: [MetricPoint] = []
  public var events: [HistoryEvent] = []
  /// Where the points were read from or last saved to; nil for a history never saved, or one
  /// with no points.
  public var metrics: MetricsRecord?

  public init(trainLoss: [MetricPoint] = [], valLoss: [MetricPoint] = [], events: [HistoryEvent] = [], metrics: MetricsRecord? = nil) {
    (self.trainLoss, self.valLoss, self.events, self.metrics) = (trainLoss, valLoss, events, metrics)
  }

  public var isEmpty: Bool { trainLoss.isEmpty && valLoss.isEmpty && events.isEmpty }

  /// Whether any metric has a point (so that a save writes a metrics file).
  public var hasPoints: Bool { !trainLoss.isEmpty || !valLoss.isEmpty }

  /// The points of one metric.
  public subscript(metric: Metric) -> [MetricPoint] {
    get {
      switch metric {
      case .trainLoss: trainLoss
      case .valLoss: valLoss
      }
    }
    set {
      switch metric {
      case .trainLoss: trainLoss = newValue
      case .valLoss: valLoss = newValue
      }
    }
  }

  /// The version-2 form: the events, and the metrics file's name, hash and point counts. The
  /// name and hash are those of the last save or load (`metrics` is null until the points have
  /// a file: `SessionFile.save` writes it and fills them in); the counts are the points held.
  public var json: JSONValue {
    var metricsJSON = JSONValue.null
    if let metrics {
      metricsJSON = .object([
        "file": .string(metrics.file), "sha256": .string(metrics.sha256),
        "points": .object(
          Metric.allCases.map { .init(key: $0.rawValue, value: .int(hasPoints ? self[$0].count : metrics.points[$0] ?? 0)) }),
      ])
    }
    return .object(["events": .array(events.map(\.json)), "metrics": metricsJSON])
  }

  /// Reads `history` as the file's version wrote it: version 1 with its points in the JSON,
  /// version 2 with a reference to the metrics file (whose points `SessionFile.load` reads).
  static func read(_ value: JSONValue, at path: JSONPath, version: Int, log: IssueLog) -> HistorySpec {
    guard var r = ObjectReader(value, at: path, log: log) else { return HistorySpec() }
    defer { r.finish() }
    var history = HistorySpec()
    history.events = r.array("events", default: []) { HistoryEvent.read($0, at: $1, log: log) }
    if version >= 2 {
      if let raw = r.raw("metrics"), !raw.isNull { history.metrics = MetricsRecord.read(raw, at: path + "metrics", log: log) }
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

/// A metric that training records, by its name in the format.
public enum Metric: String, CaseIterable, Hashable, Sendable {
  case trainLoss = "train_loss"
  case valLoss = "val_loss"

  /// The names of its two tensors in the metrics file: `M/step` (I64) and `M/value` (F32).
  public var stepTensor: String { rawValue + "/step" }
  public var valueTensor: String { rawValue + "/value" }
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

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> MetricsRecord? {
    guard var r = ObjectReader(value, at: path, log: log, what: "an object {\"file\": …, \"points\": …, \"sha256\": …} or null") else {
      return nil
    }
    defer { r.finish() }
    var record = MetricsRecord(
      file: r.string("file", StateSpec.fileNameRule), sha256: r.string("sha256", StateSpec.sha256Rule), points: [:])
    if let raw = r.required("points"), var p = ObjectReader(raw, at: path + "points", log: log) {
      for metric in Metric.allCases { record.points[metric] = p.integer(metric.rawValue, StateSpec.countRule) }
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
