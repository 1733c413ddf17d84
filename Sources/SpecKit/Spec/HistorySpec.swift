/// What training recorded: losses by step and the events that plots mark.
public struct HistorySpec: Hashable, Sendable {
  /// `[step, value]` pairs of the training loss, steps non-decreasing.
  public var trainLoss: [MetricPoint] = []
  /// `[step, value]` pairs of the validation loss.
  public var valLoss: [MetricPoint] = []
  public var events: [HistoryEvent] = []

  public init(trainLoss: [MetricPoint] = [], valLoss: [MetricPoint] = [], events: [HistoryEvent] = []) {
    (self.trainLoss, self.valLoss, self.events) = (trainLoss, valLoss, events)
  }

  public var isEmpty: Bool { trainLoss.isEmpty && valLoss.isEmpty && events.isEmpty }

  public var json: JSONValue {
    .object([
      "train_loss": .array(trainLoss.map(\.json)), "val_loss": .array(valLoss.map(\.json)),
      "events": .array(events.map(\.json)),
    ])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> HistorySpec {
    guard var r = ObjectReader(value, at: path, log: log) else { return HistorySpec() }
    defer { r.finish() }
    var history = HistorySpec()
    history.trainLoss = r.array("train_loss", default: []) { MetricPoint.read($0, at: $1, log: log) }
    history.valLoss = r.array("val_loss", default: []) { MetricPoint.read($0, at: $1, log: log) }
    history.events = r.array("events", default: []) { HistoryEvent.read($0, at: $1, log: log) }
    for (key, points) in [("train_loss", history.trainLoss), ("val_loss", history.valLoss)] {
      if let i = points.indices.dropFirst().first(where: { points[$0].step < points[$0 - 1].step }) {
        log.report(path + key + i, "steps must not decrease, but step \(points[i].step) follows \(points[i - 1].step)", at: nil)
      }
    }
    return history
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
