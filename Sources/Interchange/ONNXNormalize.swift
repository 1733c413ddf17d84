import SpecKit

/// Rewrites a graph as real exporters write it into the plain chain of operators that
/// `ONNXImport.GraphReader` maps onto layers, in three steps:
///
/// 1. **Constant folding.** `Constant` nodes (every `value*` form), `Identity` of a constant,
///    and integer arithmetic on shapes — `Shape`, `Gather`, `Unsqueeze`, `Squeeze`, `Concat`,
///    `Reshape` of a shape, `Cast` — become stored tensors. A shape may hold the batch axis, which is known to be the
///    batch without knowing its size: `x.view(x.size(0), -1)` becomes a fixed reshape.
/// 2. **Identity elimination.** An `Identity` of a computed value is removed and its readers
///    read its input.
/// 3. **Patterns.** `ONNXPatterns.table`: each exporter idiom (GELU written out, SiLU as
///    `Sigmoid` + `Mul`, PyTorch's guarded `Softplus`, layer norm written out, `ReduceMean` as a
///    global pool, `MatMul` as `Gemm`, a training-mode batch norm) becomes the one node it
///    means. A pattern applies only when the values inside it are read by nothing else.
///
/// Where an attribute became an input between opsets (`axes` of `Squeeze`, `Unsqueeze` and
/// `ReduceMean`; `ratio` of `Dropout`), both forms are read.
struct ONNXNormalizer {
  /// The domain of the canonical nodes that have no ONNX operator (SiLU). A file's own nodes
  /// may not use it.
  static let domain = "specbench.import"
  /// The most sweeps of the pattern table (two suffice for every exporter tested).
  static let passLimit = 8
  /// The longest integer vector folded: shapes are short, and a file's Concat of a large tensor
  /// with itself must not be made here.
  static let vectorLimit = 64

  var nodes: [ONNXNode]
  var constants: [String: ONNXTensor]
  var output: String
  let input: String
  let inputShape: [Int]
  let opset: Int
  var notes: [String] = []

  /// One entry of a shape computed in the graph: the batch axis (whatever its size), a size,
  /// or not known here.
  enum Dimension: Equatable {
    case batch
    case size(Int)
    case unknown
  }
  /// Integer vectors computed from `Shape`, which may hold the batch axis.
  var shapes: [String: [Dimension]] = [:]
  /// The shapes of which only the first entry is known (a `Shape` of a value inside the graph).
  var openEnded: Set<String> = []

