/// How a tensor's initial values are drawn (see `Initializer+Values.swift` for the exact
/// arithmetic). Fans come from the layer: for a dense weight `[out, in]`, fan_in = in and
/// fan_out = out; a dense bias uses the same layer's fans.
public enum Initializer: Hashable, Sendable {
  case zeros
  case ones
  case constant(value: Double)
  /// `low + (high − low)·u`.
  case uniform(low: Double, high: Double)
  /// `mean + std·z`.
  case normal(mean: Double, std: Double)
  /// Uniform in ±sqrt(6 / (fan_in + fan_out)).
  case glorotUniform
  /// Normal with std sqrt(2 / (fan_in + fan_out)).
  case glorotNormal
  /// Uniform in ±sqrt(6 / fan_in).
  case heUniform
  /// Normal with std sqrt(2 / fan_in).
  case heNormal
  /// Normal with std sqrt(1 / fan_in).
  case lecunNormal

  /// Every type name as written in a spec.
  public static let names = [
    "zeros", "ones", "constant", "uniform", "normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_normal",
  ]

  public var name: String {
    switch self {
    case .zeros: "zeros"
    case .ones: "ones"
    case .constant: "constant"
    case .uniform: "uniform"
    case .normal: "normal"
    case .glorotUniform: "glorot_uniform"
    case .glorotNormal: "glorot_normal"
    case .heUniform: "he_uniform"
    case .heNormal: "he_normal"
    case .lecunNormal: "lecun_normal"
    }
  }

  public var json: JSONValue {
    switch self {
    case .constant(let value): .object(["type": .string(name), "value": .double(value)])
    case .uniform(let low, let high): .object(["type": .string(name), "low": .double(low), "high": .double(high)])
    case .normal(let mean, let std): .object(["type": .string(name), "mean": .double(mean), "std": .double(std)])
    default: .object(["type": .string(name)])
    }
  }

  /// Reads `{"type": ...}`; a plain string (`"zeros"`) is accepted too for types without fields.
  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> Initializer? {
    if let word = value.stringValue {
      let simple: [(String, Initializer)] = [
        ("zeros", .zeros), ("ones", .ones), ("glorot_uniform", .glorotUniform), ("glorot_normal", .glorotNormal),
        ("he_uniform", .heUniform), ("he_normal", .heNormal), ("lecun_normal", .lecunNormal),
      ]
      if ["constant", "uniform", "normal"].contains(word) {
        log.report(
          path, "initializer \(JSONWriter.quoted(word)) needs fields; write it as an object such as {\"type\": \"\(word)\", ...}",
          at: value.location)
        return nil
      }
      return ObjectReader.choice(value, at: path, simple, what: "initializer", log: log)
    }
    guard var reader = ObjectReader(value, at: path, log: log, what: "an initializer object such as {\"type\": \"zeros\"}") else {
      return nil
    }
    defer { reader.finish() }
    let options = names.map { ($0, $0) }
    guard let type = reader.choice("type", options, what: "initializer") else { return nil }
    switch type {
    case "zeros": return .zeros
    case "ones": return .ones
    case "constant": return .constant(value: reader.number("value", .float32))
    case "uniform":
      let low = reader.number("low", .float32), high = reader.number("high", .float32)
      if low > high { log.report(path + "high", "must be ≥ low (\(low)), got \(high)", at: reader.raw("high")?.location) }
      return .uniform(low: low, high: high)
    case "normal":
      let mean = reader.number("mean", default: 0, .float32), std = reader.number("std", .nonNegative)
      // Box–Muller's normals reach about ±5.8 from 24-bit uniforms: every value must stay finite.
      if std >= 0, abs(mean) <= Double(Float.greatestFiniteMagnitude), abs(mean) + 6 * std > Double(Float.greatestFiniteMagnitude) {
        log.report(
          path + "std", "must keep mean ± 6·std within float32 (magnitude 3.4e38), got std \(std) with mean \(mean)",
          at: reader.raw("std")?.location)
      }
      return .normal(mean: mean, std: std)
    case "glorot_uniform": return .glorotUniform
    case "glorot_normal": return .glorotNormal
    case "he_uniform": return .heUniform
    case "he_normal": return .heNormal
    default: return .lecunNormal
    }
  }
}

/// A dense layer's initializers: `{"weight": INIT, "bias": INIT}`.
public struct DenseInit: Hashable, Sendable {
  public var weight: Initializer
  public var bias: Initializer

  public init(weight: Initializer = .glorotUniform, bias: Initializer = .zeros) {
    self.weight = weight
    self.bias = bias
  }

  public var json: JSONValue { .object(["weight": weight.json, "bias": bias.json]) }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> DenseInit {
    guard var reader = ObjectReader(value, at: path, log: log) else { return DenseInit() }
    defer { reader.finish() }
    var result = DenseInit()
    if let weight = reader.raw("weight") { result.weight = Initializer.read(weight, at: path + "weight", log: log) ?? .glorotUniform }
    if let bias = reader.raw("bias") { result.bias = Initializer.read(bias, at: path + "bias", log: log) ?? .zeros }
    return result
  }
}
