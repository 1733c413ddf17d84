import Foundation
import SpecKit

/// An ONNX model as a SpecBench session: graphs of the shapes that PyTorch's exporters (both)
/// and Keras' produce for MLPs and CNNs — one float input, one output, and, after
/// `ONNXNormalizer` has folded constants and read the exporters' idioms, a chain of `Gemm`
/// (either weight layout), activations (`Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Softplus`,
/// `Elu`, `Gelu`, `Softmax`, SiLU), `Flatten`, `Reshape`, `Dropout`, `LayerNormalization`,
/// `BatchNormalization`, `Conv` and the pools. Anything else is refused with the node and its
/// op, before anything is written.
public enum ONNXImport {
  /// The session (its weights as state at step 0) and notes for the user.
  public static func session(from bytes: [UInt8], file: String, name: String) throws(InterchangeError) -> (
    bundle: SessionBundle, notes: [String]
  ) {
    var model: ONNXModel
    do { model = try ONNXModel.decode(bytes) } catch { throw .malformed(file: file, offset: error.offset, message: error.message) }
    // Weights in a file beside the model (PyTorch's default exporter writes MODEL.onnx.data).
    try model.readExternalData(folder: PathText.folderOrCurrent(file))
    var reader = try GraphReader(
      model.graph, opsetVersion: model.opsets.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 17)
    try reader.read()
    let (bundle, placeholder) = try ImportedSession.make(
      name: name, file: file, input: reader.inputShape, layers: reader.layers, tensors: reader.tensors,
      outputWidth: reader.outputWidth, endsWithSoftmax: reader.endsWithSoftmax)
    var notes = [
      "\(model.graph.nodes.count) nodes became \(reader.layers.count) layers: "
        + reader.layers.map { "\($0.name) (\($0.kind.typeName))" }.joined(separator: ", "),
      "from \(model.producerName.isEmpty ? "an unnamed producer" : model.producerName) \(model.producerVersion), opset \(reader.opsetVersion)",
      placeholder,
    ]
    notes += reader.notes
    return (bundle, notes)
  }

  /// Walks the graph's nodes as one chain from the input to the output.
  struct GraphReader {
    let graph: ONNXGraph
    let opsetVersion: Int
    /// The graph's nodes and stored tensors after `ONNXNormalizer`, and the value it ends at.
    var nodes: [ONNXNode] = []
    var constants: [String: ONNXTensor] = [:]
    var outputName = ""
    var layers: [LayerSpec] = []
    var tensors: [String: StoredTensor] = [:]
    var notes: [String] = []
    var inputShape: [Int] = []
    var outputWidth = 0
    var endsWithSoftmax = false
    /// The tensor the chain has reached, and its shape (without the batch axis).
    var current = ""
    var shape: [Int] = []
    /// Whether `current` is the output of the last dense layer with no activation yet (an
    /// activation that follows becomes the layer's own).
    var openDense: Int?

    init(_ graph: ONNXGraph, opsetVersion: Int) throws(InterchangeError) {
      self.graph = graph
      self.opsetVersion = opsetVersion
      let stored = Set(graph.initializers.map(\.name))
      let inputs = graph.inputs.filter { !stored.contains($0.name) }
      guard inputs.count == 1, let input = inputs.first else {
        throw .unsupportedGraph(
          "the graph has \(inputs.count) data inputs (\(inputs.map(\.name).joined(separator: ", "))); SpecBench imports models with one")
      }
      guard input.elementType == nil || input.elementType == ONNXTensor.float32 else {
        throw .unsupportedGraph("the input \(input.name) has element type \(input.elementType!); SpecBench imports float32 models")
      }
      guard let dims = input.shape, dims.count >= 2 else {
        throw .unsupportedGraph(
          "the input \(input.name) needs a shape of [batch, features…] to import; it has \(input.shape.map { "\($0.count) axes" } ?? "none")"
        )
      }
      let sample = dims.dropFirst().map { dimension -> Int? in if case .value(let v) = dimension, v > 0 { v } else { nil } }
      guard sample.allSatisfy({ $0 != nil }) else {
        throw .unsupportedGraph(
          "the input \(input.name) has a symbolic or unknown axis after the batch axis; SpecBench needs fixed sample shapes")
      }
      inputShape = sample.map { $0! }
      guard Self.product(inputShape) != nil else {
        throw .unsupportedGraph("the input \(input.name) has sample shape \(inputShape), more than 2^40 values per sample")
      }
      guard graph.outputs.count == 1 else {
        throw .unsupportedGraph("the graph has \(graph.outputs.count) outputs; SpecBench imports models with one")
      }
      current = input.name
      shape = inputShape
      var normalizer = ONNXNormalizer(graph, input: input.name, inputShape: inputShape, opset: opsetVersion)
      try normalizer.run()
      (nodes, constants, outputName, notes) = (normalizer.nodes, normalizer.constants, normalizer.output, normalizer.notes)
    }

