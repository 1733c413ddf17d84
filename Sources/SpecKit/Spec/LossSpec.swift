/// The training loss (PyTorch's definitions, mean reduction).
public enum LossSpec: Hashable, Sendable {
  /// Mean over all elements of (y − t)².
  case mse
  /// Targets are class indices; mean over the batch of −log softmax(y)[t].
  case softmaxCrossEntropy
  /// Targets in {0, 1}; mean over all elements, computed stably from logits.
  case sigmoidBinaryCrossEntropy
  /// Mean over all elements of 0.5·d²  (|d| < delta), delta·(|d| − 0.5·delta) otherwise.
  case huber(delta: Double)

  public static let names = ["mse", "softmax_cross_entropy", "sigmoid_binary_cross_entropy", "huber"]

  public var name: String {
    switch self {
    case .mse: "mse"
    case .softmaxCrossEntropy: "softmax_cross_entropy"
    case .sigmoidBinaryCrossEntropy: "sigmoid_binary_cross_entropy"
    case .huber: "huber"
    }
  }

  public var json: JSONValue {
    if case .huber(let delta) = self { return .object(["type": .string(name), "delta": .double(delta)]) }
    return .object(["type": .string(name)])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> LossSpec? {
    guard var reader = ObjectReader(value, at: path, log: log, what: "a loss object such as {\"type\": \"mse\"}") else { return nil }
    defer { reader.finish() }
    guard let type = reader.choice("type", names.map { ($0, $0) }, what: "loss") else { return nil }
    switch type {
    case "mse": return .mse
    case "softmax_cross_entropy": return .softmaxCrossEntropy
    case "sigmoid_binary_cross_entropy": return .sigmoidBinaryCrossEntropy
    default: return .huber(delta: reader.number("delta", default: 1.0, .positiveFloat32))
    }
  }
}
