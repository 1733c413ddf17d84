import Foundation

/// The learning-rate schedule. `lr_t` is the rate used for update `t` (t from 1).
public enum ScheduleSpec: Hashable, Sendable {
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

  public static let names = ["constant", "step", "exponential", "cosine", "warmup_cosine"]

  public var name: String {
    switch self {
    case .constant: "constant"
    case .step: "step"
    case .exponential: "exponential"
    case .cosine: "cosine"
    case .warmupCosine: "warmup_cosine"
    }
  }

  /// The learning rate for update `t` (t ≥ 1) given the optimizer's base rate `lr`, computed in
  /// double precision.
  public func learningRate(at t: Int, base lr: Double) -> Double {
    func cosineValue(_ k: Int, _ tMax: Int, _ etaMin: Double) -> Double {
      etaMin + (lr - etaMin) * (1 + cos(Double.pi * Double(min(k, tMax)) / Double(tMax))) / 2
    }
    switch self {
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
    switch self {
    case .constant: .object(["type": .string(name)])
    case .step(let stepSize, let gamma): .object(["type": .string(name), "step_size": .int(stepSize), "gamma": .double(gamma)])
    case .exponential(let gamma): .object(["type": .string(name), "gamma": .double(gamma)])
    case .cosine(let tMax, let etaMin): .object(["type": .string(name), "t_max": .int(tMax), "eta_min": .double(etaMin)])
    case .warmupCosine(let warmup, let tMax, let etaMin):
      .object(["type": .string(name), "warmup_steps": .int(warmup), "t_max": .int(tMax), "eta_min": .double(etaMin)])
    }
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> ScheduleSpec? {
    guard var r = ObjectReader(value, at: path, log: log, what: "a schedule object such as {\"type\": \"constant\"}") else { return nil }
    defer { r.finish() }
    guard let type = r.choice("type", names.map { ($0, $0) }, what: "schedule") else { return nil }
    switch type {
    case "constant": return .constant
    case "step": return .step(stepSize: r.integer("step_size", .positive), gamma: r.number("gamma", default: 0.1, .positive))
    case "exponential": return .exponential(gamma: r.number("gamma", .positive))
    case "cosine": return .cosine(tMax: r.integer("t_max", .positive), etaMin: r.number("eta_min", default: 0, .nonNegative))
    default:
      let warmup = r.integer("warmup_steps", .positive), tMax = r.integer("t_max", .positive)
      if warmup >= tMax && r.has("t_max") {
        log.report(path + "t_max", "must be greater than warmup_steps (\(warmup)), got \(tMax)", at: r.raw("t_max")?.location)
      }
      return .warmupCosine(warmupSteps: warmup, tMax: tMax, etaMin: r.number("eta_min", default: 0, .nonNegative))
    }
  }
}
