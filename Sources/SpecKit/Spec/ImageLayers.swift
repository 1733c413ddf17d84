/// A size per image axis: height, then width (a spec may write one integer for both).
public struct Pair: Hashable, Sendable, CustomStringConvertible {
  public var height: Int
  public var width: Int

  public init(_ height: Int, _ width: Int) {
    self.height = height
    self.width = width
  }

  public init(_ both: Int) { self.init(both, both) }

  public var description: String { "[\(height), \(width)]" }
  var json: JSONValue { .array([.int(height), .int(width)]) }

  /// Reads `k` or `[kh, kw]`, each accepted by `rule`.
  static func read(_ value: JSONValue, at path: JSONPath, rule: Rule<Int>, log: IssueLog) -> Pair? {
    if let n = value.numberValue?.int, rule.accepts(n) { return Pair(n) }
    if let items = value.arrayValue, items.count == 2, let h = items[0].numberValue?.int, let w = items[1].numberValue?.int,
      rule.accepts(h), rule.accepts(w)
    {
      return Pair(h, w)
    }
    log.report(
      path, "must be \(rule.expected), or a pair [height, width] of them, got \(value.excerpt())", at: value.location)
    return nil
  }
}

/// How a convolution or pool pads its input.
public enum Padding: Hashable, Sendable, CustomStringConvertible {
  /// The same padding before and after on each axis (`"valid"` is `[0, 0]`).
  case explicit(Pair)
  /// PyTorch's `"same"` (stride 1): `d·(k − 1)` per axis, half before (rounded down), the rest after.
  case same

  public var description: String {
    switch self {
    case .explicit(let pair): pair.description
    case .same: "same"
    }
  }

  var json: JSONValue {
    switch self {
    case .explicit(let pair): pair.json
    case .same: .string("same")
    }
  }

  /// The padding before and after on one axis for a kernel `k` with dilation `d`.
  func amounts(kernel: Int, dilation: Int, axis: KeyPath<Pair, Int>) -> (before: Int, after: Int) {
    guard case .explicit(let pair) = self else {
      let total = dilation * (kernel - 1)
      return (total / 2, total - total / 2)
    }
    return (pair[keyPath: axis], pair[keyPath: axis])
  }
}

/// The geometry of a 2-D window sliding over `[C, H, W]`: kernel, stride, padding, dilation.
public struct Window: Hashable, Sendable {
  public var kernel: Pair
  public var stride: Pair
  public var padding: Padding
  public var dilation: Pair

  public init(kernel: Pair, stride: Pair = Pair(1), padding: Padding = .explicit(Pair(0)), dilation: Pair = Pair(1)) {
    self.kernel = kernel
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
  }

  /// The padding before each axis (top, left) and after (bottom, right).
  public var padBefore: Pair {
    Pair(
      padding.amounts(kernel: kernel.height, dilation: dilation.height, axis: \.height).before,
      padding.amounts(kernel: kernel.width, dilation: dilation.width, axis: \.width).before)
  }
  public var padAfter: Pair {
    Pair(
      padding.amounts(kernel: kernel.height, dilation: dilation.height, axis: \.height).after,
      padding.amounts(kernel: kernel.width, dilation: dilation.width, axis: \.width).after)
  }

  /// The output size on one axis: floor((n + before + after − d·(k − 1) − 1) / s) + 1, or nil
  /// when the window does not fit once.
  static func outputSize(_ n: Int, kernel k: Int, stride s: Int, before: Int, after: Int, dilation d: Int) -> Int? {
    let span = n + before + after - d * (k - 1) - 1
    guard span >= 0 else { return nil }
    return span / s + 1
  }

  /// The output's height and width for an input `[H, W]`, or the axis where it does not fit.
  public func output(height: Int, width: Int) -> Result<Pair, WindowMismatch> {
    let (before, after) = (padBefore, padAfter)
    guard
      let oh = Self.outputSize(
        height, kernel: kernel.height, stride: stride.height, before: before.height, after: after.height, dilation: dilation.height)
    else {
      return .failure(WindowMismatch(axis: "height", size: height, padded: height + before.height + after.height, reach: reach.height))
    }
    guard
      let ow = Self.outputSize(
        width, kernel: kernel.width, stride: stride.width, before: before.width, after: after.width, dilation: dilation.width)
    else { return .failure(WindowMismatch(axis: "width", size: width, padded: width + before.width + after.width, reach: reach.width)) }
    return .success(Pair(oh, ow))
  }

  /// How far one window reaches on each axis: d·(k − 1) + 1.
  public var reach: Pair { Pair(dilation.height * (kernel.height - 1) + 1, dilation.width * (kernel.width - 1) + 1) }
}

/// Why a window does not fit its input on one axis.
public struct WindowMismatch: Error, Hashable, Sendable {
  public var axis: String
  public var size: Int
  public var padded: Int
  public var reach: Int
}

/// A 2-D convolution's fields (PyTorch's `Conv2d`).
public struct Conv2DLayer: Hashable, Sendable {
  public var filters: Int
  public var window: Window
  public var groups: Int
  public var activation: Activation
  public var useBias: Bool
  public var initializer: DenseInit

  public init(
    filters: Int, kernel: Pair, stride: Pair = Pair(1), padding: Padding = .explicit(Pair(0)), dilation: Pair = Pair(1), groups: Int = 1,
    activation: Activation = .identity, useBias: Bool = true, initializer: DenseInit = DenseInit()
  ) {
    self.filters = filters
    self.window = Window(kernel: kernel, stride: stride, padding: padding, dilation: dilation)
    self.groups = groups
    self.activation = activation
    self.useBias = useBias
    self.initializer = initializer
  }
}

