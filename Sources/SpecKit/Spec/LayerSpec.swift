/// One layer of a model: its unique name and what it computes.
public struct LayerSpec: Hashable, Sendable {
  /// Unique in the model; prefixes the layer's tensors (`dense1.weight`).
  public var name: String
  public var kind: Kind

  public init(name: String, kind: Kind) {
    self.name = name
    self.kind = kind
  }

  /// What a layer computes, with its fields.
  public enum Kind: Hashable, Sendable {
    /// `y = x·Wᵀ + b`, then the activation; `W` is `[units, in]` (PyTorch's layout).
    case dense(DenseLayer)
    case activation(function: Activation)
    /// Zeroes each element with probability `rate` and scales the rest by 1/(1 − rate) in
    /// training; identity in evaluation.
    case dropout(rate: Double)
    /// Flattens a sample to one axis.
    case flatten
    /// Normalises over the last axis, then scales and shifts per feature.
    case layerNorm(eps: Double)
    /// Normalises each feature (the first sample axis) over the batch; keeps running statistics.
    case batchNorm(eps: Double, momentum: Double)
    /// A 2-D convolution over `[C, H, W]`, then the activation (PyTorch's `Conv2d`).
    case conv2d(Conv2DLayer)
    /// The largest value of each window (PyTorch's `MaxPool2d`).
    case maxPool2d(PoolLayer)
    /// The mean of each window, padding counted (PyTorch's `AvgPool2d`).
    case avgPool2d(PoolLayer)
    /// The mean of each channel: `[C, H, W] → [C]`.
    case globalAvgPool
    /// The same values under another sample shape (one -1 stands for the rest).
    case reshape(shape: [Int])

    /// The `type` as written in a spec.
    public var typeName: String {
      switch self {
      case .dense: "dense"
      case .activation: "activation"
      case .dropout: "dropout"
      case .flatten: "flatten"
      case .layerNorm: "layer_norm"
      case .batchNorm: "batch_norm"
      case .conv2d: "conv2d"
      case .maxPool2d: "max_pool2d"
      case .avgPool2d: "avg_pool2d"
      case .globalAvgPool: "global_avg_pool"
      case .reshape: "reshape"
      }
    }
  }

  /// Every layer type as written in a spec.
  public static let typeNames = [
    "dense", "activation", "dropout", "flatten", "layer_norm", "batch_norm", "conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool",
    "reshape",
  ]

  /// Defaults of the normalisation layers, as PyTorch's.
  public static let defaultEps = 1e-5
  public static let defaultBatchNormMomentum = 0.1
}

/// A dense (fully connected) layer's fields.
public struct DenseLayer: Hashable, Sendable {
  public var units: Int
  public var activation: Activation
  public var useBias: Bool
  public var initializer: DenseInit

  public init(units: Int, activation: Activation = .identity, useBias: Bool = true, initializer: DenseInit = DenseInit()) {
    self.units = units
    self.activation = activation
    self.useBias = useBias
    self.initializer = initializer
  }
}

extension LayerSpec {
  public var json: JSONValue {
    var members: [JSONObject.Member] = [.init(key: "type", value: .string(kind.typeName)), .init(key: "name", value: .string(name))]
    switch kind {
    case .dense(let dense):
      members += [
        .init(key: "units", value: .int(dense.units)),
        .init(key: "activation", value: dense.activation.json),
        .init(key: "use_bias", value: .bool(dense.useBias)),
        .init(key: "init", value: dense.initializer.json),
      ]
    case .activation(let function):
      members.append(.init(key: "function", value: function.json))
    case .dropout(let rate):
      members.append(.init(key: "rate", value: .double(rate)))
    case .flatten:
      break
    case .layerNorm(let eps):
      members.append(.init(key: "eps", value: .double(eps)))
    case .batchNorm(let eps, let momentum):
      members += [.init(key: "eps", value: .double(eps)), .init(key: "momentum", value: .double(momentum))]
    case .conv2d(let conv):
      members += Self.convJSON(conv)
    case .maxPool2d(let pool), .avgPool2d(let pool):
      members += Self.poolJSON(pool)
    case .globalAvgPool:
      break
    case .reshape(let shape):
      members.append(.init(key: "shape", value: .array(shape.map { .int($0) })))
    }
    return .object(members)
  }

  /// Reads one layer; `name` is nil in the result's name when the file omits it (the model
  /// assigns one afterwards).
  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> (name: String?, kind: Kind, nameLocation: SourceLocation?)? {
    guard var reader = ObjectReader(value, at: path, log: log, what: "a layer object such as {\"type\": \"dense\", \"units\": 8}") else {
      return nil
    }
    var name: String?
    let nameLocation = reader.raw("name")?.location ?? value.location
    if let raw = reader.raw("name") {
      if let text = raw.stringValue, isValidName(text) {
        name = text
      } else {
        reader.wrong("name", raw, expected: "a name of letters, digits, '_' and '-' starting with a letter or '_'")
      }
    }
    // With no known type, the other keys cannot be judged: report the type alone.
    guard let type = reader.choice("type", typeNames.map { ($0, $0) }, what: "layer type") else { return nil }
    defer { reader.finish() }
    let kind: Kind
    switch type {
    case "dense":
      var dense = DenseLayer(units: reader.integer("units", .positive))
      if let activation = reader.raw("activation") {
        dense.activation = Activation.read(activation, at: path + "activation", log: log) ?? .identity
      }
      dense.useBias = reader.boolean("use_bias", default: true)
      if let initValue = reader.raw("init") { dense.initializer = DenseInit.read(initValue, at: path + "init", log: log) }
      kind = .dense(dense)
    case "activation":
      guard let function = reader.required("function") else { return nil }
      kind = .activation(function: Activation.read(function, at: path + "function", log: log) ?? .identity)
    case "dropout":
      kind = .dropout(rate: reader.number("rate", .halfOpen(0, 1)))
    case "flatten":
      kind = .flatten
    case "layer_norm":
      kind = .layerNorm(eps: reader.number("eps", default: defaultEps, .positiveFloat32))
    case "conv2d":
      kind = .conv2d(readConv(&reader, at: path, log: log))
    case "max_pool2d":
      kind = .maxPool2d(readPool(&reader, at: path, log: log))
    case "avg_pool2d":
      kind = .avgPool2d(readPool(&reader, at: path, log: log))
    case "global_avg_pool":
      kind = .globalAvgPool
    case "reshape":
      kind = .reshape(shape: readShape(&reader, at: path, log: log))
    default:
      kind = .batchNorm(
        eps: reader.number("eps", default: defaultEps, .positiveFloat32),
        momentum: reader.number("momentum", default: defaultBatchNormMomentum, .closed(0, 1)))
    }
    return (name, kind, nameLocation)
  }

  /// Layer names: letters, digits, `_` and `-`, starting with a letter or `_` (they become parts
  /// of tensor names such as `param/dense1.weight`, so `.` and `/` are not allowed).
  public static func isValidName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || first == "_" else { return false }
    return name.unicodeScalars.allSatisfy {
      $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-")
    }
  }
}
