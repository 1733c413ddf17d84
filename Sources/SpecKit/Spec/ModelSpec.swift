/// The model: the shape of one sample and the layers that run on it in order.
public struct ModelSpec: Hashable, Sendable {
  /// The shape of one sample, without the batch dimension.
  public var input: [Int]
  public var layers: [LayerSpec]
  /// Bayes by Backprop over some dense layers (format version 5), or nil for point weights.
  public var variational: VariationalSpec?

  public init(input: [Int], layers: [LayerSpec], variational: VariationalSpec? = nil) {
    self.input = input
    self.layers = layers
    self.variational = variational
  }

  /// The renames that make SpecBench's own layer names follow the layers' order: a layer named
  /// by its type and a number (`dense2`) is the *k*-th auto-named layer of its type and gets the
  /// number *k*; other names are the user's and stay. Only the names that change are listed
  /// (old → new); nothing when a new name would be taken by a layer the user named.
  public func namesInOrder() -> [String: String] {
    var counts: [String: Int] = [:]
    var renames: [String: String] = [:]
    for layer in layers where Self.isAutoName(layer.name, type: layer.kind.typeName) {
      let type = layer.kind.typeName
      counts[type, default: 0] += 1
      let wanted = "\(type)\(counts[type]!)"
      if wanted != layer.name { renames[layer.name] = wanted }
    }
    let kept = Set(layers.map(\.name)).subtracting(renames.keys)
    return renames.values.contains(where: kept.contains) ? [:] : renames
  }

  /// True for a name SpecBench gives: the layer's type followed by a positive number.
  static func isAutoName(_ name: String, type: String) -> Bool {
    guard name.hasPrefix(type) else { return false }
    let number = name.dropFirst(type.count)
    return !number.isEmpty && number.first != "0" && number.allSatisfy(\.isASCII) && number.allSatisfy(\.isNumber)
  }

  /// A fresh name for a layer of `typeName` that no layer in `taken` has: `dense1`, `dense2`, …
  public static func freshName(for typeName: String, avoiding taken: Set<String>, startingAt start: Int = 1) -> String {
    var n = start
    while taken.contains("\(typeName)\(n)") { n += 1 }
    return "\(typeName)\(n)"
  }

  public var json: JSONValue {
    .object([
      "input": .array(input.map { .int($0) }), "layers": .array(layers.map(\.json)), "variational": variational?.json ?? .null,
    ])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> ModelSpec? {
    guard var reader = ObjectReader(value, at: path, log: log) else { return nil }
    defer { reader.finish() }
    var input: [Int] = []
    if let raw = reader.required("input") {
      if let dims = raw.arrayValue, !dims.isEmpty, dims.allSatisfy({ ($0.numberValue?.int ?? 0) > 0 }) {
        input = dims.map { $0.numberValue!.int! }
      } else {
        reader.wrong("input", raw, expected: "a non-empty array of positive integers (the shape of one sample), such as [2]")
      }
    }
    // Keep failed layers as nil so that indices in later messages match the file.
    var read: [(name: String?, kind: LayerSpec.Kind, nameLocation: SourceLocation?)?] = []
    if let raw = reader.required("layers") {
      if let elements = raw.arrayValue {
        read = elements.enumerated().map { LayerSpec.read($0.element, at: path + "layers" + $0.offset, log: log) }
        if elements.isEmpty { log.report(path + "layers", "must contain at least one layer", at: raw.location) }
      } else {
        reader.wrong("layers", raw, expected: "an array of layer objects")
      }
    }
    // Names: explicit ones must be unique; missing ones are TYPE + the first free number,
    // counting layers of that type in order (dense1, dense2, …).
    var firstUse: [String: Int] = [:]
    for (index, layer) in read.enumerated() {
      guard let name = layer?.name else { continue }
      if let first = firstUse[name] {
        log.report(
          path + "layers" + index + "name",
          "\(JSONWriter.quoted(name)) is already the name of layers[\(first)]; layer names must be unique", at: layer?.nameLocation)
      } else {
        firstUse[name] = index
      }
    }
    var taken = Set(firstUse.keys)
    var counters: [String: Int] = [:]
    var layers: [LayerSpec] = []
    for case let layer? in read {
      let type = layer.kind.typeName
      let name: String
      if let given = layer.name {
        name = given
      } else {
        name = freshName(for: type, avoiding: taken, startingAt: counters[type, default: 0] + 1)
        taken.insert(name)
      }
      counters[type, default: 0] += 1
      layers.append(LayerSpec(name: name, kind: layer.kind))
    }
    var variational: VariationalSpec?
    if let raw = reader.raw("variational"), !raw.isNull { variational = VariationalSpec.read(raw, at: path + "variational", log: log) }
    return ModelSpec(input: input, layers: layers, variational: variational)
  }
}
