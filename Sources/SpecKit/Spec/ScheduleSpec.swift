import Foundation

/// The learning-rate schedule: a shape, and the update count it starts from. `lr_t` is the rate
/// used for update `t` (t from 1): the shape's rate at `max(1, t − start)`.
public struct ScheduleSpec: Hashable, Sendable {
  public enum Shape: Hashable, Sendable {
    /// lr.
    case constant
    /// lr · gamma^floor((t−1) / stepSize).
    case step(stepSize: Int, gamma: Double)
    /// lr · gamma^(t−1).
    case exponential(gamma: Double)
    /// eta_min + (lr − eta_min)(1 + cos(π·min(t−1, tMax)/tMax))/2.
    case cosine(tMax: Int, etaMin: Double)
    /// lr·t/warmupSteps while t ≤ warmupSteps, then cosine from lr to etaMin over the remaining
    /// tMax − warmupSteps updates.
    case warmupCosine(warmupSteps: Int, tMax: Int, etaMin: Double)
  }

  public var shape: Shape
  /// The update count the schedule starts from (as a PyTorch scheduler counts from when it is
  /// created): update `t` uses the shape's rate at `max(1, t − start)`.
  public var start: Int

  public init(_ shape: Shape, start: Int = 0) {
    self.shape = shape
    self.start = start
  }

  public static var constant: ScheduleSpec { ScheduleSpec(.constant) }
  public static func step(stepSize: Int, gamma: Double) -> ScheduleSpec { ScheduleSpec(.step(stepSize: stepSize, gamma: gamma)) }
  public static func exponential(gamma: Double) -> ScheduleSpec { ScheduleSpec(.exponential(gamma: gamma)) }
  public static func cosine(tMax: Int, etaMin: Double) -> ScheduleSpec { ScheduleSpec(.cosine(tMax: tMax, etaMin: etaMin)) }
  public static func warmupCosine(warmupSteps: Int, tMax: Int, etaMin: Double) -> ScheduleSpec {
    ScheduleSpec(.warmupCosine(warmupSteps: warmupSteps, tMax: tMax, etaMin: etaMin))
  }

  public static let names = ["constant", "step", "exponential", "cosine", "warmup_cosine"]

  public var name: String {
    switch shape {
    case .constant: "constant"
    case .step: "step"
    case .exponential: "exponential"
    case .cosine: "cosine"
    case .warmupCosine: "warmup_cosine"
    }
  }

  /// What a user should hear before a run whose first update is `firstUpdate`, with base rate
  /// `lr`: that every update of it uses a rate of 0, or that it begins past the schedule's end.
  /// Empty when the run's rate is ordinary.
  public func warnings(runFrom firstUpdate: Int, base lr: Double) -> [String] {
    let rate = learningRate(at: firstUpdate, base: lr)
    if let end, firstUpdate > end {
      return [
        "the \(name) schedule ended at update \(end) (it starts at update \(start)), so every update of this run uses its final rate \(rate)"
          + (rate == 0 ? ", which is 0: the weights will not change" : "") + "; set the schedule again to restart it from this step"
      ]
    }
    if rate == 0 {
      return [
        "the learning rate of update \(firstUpdate) is 0 (\(name) schedule from update \(start)): the run starts without changing the weights"
      ]
    }
    return []
  }

  /// The last update of a schedule that ends (cosine shapes: after it the rate stays at
  /// eta_min), or nil.
  public var end: Int? {
    switch shape {
    case .cosine(let tMax, _), .warmupCosine(_, let tMax, _): start + tMax
    case .constant, .step, .exponential: nil
    }
  }

  /// The learning rate for update `t` (t ≥ 1) given the optimizer's base rate `lr`, computed in
  /// double precision.
  public func learningRate(at update: Int, base lr: Double) -> Double {
    func cosineValue(_ k: Int, _ tMax: Int, _ etaMin: Double) -> Double {
      etaMin + (lr - etaMin) * (1 + cos(Double.pi * Double(min(k, tMax)) / Double(tMax))) / 2
    }
    let t = max(1, update - start)
    switch shape {
    case .constant: return lr
    case .step(let stepSize, let gamma): return lr * pow(gamma, Double((t - 1) / stepSize))
    case .exponential(let gamma): return lr * pow(gamma, Double(t - 1))
    case .cosine(let tMax, let etaMin): return cosineValue(t - 1, tMax, etaMin)
    case .warmupCosine(let warmup, let tMax, let etaMin):
      if t <= warmup { return lr * Double(t) / Double(warmup) }
      return cosineValue(t - warmup - 1, tMax - warmup, etaMin)
    }
  }

  public var json: JSONValue {
    let fields: [(String, JSONValue)] =
      switch shape {
      case .constant: []
      case .step(let stepSize, let gamma): [("step_size", .int(stepSize)), ("gamma", .double(gamma))]
      case .exponential(let gamma): [("gamma", .double(gamma))]
      case .cosine(let tMax, let etaMin): [("t_max", .int(tMax)), ("eta_min", .double(etaMin))]
      case .warmupCosine(let warmup, let tMax, let etaMin):
        [("warmup_steps", .int(warmup)), ("t_max", .int(tMax)), ("eta_min", .double(etaMin))]
      }
    return .object(
      [JSONObject.Member(key: "type", value: .string(name))] + fields.map { JSONObject.Member(key: $0.0, value: $0.1) }
        + [JSONObject.Member(key: "start", value: .int(start))])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> ScheduleSpec? {
    guard var r = ObjectReader(value, at: path, log: log, what: "a schedule object such as {\"type\": \"constant\"}") else { return nil }
    defer { r.finish() }
    guard let type = r.choice("type", names.map { ($0, $0) }, what: "schedule") else { return nil }
    var schedule: ScheduleSpec
    switch type {
    case "constant": schedule = .constant
    case "step": schedule = .step(stepSize: r.integer("step_size", .positive), gamma: r.number("gamma", default: 0.1, .positive))
    case "exponential": schedule = .exponential(gamma: r.number("gamma", .positive))
    case "cosine": schedule = .cosine(tMax: r.integer("t_max", .positive), etaMin: r.number("eta_min", default: 0, .nonNegative))
    default:
      let warmup = r.integer("warmup_steps", .positive), tMax = r.integer("t_max", .positive)
      if warmup >= tMax && r.has("t_max") {
        log.report(path + "t_max", "must be greater than warmup_steps (\(warmup)), got \(tMax)", at: r.raw("t_max")?.location)
      }
      schedule = .warmupCosine(warmupSteps: warmup, tMax: tMax, etaMin: r.number("eta_min", default: 0, .nonNegative))
    }
    schedule.start = r.integer("start", default: 0, StateSpec.countRule)
    return schedule
  }
}