    mutating func read() throws(InterchangeError) {
      if let bad = nodes.first(where: { $0.outputs.first?.isEmpty ?? true }) {
        throw .unsupportedNode(node: bad.name, op: bad.opType, reason: "it has no output")
      }
      // A graph that flattens its input keeps the input's shape, with a flatten layer: the
      // session takes the samples the original model takes.
      var index = 0
      while index < nodes.count {
        index += try readNode(at: index, in: nodes)
      }
      guard current == outputName else {
        throw .unsupportedGraph("the chain of nodes ends at \(current), but the graph's output is \(graph.outputs[0].name)")
      }
      outputWidth = shape.last ?? 0
    }

    func weight(_ name: String, node: ONNXNode) throws(InterchangeError) -> ONNXTensor {
      guard let tensor = constants[name] else {
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason: "\(name) is computed in the graph, not a stored weight; SpecBench imports stored weights")
      }
      guard tensor.dataType == ONNXTensor.float32, tensor.floats.count == tensor.elementCount else {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "\(name) is not float32 data (type \(tensor.dataType)); SpecBench reads float32 weights"
        )
      }
      if let bad = tensor.floats.firstIndex(where: { !$0.isFinite }) {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "\(name) holds \(tensor.floats[bad]) at flat index \(bad); weights must be finite")
      }
      return tensor
    }

    /// The node's `index`-th input, or a refusal naming what is missing.
    func input(_ node: ONNXNode, _ index: Int, _ what: String) throws(InterchangeError) -> String {
      guard node.inputs.count > index, !node.inputs[index].isEmpty else {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "it has \(node.inputs.count) inputs, but needs its \(what) as input \(index + 1)")
      }
      return node.inputs[index]
    }

    /// A float attribute, which must be finite.
    func number(_ node: ONNXNode, _ name: String, default fallback: Float) throws(InterchangeError) -> Float {
      guard let attribute = node.attribute(name) else { return fallback }
      guard let value = attribute.float else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "attribute \(name) is not a float")
      }
      guard value.isFinite else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "attribute \(name) is \(value); it must be a finite number")
      }
      return value
    }

    /// The product of `dims`, or nil past 2^40.
    static func product(_ dims: [Int]) -> Int? {
      var total = 1
      for dim in dims {
        let (next, overflow) = total.multipliedReportingOverflow(by: dim)
        guard !overflow, next <= 1 << 40 else { return nil }
        total = next
      }
      return total
    }

    func scalar(_ name: String) -> Float? {
      guard let tensor = constants[name], tensor.elementCount == 1 else { return nil }
      return tensor.dataType == ONNXTensor.float32 ? tensor.floats.first : tensor.ints.first.map(Float.init)
    }

    /// The node's data input must be where the chain is.
    func requireChain(_ node: ONNXNode, _ input: String?) throws(InterchangeError) {
      guard input == current else {
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason: "it reads \(input ?? "nothing") where the chain is at \(current); SpecBench imports graphs that are one chain of layers")
      }
    }

    /// The next number for each layer type's names (`dense3`): naming stays linear in the
    /// number of layers.
    var nextNumber: [String: Int] = [:]

    mutating func addLayer(_ kind: LayerSpec.Kind, output: String) {
      let number = nextNumber[kind.typeName, default: 1]
      nextNumber[kind.typeName] = number + 1
      layers.append(LayerSpec(name: "\(kind.typeName)\(number)", kind: kind))
      current = output
    }

    mutating func addDense(weight: [Float], out: Int, inputs: Int, bias: [Float]?, output: String) {
      addLayer(.dense(DenseLayer(units: out, useBias: bias != nil)), output: output)
      let name = layers.last!.name
      tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: [out, inputs], scalars: weight)
      if let bias { tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [out], scalars: bias) }
      shape = [out]
      openDense = layers.count - 1
    }

    /// The activation as the last dense layer's own when the chain is right after it, or as an
    /// activation layer.
    mutating func addActivation(_ function: Activation, output: String) {
      if let open = openDense, case .dense(var dense) = layers[open].kind, dense.activation == .identity {
        dense.activation = function
        layers[open].kind = .dense(dense)
        current = output
      } else if let open = openDense, case .conv2d(var conv) = layers[open].kind, conv.activation == .identity, function != .softmax {
        conv.activation = function
        layers[open].kind = .conv2d(conv)
        current = output
      } else {
        addLayer(.activation(function: function), output: output)
      }
      openDense = nil
      endsWithSoftmax = function == .softmax
    }

    /// Reads the node at `index` (and the nodes a pattern takes with it); returns how many.
    mutating func readNode(at index: Int, in nodes: [ONNXNode]) throws(InterchangeError) -> Int {
      let node = nodes[index]
      guard node.domain.isEmpty || node.domain == "ai.onnx" || node.domain == ONNXNormalizer.domain else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "operators of domain \(node.domain) are not imported")
      }
      guard let output = node.outputs.first else { throw .unsupportedNode(node: node.name, op: node.opType, reason: "it has no output") }
      let wasOpen = openDense
      endsWithSoftmax = false
      switch node.opType {
      case "Gemm":
        try requireChain(node, node.inputs.first)
        guard shape.count == 1 else {
          throw .unsupportedNode(node: node.name, op: "Gemm", reason: "its input has shape \(shape) per sample; Gemm needs one axis")
        }
        if node.attribute("transA")?.int ?? 0 != 0 {
          throw .unsupportedNode(node: node.name, op: "Gemm", reason: "transA=1 (the batch on the second axis) is not a dense layer")
        }
        let b = try weight(input(node, 1, "weight"), node: node)
        let transB = (node.attribute("transB")?.int ?? 0) != 0
        guard b.dims.count == 2, b.dims[transB ? 1 : 0] == shape[0] else {
          throw .unsupportedNode(
            node: node.name, op: "Gemm", reason: "its weight \(b.name) has shape \(b.dims), which does not take \(shape[0]) inputs")
        }
        let out = b.dims[transB ? 0 : 1]
        let alpha = try number(node, "alpha", default: 1), beta = try number(node, "beta", default: 1)
        var w = transB ? b.floats : WeightLayouts.transpose(b.floats, rows: b.dims[0], columns: b.dims[1])
        if alpha != 1 { w = w.map { $0 * alpha } }
        var bias: [Float]?
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
          let c = try weight(node.inputs[2], node: node)
          guard c.elementCount == out || c.elementCount == 1 else {
            throw .unsupportedNode(
              node: node.name, op: "Gemm", reason: "its bias \(c.name) has shape \(c.dims); a dense layer needs [\(out)]")
          }
          bias = (c.elementCount == 1 ? Array(repeating: c.floats[0], count: out) : c.floats).map { $0 * beta }
        }
        addDense(weight: w, out: out, inputs: shape[0], bias: bias, output: output)
        return 1
      case "Add":
        // A bias added after a dense layer without one (or with one: the two add up).
        let other = node.inputs.first { $0 != current } ?? ""
        try requireChain(node, node.inputs.contains(current) ? current : node.inputs.first)
        guard let open = wasOpen, let c = constants[other], c.dataType == ONNXTensor.float32, c.elementCount == shape.last,
          case .dense(var dense) = layers[open].kind
        else {
          throw .unsupportedNode(node: node.name, op: "Add", reason: "only a bias added right after a dense layer is imported")
        }
        let name = layers[open].name
        let old = tensors[StateKey.parameter("\(name).bias")]?.scalars ?? Array(repeating: 0, count: c.elementCount)
        tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [c.elementCount], scalars: zip(old, c.floats).map { $0 + $1 })
        dense.useBias = true
        layers[open].kind = .dense(dense)
        current = output
        openDense = open
        return 1
      case "Relu", "Sigmoid", "Tanh", "Softplus", "LeakyRelu", "Elu", "Gelu", "Softmax", "Silu":
        try requireChain(node, node.inputs.first)
        addActivation(node.opType == "Silu" ? .silu : try activation(node), output: output)
        return 1
      case "MatMul":
        // The normaliser made every MatMul with a stored [in, out] weight a Gemm: say what this one lacks.
        let weight = try input(node, 1, "weight")
        guard let b = constants[weight] else {
          throw .unsupportedNode(
            node: node.name, op: node.opType,
            reason: "\(weight) is computed in the graph, not a stored weight; SpecBench imports stored weights")
        }
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "its weight \(weight) has shape \(b.dims); a dense layer's is [in, out] (two axes)")
      case "Div", "Mul", "Sub", "Pow", "Sqrt", "Erf", "Greater", "Where", "ReduceMean":
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason:
            "\(node.opType) is imported only as part of an idiom SpecBench recognises (MatMul + Add with stored weights, GELU or layer norm written out, SiLU as Sigmoid · x, PyTorch's guarded Softplus, ReduceMean over the image axes; docs/interchange.md), and this one is not"
        )
      case "Flatten":
        try requireChain(node, node.inputs.first)
        let axis = node.attribute("axis")?.int ?? 1
        guard axis == 1 else {
          throw .unsupportedNode(node: node.name, op: "Flatten", reason: "axis=\(axis); SpecBench flattens after the batch axis (axis=1)")
        }
        addLayer(.flatten, output: output)
        shape = [Self.product(shape)!]
        openDense = nil
        return 1
      case "Identity":
        try requireChain(node, node.inputs.first)
        current = output
        openDense = wasOpen
        return 1
      case "Dropout":
        try requireChain(node, node.inputs.first)
        var rate = Double(try number(node, "ratio", default: 0.5))
        if node.inputs.count > 1, !node.inputs[1].isEmpty, let ratio = scalar(node.inputs[1]) { rate = Double(ratio) }
        guard rate >= 0 && rate < 1 else {
          throw .unsupportedNode(node: node.name, op: "Dropout", reason: "ratio \(rate) is not in [0, 1)")
        }
        addLayer(.dropout(rate: rate), output: output)
        openDense = nil
        return 1
      case "LayerNormalization":
        try requireChain(node, node.inputs.first)
        let axis = node.attribute("axis")?.int ?? -1
        guard axis == -1 || axis == shape.count else {
          throw .unsupportedNode(node: node.name, op: node.opType, reason: "axis=\(axis); SpecBench normalises the last axis (axis=-1)")
        }
        let features = shape.last ?? 0
        // No scale only in SpecBench's own form: layer norm written out without `· scale`.
        let scale =
          node.domain == ONNXNormalizer.domain && node.inputs[1].isEmpty
          ? Array(repeating: 1, count: features) : try weight(input(node, 1, "scale"), node: node).floats
        let bias =
          node.inputs.count > 2 && !node.inputs[2].isEmpty
          ? try weight(node.inputs[2], node: node).floats : Array(repeating: 0, count: features)
        guard scale.count == features, bias.count == features else {
          throw .unsupportedNode(node: node.name, op: node.opType, reason: "scale and bias need \(features) values each")
        }
        addLayer(.layerNorm(eps: Double(try number(node, "epsilon", default: 1e-5))), output: output)
        let name = layers.last!.name
        tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: [features], scalars: scale)
        tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [features], scalars: bias)
        openDense = nil
        return 1
      case "BatchNormalization":
        try requireChain(node, node.inputs.first)
        if (node.attribute("training_mode")?.int ?? 0) != 0 {
          throw .unsupportedNode(node: node.name, op: node.opType, reason: "training_mode=1; SpecBench imports the inference form")
        }
        let channels = shape.first ?? 0
        let parts = try (1...4).map { (i: Int) throws(InterchangeError) -> [Float] in
          guard node.inputs.count > i else {
            throw .unsupportedNode(node: node.name, op: node.opType, reason: "it needs scale, bias, mean and variance")
          }
          let tensor = try weight(node.inputs[i], node: node)
          guard tensor.elementCount == channels else {
            throw .unsupportedNode(
              node: node.name, op: node.opType, reason: "\(tensor.name) has \(tensor.elementCount) values for \(channels) channels")
          }
          return tensor.floats
        }
        let momentum = Double(try number(node, "momentum", default: 0.9))
        addLayer(.batchNorm(eps: Double(try number(node, "epsilon", default: 1e-5)), momentum: 1 - momentum), output: output)
        let name = layers.last!.name
        for (key, values) in [
          (StateKey.parameter(name + ".weight"), parts[0]), (.parameter(name + ".bias"), parts[1]),
          (.buffer(name + ".running_mean"), parts[2]), (.buffer(name + ".running_var"), parts[3]),
        ] {
          tensors[key] = StoredTensor(shape: [channels], scalars: values)
        }
        openDense = nil
        return 1
      case "Conv":
        try requireChain(node, node.inputs.first)
        try readConv(node, output: output)
        return 1
      case "MaxPool", "AveragePool":
        try requireChain(node, node.inputs.first)
        try readPool(node, output: output)
        return 1
      case "GlobalAveragePool":
        try requireChain(node, node.inputs.first)
        _ = try imageShape(node)
        // [N, C, 1, 1] then a flatten or reshape to [N, C] is the format's global_avg_pool.
        if index + 1 < nodes.count, nodes[index + 1].inputs.first == output,
          nodes[index + 1].opType == "Flatten" && (nodes[index + 1].attribute("axis")?.int ?? 1) == 1
            || nodes[index + 1].opType == "Reshape" && reshapeTarget(nodes[index + 1]) == [shape[0]]
        {
          addLayer(.globalAvgPool, output: nodes[index + 1].outputs[0])
          shape = [shape[0]]
          openDense = nil
          return 2
        }
        addLayer(.globalAvgPool, output: output)
        addLayer(.reshape(shape: [shape[0], 1, 1]), output: output)
        shape = [shape[0], 1, 1]
        openDense = nil
        return 1
      case "Reshape":
        try requireChain(node, node.inputs.first)
        guard let target = reshapeTarget(node) else {
          throw .unsupportedNode(
            node: node.name, op: node.opType,
            reason:
              "its shape is not a stored int64 tensor that keeps the batch axis (0 or -1 first) and gives a sample of \(Self.product(shape)!) values; SpecBench imports fixed reshapes"
          )
        }
        addLayer(target.count == 1 ? .flatten : .reshape(shape: target), output: output)
        shape = target
        openDense = nil
        return 1
      default:
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason:
            "SpecBench imports chains of Gemm, MatMul + Add, Conv, MaxPool, AveragePool, GlobalAveragePool, Relu, LeakyRelu, Sigmoid, Tanh, "
            + "Softplus, Elu, Gelu, Softmax, Flatten, Reshape, Identity, Dropout, LayerNormalization and BatchNormalization")
      }
    }

    /// The chain's sample as an image `[C, H, W]`, or a refusal.
    func imageShape(_ node: ONNXNode) throws(InterchangeError) -> (channels: Int, height: Int, width: Int) {
      guard shape.count == 3 else {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "its input has sample shape \(shape); SpecBench imports 2-D image ops on [C, H, W]")
      }
      return (shape[0], shape[1], shape[2])
    }

    /// An integer-list attribute of two values (or its default); refused otherwise.
    func pairAttribute(_ node: ONNXNode, _ name: String, default fallback: Pair?) throws(InterchangeError) -> Pair {
      guard let attribute = node.attribute(name) else {
        guard let fallback else { throw .unsupportedNode(node: node.name, op: node.opType, reason: "it has no \(name)") }
        return fallback
      }
      guard attribute.ints.count == 2, attribute.ints.allSatisfy({ $0 >= 0 && $0 < 1 << 20 }) else {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "\(name) is \(attribute.ints); SpecBench imports 2-D windows (two values)")
      }
      return Pair(attribute.ints[0], attribute.ints[1])
    }

    /// The padding of a window: ONNX's `pads` (top, left, bottom, right) or `auto_pad`, as the
    /// format's padding (equal on both sides, or PyTorch's "same" for a stride of 1).
    func padding(_ node: ONNXNode, kernel: Pair, stride: Pair, dilation: Pair) throws(InterchangeError) -> Padding {
      let auto = node.attribute("auto_pad")?.string ?? "NOTSET"
      let same = Window(kernel: kernel, stride: stride, padding: .same, dilation: dilation)
      switch auto {
      case "NOTSET":
        guard let pads = node.attribute("pads")?.ints else { return .explicit(Pair(0)) }
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 < 1 << 20 }) else {
          throw .unsupportedNode(node: node.name, op: node.opType, reason: "pads is \(pads); SpecBench imports four non-negative pads")
        }
        if pads[0] == pads[2] && pads[1] == pads[3] { return .explicit(Pair(pads[0], pads[1])) }
        if stride == Pair(1), same.padBefore == Pair(pads[0], pads[1]), same.padAfter == Pair(pads[2], pads[3]) { return .same }
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason: "pads \(pads) differ before and after; SpecBench pads both sides alike (or as PyTorch's \"same\" for stride 1)")
      case "VALID": return .explicit(Pair(0))
      case "SAME_UPPER" where stride == Pair(1): return .same
      default:
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason: "auto_pad \(auto) is not imported (NOTSET with pads, VALID, and SAME_UPPER for stride 1 are)")
      }
    }

    mutating func readConv(_ node: ONNXNode, output: String) throws(InterchangeError) {
      let (channels, height, width) = try imageShape(node)
      let w = try weight(input(node, 1, "weight"), node: node)
      guard w.dims.count == 4 else {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "its weight has shape \(w.dims); a 2-D convolution's is [O, C/group, kh, kw]")
      }
      let groups = node.attribute("group")?.int ?? 1
      let (filters, perGroup) = (w.dims[0], w.dims[1])
      guard groups >= 1, perGroup * groups == channels, filters % groups == 0 else {
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason: "its weight \(w.dims) with group \(groups) does not fit an input of \(channels) channels")
      }
      let kernel = try pairAttribute(node, "kernel_shape", default: Pair(w.dims[2], w.dims[3]))
      guard kernel == Pair(w.dims[2], w.dims[3]) else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "kernel_shape \(kernel) disagrees with its weight \(w.dims)")
      }
      let stride = try pairAttribute(node, "strides", default: Pair(1))
      let dilation = try pairAttribute(node, "dilations", default: Pair(1))
      let padding = try padding(node, kernel: kernel, stride: stride, dilation: dilation)
      var bias: [Float]?
      if node.inputs.count > 2, !node.inputs[2].isEmpty {
        let b = try weight(node.inputs[2], node: node)
        guard b.elementCount == filters else {
          throw .unsupportedNode(node: node.name, op: node.opType, reason: "its bias has \(b.elementCount) values for \(filters) filters")
        }
        bias = b.floats
      }
      let conv = Conv2DLayer(
        filters: filters, kernel: kernel, stride: stride, padding: padding, dilation: dilation, groups: groups, useBias: bias != nil)
      guard stride.height > 0, stride.width > 0, dilation.height > 0, dilation.width > 0,
        case .success(let out) = conv.window.output(height: height, width: width)
      else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "its window does not fit its input \(shape)")
      }
      addLayer(.conv2d(conv), output: output)
      let name = layers.last!.name
      tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: w.dims, scalars: w.floats)
      if let bias { tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [filters], scalars: bias) }
      shape = [filters, out.height, out.width]
      openDense = layers.count - 1
    }

    mutating func readPool(_ node: ONNXNode, output: String) throws(InterchangeError) {
      let (_, height, width) = try imageShape(node)
      let kernel = try pairAttribute(node, "kernel_shape", default: nil)
      let stride = try pairAttribute(node, "strides", default: Pair(1))
      if (node.attribute("ceil_mode")?.int ?? 0) != 0 {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "ceil_mode=1; SpecBench's pools round down (PyTorch's default)")
      }
      if try pairAttribute(node, "dilations", default: Pair(1)) != Pair(1) {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "dilated pools are not imported")
      }
      guard kernel.height > 0, kernel.width > 0, stride.height > 0, stride.width > 0 else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "kernel \(kernel) and strides \(stride) must be positive")
      }
      guard case .explicit(let pads) = try padding(node, kernel: kernel, stride: stride, dilation: Pair(1)),
        pads.height <= kernel.height / 2, pads.width <= kernel.width / 2
      else {
        throw .unsupportedNode(
          node: node.name, op: node.opType, reason: "its pads must be equal before and after and at most half the kernel")
      }
      if node.opType == "AveragePool", pads != Pair(0), (node.attribute("count_include_pad")?.int ?? 0) != 1 {
        throw .unsupportedNode(
          node: node.name, op: node.opType,
          reason: "count_include_pad=0 with padding; SpecBench's average counts the padding (PyTorch's default, count_include_pad=1)")
      }
      let pool = PoolLayer(kernel: kernel, stride: stride, padding: pads)
      guard case .success(let out) = pool.window.output(height: height, width: width) else {
        throw .unsupportedNode(node: node.name, op: node.opType, reason: "its window does not fit its input \(shape)")
      }
      addLayer(node.opType == "MaxPool" ? .maxPool2d(pool) : .avgPool2d(pool), output: output)
      shape = [shape[0], out.height, out.width]
      openDense = nil
    }

    /// A Reshape's sample shape: its stored int64 shape, keeping the batch axis (first entry 0,
    /// or -1 with fixed sizes after it), with 0 and -1 resolved; nil when it is not such a shape.
    func reshapeTarget(_ node: ONNXNode) -> [Int]? {
      guard node.inputs.count > 1, let tensor = constants[node.inputs[1]], tensor.dataType == ONNXTensor.int64, tensor.dims.count == 1,
        tensor.ints.count >= 2, (node.attribute("allowzero")?.int ?? 0) == 0, let count = Self.product(shape)
      else { return nil }
      let first = tensor.ints[0]
      var rest = Array(tensor.ints.dropFirst())
      // A 0 copies the input's size on that axis (axis i + 1 of [N] + the sample).
      for i in rest.indices where rest[i] == 0 {
        guard i < shape.count else { return nil }
        rest[i] = shape[i]
      }
      guard rest.allSatisfy({ $0 > 0 || $0 == -1 }), rest.filter({ $0 == -1 }).count <= (first == 0 ? 1 : 0) else { return nil }
      guard first == 0 || first == -1 else { return nil }
      let known = rest.filter { $0 > 0 }.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
      if rest.contains(-1) {
        guard known > 0, count % known == 0 else { return nil }
        return rest.map { $0 == -1 ? count / known : $0 }
      }
      return known == count ? rest : nil
    }

    func activation(_ node: ONNXNode) throws(InterchangeError) -> Activation {
      switch node.opType {
      case "Relu": return .relu
      case "Sigmoid": return .sigmoid
      case "Tanh": return .tanh
      case "Softplus": return .softplus
      case "LeakyRelu": return .leakyReLU(alpha: Double(try number(node, "alpha", default: 0.01)))
      case "Elu":
        let alpha = try number(node, "alpha", default: 1)
        guard alpha == 1 else { throw .unsupportedNode(node: node.name, op: "Elu", reason: "alpha=\(alpha); SpecBench's elu has alpha 1") }
        return .elu
      case "Gelu":
        let approximate = node.attribute("approximate")?.string ?? "none"
        guard approximate == "none" else {
          throw .unsupportedNode(node: node.name, op: "Gelu", reason: "approximate=\(approximate); SpecBench's gelu is the exact one")
        }
        return .gelu
      default:
        // Softmax: over the last axis. Before opset 13 the axis (default 1) flattened the rest,
        // which is the same thing for one axis per sample.
        let last = shape.count
        let axis = node.attribute("axis")?.int ?? (opsetVersion < 13 ? 1 : -1)
        guard axis == -1 || axis == last else {
          throw .unsupportedNode(node: node.name, op: "Softmax", reason: "axis=\(axis); SpecBench's softmax is over the last axis")
        }
        return .softmax
      }
    }
  }
}