  init(_ graph: ONNXGraph, input: String, inputShape: [Int], opset: Int) {
    nodes = graph.nodes
    constants = Dictionary(graph.initializers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    output = graph.outputs.first?.name ?? ""
    (self.input, self.inputShape, self.opset) = (input, inputShape, opset)
  }

  mutating func run() throws(InterchangeError) {
    if let reserved = nodes.first(where: { $0.domain == Self.domain }) {
      throw .unsupportedNode(node: reserved.name, op: reserved.opType, reason: "the domain \(Self.domain) is SpecBench's own, not a file's")
    }
    // Every pattern reads a node's first output: a node without one is refused before any does.
    if let bad = nodes.first(where: { $0.outputs.first?.isEmpty ?? true }) {
      throw .unsupportedNode(node: bad.name, op: bad.opType, reason: "it has no output")
    }
    try fold()
    var view = ONNXGraphView(nodes: nodes, constants: constants, output: output)
    var found: [String: Int] = [:]
    // Each pattern sweeps the whole graph once, taking every match whose nodes no earlier match
    // of the sweep took, and the graph is rebuilt once per sweep: linear in the nodes, however
    // many idioms a file holds. Sweeps repeat while a rewrite makes another match possible
    // (at most `passLimit` times; what is left is refused by the reader, naming its node).
    for _ in 0..<Self.passLimit {
      var changed = false
      for pattern in ONNXPatterns.table {
        var rewrites: [ONNXRewrite] = []
        var taken: Set<String> = []
        for index in view.nodes.indices {
          guard let rewrite = pattern.match(view, index) else { continue }
          let outputs = Set(rewrite.replaced.flatMap(\.outputs))
          guard outputs.isDisjoint(with: taken) else { continue }
          taken.formUnion(outputs)
          rewrites.append(rewrite)
          found[rewrite.pattern, default: 0] += 1
          notes += rewrite.note.map { [$0] } ?? []
        }
        if !rewrites.isEmpty {
          view.apply(rewrites)
          changed = true
        }
      }
      if !changed { break }
    }
    if !found.isEmpty {
      notes.append(
        "read as the layers they mean: " + found.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
    }
    nodes = view.nodes
  }

  // MARK: - Constant folding and identities

  mutating func fold() throws(InterchangeError) {
    var kept: [ONNXNode] = []
    var alias: [String: String] = [:]
    for var node in nodes {
      node.inputs = node.inputs.map { alias[$0] ?? $0 }
      guard node.domain.isEmpty || node.domain == "ai.onnx", node.outputs.count >= 1 else {
        kept.append(node)
        continue
      }
      if node.opType == "Identity", let from = node.inputs.first, constants[from] == nil, shapes[from] == nil, node.outputs.count == 1 {
        // The graph's output may be an identity's: it then ends where the identity reads.
        alias[node.outputs[0]] = from
        if output == node.outputs[0] { output = from }
        continue
      }
      if try foldConstant(node) { continue }
      kept.append(node)
    }
    nodes = kept
    // A shape with the batch axis first and sizes after it is a fixed reshape: 0 copies the
    // batch axis (and `allowzero`, which only changes what a 0 means, is dropped).
    for i in nodes.indices where nodes[i].opType == "Reshape" && nodes[i].inputs.count > 1 {
      let name = nodes[i].inputs[1]
      let literalZero = constants[name].map { $0.dataType == ONNXTensor.int64 && $0.ints.contains(0) } ?? false
      if let dims = shapes[name], !openEnded.contains(name), dims.first == .batch,
        case let sizes = dims.dropFirst().compactMap({ d -> Int? in if case .size(let s) = d { s } else { nil } }),
        sizes.count == dims.count - 1, !sizes.contains(0)
      {
        constants[name] = ONNXTensor(name: name, dims: [dims.count], ints: [0] + sizes)
        nodes[i].attributes.removeAll { $0.name == "allowzero" }
      } else if !literalZero {
        nodes[i].attributes.removeAll { $0.name == "allowzero" }
      }
    }
  }

  /// Folds a node whose value is known here into `constants` or `shapes`; false when it is not.
  mutating func foldConstant(_ node: ONNXNode) throws(InterchangeError) -> Bool {
    let out = node.outputs[0]
    switch node.opType {
    case "Constant":
      constants[out] = try Self.constantValue(node, name: out)
      return true
    case "Identity":
      guard let from = node.inputs.first else { return false }
      if let tensor = constants[from] {
        constants[out] = tensor
      } else if let dims = shapes[from] {
        shapes[out] = dims
        if openEnded.contains(from) { openEnded.insert(out) }
      } else {
        return false
      }
      return true
    case "Shape":
      guard let from = node.inputs.first else { return false }
      let start = node.attribute("start")?.int ?? 0
      guard from == input else {
        // Every value on the chain has the batch axis first; the sizes after it are not known
        // here, nor how many there are: only the entry at 0 can be read.
        guard start == 0, node.attribute("end") == nil else { return false }
        shapes[out] = [.batch]
        openEnded.insert(out)
        return true
      }
      // The graph's input: the batch axis, then its known sizes (`start` and `end` from opset 15).
      let dims: [Dimension] = [.batch] + inputShape.map { .size($0) }
      let rank = dims.count
      let end = node.attribute("end")?.int ?? rank
      let (lower, upper) = (min(max(start < 0 ? start + rank : start, 0), rank), min(max(end < 0 ? end + rank : end, 0), rank))
      store(lower < upper ? Array(dims[lower..<upper]) : [], as: out, dims: [max(0, upper - lower)])
      return true
    case "Gather":
      guard node.inputs.count == 2, (node.attribute("axis")?.int ?? 0) == 0, let data = shapes[node.inputs[0]] ?? vector(node.inputs[0]),
        let indices = constants[node.inputs[1]], indices.dataType == ONNXTensor.int64, indices.dims.count <= 1
      else { return false }
      if openEnded.contains(node.inputs[0]), indices.ints != [0] { return false }
      var picked: [Dimension] = []
      guard indices.ints.count <= Self.vectorLimit else { return false }
      for index in indices.ints {
        let i = index < 0 ? index + data.count : index
        guard i >= 0, i < data.count else { return false }
        picked.append(data[i])
      }
      // A scalar index gives a scalar: kept as one entry (Unsqueeze makes it a vector).
      store(picked, as: out, dims: indices.dims.isEmpty ? [] : [picked.count])
      return true
    case "Unsqueeze", "Squeeze":
      // Unsqueeze makes a vector of a scalar (a stored one must have no axes).
      guard let from = node.inputs.first, let data = vector(from), data.count <= 1 || node.opType == "Squeeze",
        node.opType == "Squeeze" || constants[from].map({ $0.dims.isEmpty }) ?? true
      else { return false }
      store(data, as: out, dims: node.opType == "Unsqueeze" || data.count != 1 ? [data.count] : [])
      return true
    case "Concat":
      guard (node.attribute("axis")?.int ?? 0) == 0 || node.attribute("axis")?.int == -1, !node.inputs.isEmpty else { return false }
      var joined: [Dimension] = []
      for name in node.inputs {
        guard let part = vector(name), joined.count + part.count <= Self.vectorLimit else { return false }
        joined += part
      }
      store(joined, as: out, dims: [joined.count])
      return true
    case "Reshape":
      // A shape made a vector (`[-1]` or its own length); a reshape of the chain is a layer.
      guard node.inputs.count == 2, let data = vector(node.inputs[0]), let target = constants[node.inputs[1]],
        target.dataType == ONNXTensor.int64, target.ints == [-1] || target.ints == [data.count]
      else { return false }
      store(data, as: out, dims: [data.count])
      return true
    case "Cast":
      guard let from = node.inputs.first, let to = node.attribute("to")?.int else { return false }
      if to == ONNXTensor.int64, let dims = shapes[from] {
        shapes[out] = dims
        if openEnded.contains(from) { openEnded.insert(out) }
        return true
      }
      guard let tensor = constants[from], tensor.external == nil else { return false }
      switch (tensor.dataType, to) {
      case (ONNXTensor.int64, ONNXTensor.float32):
        constants[out] = ONNXTensor(name: out, dims: tensor.dims, floats: tensor.ints.map(Float.init))
      case (ONNXTensor.float32, ONNXTensor.float32), (ONNXTensor.int64, ONNXTensor.int64): constants[out] = tensor
      case (ONNXTensor.float32, ONNXTensor.int64):
        guard tensor.floats.allSatisfy({ $0.isFinite && abs($0) < 9e15 }) else { return false }
        constants[out] = ONNXTensor(name: out, dims: tensor.dims, ints: tensor.floats.map { Int($0) })
      default: return false
      }
      return true
    default:
      return false
    }
  }

  /// An integer vector (or scalar) known here: a stored int64 tensor of at most one axis, or a
  /// computed shape.
  func vector(_ name: String) -> [Dimension]? {
    if let dims = shapes[name] { return openEnded.contains(name) ? nil : dims }
    guard let tensor = constants[name], tensor.dataType == ONNXTensor.int64, tensor.dims.count <= 1,
      tensor.ints.count <= Self.vectorLimit
    else { return nil }
    return tensor.ints.map { .size($0) }
  }

  /// Stores a vector: as a tensor when every entry is a number, else as a shape.
  mutating func store(_ values: [Dimension], as name: String, dims: [Int]) {
    let sizes = values.compactMap { d -> Int? in if case .size(let s) = d { s } else { nil } }
    if sizes.count == values.count {
      constants[name] = ONNXTensor(name: name, dims: dims, ints: sizes)
    } else {
      shapes[name] = values
    }
  }

  /// A `Constant` node's value, in whichever attribute it is (`value`, `value_float(s)`,
  /// `value_int(s)`).
  static func constantValue(_ node: ONNXNode, name: String) throws(InterchangeError) -> ONNXTensor {
    guard let attribute = node.attributes.first else {
      throw .unsupportedNode(node: node.name, op: node.opType, reason: "it has no value")
    }
    switch attribute.name {
    case "value" where attribute.tensor != nil: return attribute.tensor!
    case "value_float" where attribute.float != nil: return ONNXTensor(name: name, dims: [], floats: [attribute.float!])
    case "value_floats": return ONNXTensor(name: name, dims: [attribute.floats.count], floats: attribute.floats)
    case "value_int" where attribute.int != nil: return ONNXTensor(name: name, dims: [], ints: [attribute.int!])
    case "value_ints": return ONNXTensor(name: name, dims: [attribute.ints.count], ints: attribute.ints)
    default:
      throw .unsupportedNode(
        node: node.name, op: node.opType,
        reason: "its value is \(attribute.name); SpecBench reads value, value_float(s) and value_int(s)")
    }
  }
}

/// The graph while patterns rewrite it: its nodes in order, who makes and who reads each value.
struct ONNXGraphView {
  var nodes: [ONNXNode]
  let constants: [String: ONNXTensor]
  let output: String
  private(set) var producer: [String: Int] = [:]
  private(set) var readers: [String: [Int]] = [:]

  init(nodes: [ONNXNode], constants: [String: ONNXTensor], output: String) {
    (self.nodes, self.constants, self.output) = (nodes, constants, output)
    index()
  }

  mutating func index() {
    producer = [:]
    readers = [:]
    for (i, node) in nodes.enumerated() {
      for name in node.outputs where !name.isEmpty { producer[name] = i }
      // A node that reads a value twice (`d · d`) is one reader.
      for name in Set(node.inputs) where !name.isEmpty { readers[name, default: []].append(i) }
    }
  }

  /// The node that makes `name`, if any (not a constant or the graph's input).
  func made(_ name: String) -> ONNXNode? { producer[name].map { nodes[$0] } }

  /// The nodes that read `name`.
  func readBy(_ name: String) -> [ONNXNode] { (readers[name] ?? []).map { nodes[$0] } }

  /// The one node that reads `name`, when exactly one does and it is not the graph's output.
  func onlyReader(_ name: String) -> ONNXNode? {
    guard name != output, let list = readers[name], list.count == 1 else { return nil }
    return nodes[list[0]]
  }

  /// A stored scalar (one value, float32 or int64) as a float.
  func scalar(_ name: String) -> Float? {
    guard let tensor = constants[name], tensor.elementCount == 1 else { return nil }
    return tensor.dataType == ONNXTensor.float32 ? tensor.floats.first : tensor.ints.first.map(Float.init)
  }

  func isScalar(_ name: String, _ value: Float, tolerance: Float = 1e-6) -> Bool {
    scalar(name).map { abs($0 - value) <= tolerance * max(1, abs(value)) } ?? false
  }

  /// A standard-domain node of that op.
  static func isOp(_ node: ONNXNode?, _ op: String) -> Bool {
    guard let node else { return false }
    return node.opType == op && (node.domain.isEmpty || node.domain == "ai.onnx")
  }

  /// The other input of a two-input node, given one of them.
  static func other(_ node: ONNXNode, than name: String) -> String? {
    guard node.inputs.count == 2, node.inputs.contains(name) else { return nil }
    return node.inputs[0] == name ? node.inputs[1] : node.inputs[0]
  }

  /// Whether every value that `nodes` make, except `kept`, is read only by those nodes and is
  /// not the graph's output: the pattern can replace them all.
  func isClosed(_ group: [ONNXNode], keeping kept: String) -> Bool {
    let members = Set(group.flatMap(\.outputs))
    for node in group {
      for value in node.outputs where value != kept && !value.isEmpty {
        if value == output { return false }
        for reader in readBy(value) where !group.contains(reader) { return false }
      }
    }
    return members.contains(kept)
  }

  /// Replaces each rewrite's nodes (no node in two rewrites) by the nodes it makes, at the place
  /// of the last node it replaces: what those read comes before, what reads them after.
  mutating func apply(_ rewrites: [ONNXRewrite]) {
    var owner: [String: Int] = [:]
    for (r, rewrite) in rewrites.enumerated() { for value in rewrite.replaced.flatMap(\.outputs) where !value.isEmpty { owner[value] = r } }
    var last: [Int: Int] = [:]
    var removed: Set<Int> = []
    for (i, node) in nodes.enumerated() {
      guard let r = node.outputs.lazy.compactMap({ owner[$0] }).first else { continue }
      removed.insert(i)
      last[r] = i
    }
    let placed = Dictionary(last.map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    var next: [ONNXNode] = []
    next.reserveCapacity(nodes.count)
    for (i, node) in nodes.enumerated() {
      if let r = placed[i] { next += rewrites[r].nodes }
      if !removed.contains(i) { next.append(node) }
    }
    nodes = next
    index()
  }
}

/// What a pattern found: the nodes it replaces, the nodes they mean, the pattern's short name
/// (for the import's notes) and anything the user should know.
struct ONNXRewrite {
  var replaced: [ONNXNode]
  var nodes: [ONNXNode]
  var pattern: String
  var note: String?
}

/// An exporter idiom: `match` looks at the node at an index and returns the rewrite when the
/// idiom starts there.
struct ONNXPattern: Sendable {
  let name: String
  let match: @Sendable (ONNXGraphView, Int) -> ONNXRewrite?
}
