/// An activation function, for `dense.activation` and the `activation` layer.
///
/// Written as a plain string (`"relu"`), except `leaky_relu`, which may carry its slope:
/// `{"type": "leaky_relu", "alpha": 0.01}`. The canonical form writes `leaky_relu` as an object
/// with its alpha, so the value in effect is always visible in the file.
public enum Activation: Hashable, Sendable {
  case identity
  case relu
  /// `x` for x ≥ 0, `alpha·x` otherwise (alpha 0.01 by default).
  case leakyReLU(alpha: Double)
  case sigmoid
  case tanh
  /// Exact GELU: `x·Φ(x)` with the error function, as PyTorch's default.
  case gelu
  /// `x·sigmoid(x)`.
  case silu
  /// `log(1 + eˣ)`.
  case softplus
  /// `x` for x > 0, `eˣ − 1` otherwise (alpha 1).
  case elu
  /// Over the last axis.
  case softmax

  public static let defaultLeakyAlpha = 0.01

  /// Every function's name as written in a spec, in documentation order.
  public static let names = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "softplus", "elu", "softmax"]

  /// The name as written in a spec.
  public var name: String {
    switch self {
    case .identity: "identity"
    case .relu: "relu"
    case .leakyReLU: "leaky_relu"
    case .sigmoid: "sigmoid"
    case .tanh: "tanh"
    case .gelu: "gelu"
    case .silu: "silu"
    case .softplus: "softplus"
    case .elu: "elu"
    case .softmax: "softmax"
    }
  }

  /// The function of a plain name (`leaky_relu` gets its default alpha).
  public init?(name: String) {
    switch name {
    case "identity": self = .identity
    case "relu": self = .relu
    case "leaky_relu": self = .leakyReLU(alpha: Self.defaultLeakyAlpha)
    case "sigmoid": self = .sigmoid
    case "tanh": self = .tanh
    case "gelu": self = .gelu
    case "silu": self = .silu
    case "softplus": self = .softplus
    case "elu": self = .elu
    case "softmax": self = .softmax
    default: return nil
    }
  }

  public var json: JSONValue {
    if case .leakyReLU(let alpha) = self {
      return .object(["type": .string("leaky_relu"), "alpha": .double(alpha)])
    }
    return .string(name)
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> Activation? {
    if value.stringValue != nil {
      return ObjectReader.choice(value, at: path, names.map { ($0, Activation(name: $0)!) }, what: "activation", log: log)
    }
    guard value.objectValue != nil else {
      log.report(
        path, "must be an activation name such as \"relu\", or {\"type\": \"leaky_relu\", \"alpha\": 0.01}, got \(value.excerpt())",
        at: value.location)
      return nil
    }
    var reader = ObjectReader(value, at: path, log: log)!
    let type = reader.string("type")
    defer { reader.finish() }
    switch type {
    case "leaky_relu":
      return .leakyReLU(alpha: reader.number("alpha", default: defaultLeakyAlpha, .nonNegativeFloat32))
    case let other where Activation(name: other) != nil:
      return Activation(name: other)
    default:
      _ = ObjectReader.choice(.string(type), at: path + "type", names.map { ($0, ()) }, what: "activation", log: log)
      return nil
    }
  }
}