/// A pool's fields (PyTorch's `MaxPool2d` and `AvgPool2d` without dilation, floor mode).
public struct PoolLayer: Hashable, Sendable {
  public var window: Window

  public init(kernel: Pair, stride: Pair? = nil, padding: Pair = Pair(0)) {
    window = Window(kernel: kernel, stride: stride ?? kernel, padding: .explicit(padding))
  }
}

extension LayerSpec {
  static func convJSON(_ conv: Conv2DLayer) -> [JSONObject.Member] {
    [
      .init(key: "filters", value: .int(conv.filters)),
      .init(key: "kernel", value: conv.window.kernel.json),
      .init(key: "stride", value: conv.window.stride.json),
      .init(key: "padding", value: conv.window.padding.json),
      .init(key: "dilation", value: conv.window.dilation.json),
      .init(key: "groups", value: .int(conv.groups)),
      .init(key: "activation", value: conv.activation.json),
      .init(key: "use_bias", value: .bool(conv.useBias)),
      .init(key: "init", value: conv.initializer.json),
    ]
  }

  static func poolJSON(_ pool: PoolLayer) -> [JSONObject.Member] {
    let padding: JSONValue = if case .explicit(let pair) = pool.window.padding { pair.json } else { .null }
    return [
      .init(key: "kernel", value: pool.window.kernel.json), .init(key: "stride", value: pool.window.stride.json),
      .init(key: "padding", value: padding),
    ]
  }

  static func readConv(_ reader: inout ObjectReader, at path: JSONPath, log: IssueLog) -> Conv2DLayer {
    let filters = reader.integer("filters", .positive)
    let kernel = readPair(&reader, "kernel", default: nil, rule: .positive, at: path, log: log)
    let stride = readPair(&reader, "stride", default: Pair(1), rule: .positive, at: path, log: log)
    let dilation = readPair(&reader, "dilation", default: Pair(1), rule: .positive, at: path, log: log)
    var padding = Padding.explicit(Pair(0))
    if let raw = reader.raw("padding") {
      switch raw.stringValue {
      case "valid": padding = .explicit(Pair(0))
      case "same":
        padding = .same
        if stride != Pair(1) {
          log.report(
            path + "padding", "\"same\" needs stride 1 (as PyTorch's), but stride is \(stride); give the padding as numbers",
            at: raw.location)
        }
      case let word?:
        log.report(
          path + "padding",
          "must be \"same\", \"valid\", a non-negative integer or a pair of them, got \(JSONWriter.quoted(word))"
            + Suggestion.hint(for: word, in: ["same", "valid"]), at: raw.location)
      case nil:
        padding = .explicit(Pair.read(raw, at: path + "padding", rule: .nonNegative, log: log) ?? Pair(0))
      }
    }
    var conv = Conv2DLayer(
      filters: filters, kernel: kernel, stride: stride, padding: padding, dilation: dilation,
      groups: reader.integer("groups", default: 1, .positive))
    if let activation = reader.raw("activation") {
      conv.activation = Activation.read(activation, at: path + "activation", log: log) ?? .identity
    }
    conv.useBias = reader.boolean("use_bias", default: true)
    if let initValue = reader.raw("init") { conv.initializer = DenseInit.read(initValue, at: path + "init", log: log) }
    if filters % conv.groups != 0 {
      log.report(path + "groups", "must divide filters (\(filters)), got \(conv.groups)", at: nil)
    }
    return conv
  }

  static func readPool(_ reader: inout ObjectReader, at path: JSONPath, log: IssueLog) -> PoolLayer {
    let kernel = readPair(&reader, "kernel", default: nil, rule: .positive, at: path, log: log)
    var stride = kernel
    if let raw = reader.raw("stride"), !raw.isNull {
      stride = Pair.read(raw, at: path + "stride", rule: .positive, log: log) ?? kernel
    }
    let padding = readPair(&reader, "padding", default: Pair(0), rule: .nonNegative, at: path, log: log)
    if padding.height > kernel.height / 2 || padding.width > kernel.width / 2 {
      log.report(
        path + "padding", "must be at most half the kernel on each axis (PyTorch's rule), got \(padding) for kernel \(kernel)", at: nil)
    }
    return PoolLayer(kernel: kernel, stride: stride, padding: padding)
  }

  private static func readPair(
    _ reader: inout ObjectReader, _ key: String, default fallback: Pair?, rule: Rule<Int>, at path: JSONPath, log: IssueLog
  ) -> Pair {
    guard let raw = fallback == nil ? reader.required(key) : reader.raw(key) else { return fallback ?? Pair(1) }
    return Pair.read(raw, at: path + key, rule: rule, log: log) ?? fallback ?? Pair(1)
  }

  /// Reads `reshape`'s `shape`: positive integers and at most one -1.
  static func readShape(_ reader: inout ObjectReader, at path: JSONPath, log: IssueLog) -> [Int] {
    guard let raw = reader.required("shape") else { return [1] }
    let expected = "a non-empty array of positive integers with at most one -1, such as [16, 7, 7]"
    guard let items = raw.arrayValue, !items.isEmpty,
      let dims = Optional(items.compactMap { $0.numberValue?.int }), dims.count == items.count,
      dims.allSatisfy({ $0 > 0 || $0 == -1 }), dims.filter({ $0 == -1 }).count <= 1
    else {
      log.report(path + "shape", "must be \(expected), got \(raw.excerpt())", at: raw.location)
      return [-1]
    }
    return dims
  }
}
