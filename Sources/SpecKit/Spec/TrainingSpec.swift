/// How training runs: batching, shuffling, seeding, when it stops and what it records.
public struct TrainingSpec: Hashable, Sendable {
  /// Samples per update; the last short batch of an epoch is used, not dropped.
  public var batchSize = 32
  /// Reshuffle the training samples each epoch with the seeded generator.
  public var shuffle = true
  /// Seeds initializers, shuffling and dropout.
  public var seed: UInt64 = 0
  /// Training stops at the first rule that fires.
  public var stop: [StopRule] = [.maxSteps(steps: 1000)]
  public var record = RecordSpec()

  public init(
    batchSize: Int = 32, shuffle: Bool = true, seed: UInt64 = 0, stop: [StopRule] = [.maxSteps(steps: 1000)],
    record: RecordSpec = RecordSpec()
  ) {
    (self.batchSize, self.shuffle, self.seed, self.stop, self.record) = (batchSize, shuffle, seed, stop, record)
  }

  public var json: JSONValue {
    .object([
      "batch_size": .int(batchSize), "shuffle": .bool(shuffle), "seed": .seed(seed),
      "stop": .array(stop.map(\.json)), "record": record.json,
    ])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> TrainingSpec {
    guard var r = ObjectReader(value, at: path, log: log) else { return TrainingSpec() }
    defer { r.finish() }
    var spec = TrainingSpec()
    spec.batchSize = r.integer("batch_size", default: 32, .positive)
    spec.shuffle = r.boolean("shuffle", default: true)
    spec.seed = r.seed("seed", default: 0)
    spec.stop = r.array("stop", default: spec.stop) { StopRule.read($0, at: $1, log: log) }
    if let raw = r.raw("stop"), raw.arrayValue?.isEmpty == true {
      log.report(path + "stop", "must hold at least one rule, such as {\"type\": \"max_steps\", \"steps\": 1000}", at: raw.location)
    }
    if let raw = r.raw("record") { spec.record = RecordSpec.read(raw, at: path + "record", log: log) }
    return spec
  }
}

/// A rule that ends training when it fires.
public enum StopRule: Hashable, Sendable {
  case maxSteps(steps: Int)
  case maxEpochs(epochs: Int)
  case timeLimit(seconds: Double)
  /// Stops once the recorded training loss is at or below `value`.
  case targetLoss(value: Double)
  /// Stops when the training loss changed by less than `tol` for `patience` recorded steps.
  case converged(tol: Double, patience: Int)
  /// Stops when validation loss has not improved by more than `minDelta` for `patience` evaluations.
  /// Stops when the validation loss has not improved by more than `minDelta` for `patience`
  /// evaluations; with `restoreBest`, the state goes back to the best evaluation's.
  case earlyStopping(patience: Int, minDelta: Double, restoreBest: Bool = false)

  public static let names = ["max_steps", "max_epochs", "time_limit", "target_loss", "converged", "early_stopping"]

  public var name: String {
    switch self {
    case .maxSteps: "max_steps"
    case .maxEpochs: "max_epochs"
    case .timeLimit: "time_limit"
    case .targetLoss: "target_loss"
    case .converged: "converged"
    case .earlyStopping: "early_stopping"
    }
  }

  public var json: JSONValue {
    let type = JSONObject.Member(key: "type", value: .string(name))
    let fields: [JSONObject.Member] =
      switch self {
      case .maxSteps(let steps): [.init(key: "steps", value: .int(steps))]
      case .maxEpochs(let epochs): [.init(key: "epochs", value: .int(epochs))]
      case .timeLimit(let seconds): [.init(key: "seconds", value: .double(seconds))]
      case .targetLoss(let value): [.init(key: "value", value: .double(value))]
      case .converged(let tol, let patience): [.init(key: "tol", value: .double(tol)), .init(key: "patience", value: .int(patience))]
      case .earlyStopping(let patience, let minDelta, let restoreBest):
        [
          .init(key: "patience", value: .int(patience)), .init(key: "min_delta", value: .double(minDelta)),
          .init(key: "restore_best", value: .bool(restoreBest)),
        ]
      }
    return .object([type] + fields)
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> StopRule? {
    guard var r = ObjectReader(value, at: path, log: log, what: "a stop rule such as {\"type\": \"max_steps\", \"steps\": 1000}") else {
      return nil
    }
    defer { r.finish() }
    guard let type = r.choice("type", names.map { ($0, $0) }, what: "stop rule") else { return nil }
    switch type {
    case "max_steps": return .maxSteps(steps: r.integer("steps", .positive))
    case "max_epochs": return .maxEpochs(epochs: r.integer("epochs", .positive))
    case "time_limit": return .timeLimit(seconds: r.number("seconds", .positive))
    case "target_loss": return .targetLoss(value: r.number("value"))
    case "converged": return .converged(tol: r.number("tol", .nonNegative), patience: r.integer("patience", .positive))
    default:
      return .earlyStopping(
        patience: r.integer("patience", .positive), minDelta: r.number("min_delta", default: 0, .nonNegative),
        restoreBest: r.boolean("restore_best", default: false))
    }
  }
}

/// How often metrics and weight histograms are kept.
public struct RecordSpec: Hashable, Sendable {
  /// Record the training loss every this many steps.
  public var every = 1
  /// Snapshot weight histograms every this many steps; 0 never.
  public var histogramsEvery = 50

  public init(every: Int = 1, histogramsEvery: Int = 50) {
    self.every = every
    self.histogramsEvery = histogramsEvery
  }

  public var json: JSONValue { .object(["every": .int(every), "histograms_every": .int(histogramsEvery)]) }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> RecordSpec {
    guard var r = ObjectReader(value, at: path, log: log) else { return RecordSpec() }
    defer { r.finish() }
    return RecordSpec(
      every: r.integer("every", default: 1, .positive), histogramsEvery: r.integer("histograms_every", default: 50, .nonNegative))
  }
}
