/// The exporter idioms that `ONNXNormalizer` rewrites into the nodes they mean, one entry each
/// (each has its own test in `ONNXPatternTests`). A pattern starts at one node, follows the
/// values it makes to the nodes that read them, and applies only when every value inside it is
/// read by nothing else and is not the graph's output.
enum ONNXPatterns {
  static let table: [ONNXPattern] = [
    matMulAsGemm, geluWrittenOut, siluAsSigmoidTimesInput, guardedSoftplus, layerNormWrittenOut, meanOverImageAxes,
    trainingModeBatchNorm,
  ]

  typealias View = ONNXGraphView

  /// `MatMul(x, W)` with a stored `[in, out]` weight, and the `Add` of a stored `[out]` bias
  /// that may follow: a `Gemm` (PyTorch's legacy exporter writes a `Linear` without bias, and
  /// TensorFlow's converters every dense layer, this way).
  static let matMulAsGemm = ONNXPattern(name: "MatMul + Add as a dense layer") { view, index in
    let matMul = view.nodes[index]
    guard View.isOp(matMul, "MatMul"), matMul.inputs.count == 2, let weight = view.constants[matMul.inputs[1]], weight.dims.count == 2
    else { return nil }
    let out = weight.dims[1]
    var replaced = [matMul]
    var inputs = matMul.inputs
    var output = matMul.outputs[0]
    if let add = view.onlyReader(output), View.isOp(add, "Add"), let other = View.other(add, than: output),
      let bias = view.constants[other], bias.dataType == ONNXTensor.float32, bias.elementCount == out, bias.dims.last == out
    {
      replaced.append(add)
      inputs.append(other)
      output = add.outputs[0]
    }
    return ONNXRewrite(
      replaced: replaced, nodes: [ONNXNode("Gemm", inputs: inputs, outputs: [output], name: matMul.name)], pattern: "MatMul + Add")
  }

  /// GELU as PyTorch's exporters write it before opset 20: `Erf(x / √2)` (or `x · √½`), plus 1,
  /// times `x` and ½ in any order — `(x · a) · ½`, `x · (a · ½)` or `(x · ½) · a`.
  static let geluWrittenOut = ONNXPattern(name: "GELU written out") { view, index in
    let erf = view.nodes[index]
    guard View.isOp(erf, "Erf"), let scaled = erf.inputs.first, let scale = view.made(scaled), scale.inputs.count == 2 else { return nil }
    let x: String
    if View.isOp(scale, "Div"), view.isScalar(scale.inputs[1], Float(2).squareRoot()) {
      x = scale.inputs[0]
    } else if View.isOp(scale, "Mul"), let half = scale.inputs.first(where: { view.isScalar($0, Float(0.5).squareRoot()) }),
      let other = View.other(scale, than: half)
    {
      x = other
    } else {
      return nil
    }
    guard let plus = view.onlyReader(erf.outputs[0]), View.isOp(plus, "Add"), let one = View.other(plus, than: erf.outputs[0]),
      view.isScalar(one, 1), let first = view.onlyReader(plus.outputs[0]), View.isOp(first, "Mul"),
      let factor = View.other(first, than: plus.outputs[0])
    else { return nil }
    var group = [scale, erf, plus, first]
    var end: ONNXNode
    if factor == x {
      // (x · a) · ½
      guard let second = view.onlyReader(first.outputs[0]), View.isOp(second, "Mul"),
        let h = View.other(second, than: first.outputs[0]), view.isScalar(h, 0.5)
      else { return nil }
      end = second
    } else if view.isScalar(factor, 0.5) {
      // x · (a · ½)
      guard let second = view.onlyReader(first.outputs[0]), View.isOp(second, "Mul"), View.other(second, than: first.outputs[0]) == x
      else { return nil }
      end = second
    } else if let halfX = view.made(factor), View.isOp(halfX, "Mul"), halfX.inputs.contains(x),
      let h = View.other(halfX, than: x), view.isScalar(h, 0.5)
    {
      // (x · ½) · a
      group.append(halfX)
      end = first
    } else {
      return nil
    }
    if end != first { group.append(end) }
    guard view.isClosed(group, keeping: end.outputs[0]) else { return nil }
    return ONNXRewrite(
      replaced: group, nodes: [ONNXNode("Gelu", inputs: [x], outputs: end.outputs, name: end.name)], pattern: "GELU written out")
  }

  /// SiLU: `Sigmoid(x)` times `x`, which ONNX has no operator for before opset 24's `Swish`:
  /// one node of SpecBench's own domain.
  static let siluAsSigmoidTimesInput = ONNXPattern(name: "SiLU as Sigmoid · x") { view, index in
    let sigmoid = view.nodes[index]
    guard View.isOp(sigmoid, "Sigmoid"), let x = sigmoid.inputs.first, let mul = view.onlyReader(sigmoid.outputs[0]),
      View.isOp(mul, "Mul"), View.other(mul, than: sigmoid.outputs[0]) == x
    else { return nil }
    var silu = ONNXNode("Silu", inputs: [x], outputs: mul.outputs, name: mul.name)
    silu.domain = ONNXNormalizer.domain
    return ONNXRewrite(replaced: [sigmoid, mul], nodes: [silu], pattern: "SiLU as Sigmoid · x")
  }

  /// PyTorch's `Softplus` with its threshold: `Where(x > t, x, Softplus(x))`. For `t` of 15 or
  /// more (PyTorch's default is 20) the two sides differ by less than float32 resolves, so it is
  /// the plain softplus.
  static let guardedSoftplus = ONNXPattern(name: "Softplus with PyTorch's threshold") { view, index in
    let choose = view.nodes[index]
    guard View.isOp(choose, "Where"), choose.inputs.count == 3, let test = view.made(choose.inputs[0]), View.isOp(test, "Greater"),
      let softplus = view.made(choose.inputs[2]), View.isOp(softplus, "Softplus"), let x = softplus.inputs.first,
      test.inputs.count == 2, test.inputs[0] == x, choose.inputs[1] == x, let threshold = view.scalar(test.inputs[1]), threshold >= 15,
      view.isClosed([test, softplus, choose], keeping: choose.outputs[0])
    else { return nil }
    return ONNXRewrite(
      replaced: [test, softplus, choose], nodes: [ONNXNode("Softplus", inputs: [x], outputs: choose.outputs, name: softplus.name)],
      pattern: "guarded Softplus")
  }

  /// The axes of a reduction: the `axes` input (opset 18 on) or attribute (before).
  static func axes(_ node: ONNXNode, _ view: View) -> [Int]? {
    if node.inputs.count > 1, !node.inputs[1].isEmpty {
      guard let tensor = view.constants[node.inputs[1]], tensor.dataType == ONNXTensor.int64 else { return nil }
      return tensor.ints
    }
    return node.attribute("axes")?.ints
  }

  /// Layer norm written out (PyTorch's legacy exporter before opset 17): `d = x − mean(x)`,
  /// `d / √(mean(d²) + ε)`, then an optional `· scale` and `+ bias`, all over one axis.
  static let layerNormWrittenOut = ONNXPattern(name: "layer norm written out") { view, index in
    let mean = view.nodes[index]
    guard View.isOp(mean, "ReduceMean"), let x = mean.inputs.first, let axes = axes(mean, view), axes.count == 1,
      (mean.attribute("keepdims")?.int ?? 1) == 1
    else { return nil }
    let centredReaders = view.readBy(mean.outputs[0])
    guard centredReaders.count == 1, let sub = centredReaders.first, View.isOp(sub, "Sub"), sub.inputs == [x, mean.outputs[0]] else {
      return nil
    }
    let d = sub.outputs[0]
    let uses = view.readBy(d)
    guard uses.count == 2 || uses.count == 1,
      let square = uses.first(where: {
        (View.isOp($0, "Pow") && $0.inputs.first == d && $0.inputs.count == 2 && view.isScalar($0.inputs[1], 2))
          || (View.isOp($0, "Mul") && $0.inputs == [d, d])
      }),
      let variance = view.onlyReader(square.outputs[0]), View.isOp(variance, "ReduceMean"), Self.axes(variance, view) == axes,
      (variance.attribute("keepdims")?.int ?? 1) == 1,
      let plus = view.onlyReader(variance.outputs[0]), View.isOp(plus, "Add"),
      let epsilonName = View.other(plus, than: variance.outputs[0]),
      let epsilon = view.scalar(epsilonName), epsilon > 0, epsilon.isFinite,
      let root = view.onlyReader(plus.outputs[0]), View.isOp(root, "Sqrt"),
      let divide = view.onlyReader(root.outputs[0]), View.isOp(divide, "Div"), divide.inputs == [d, root.outputs[0]]
    else { return nil }
    var group = [mean, sub, square, variance, plus, root, divide]
    var end = divide
    var (scale, bias) = ("", "")
    if let times = view.onlyReader(end.outputs[0]), View.isOp(times, "Mul"), let s = View.other(times, than: end.outputs[0]),
      let tensor = view.constants[s], tensor.dims.count == 1
    {
      (scale, end) = (s, times)
      group.append(times)
    }
    if let add = view.onlyReader(end.outputs[0]), View.isOp(add, "Add"), let b = View.other(add, than: end.outputs[0]),
      let tensor = view.constants[b], tensor.dims.count == 1
    {
      (bias, end) = (b, add)
      group.append(add)
    }
    guard view.isClosed(group, keeping: end.outputs[0]) else { return nil }
    var node = ONNXNode(
      "LayerNormalization", inputs: [x, scale, bias], outputs: end.outputs, name: mean.name,
      attributes: [.int("axis", axes[0]), .float("epsilon", epsilon)])
    // Without `· scale` (ONNX's operator needs one): SpecBench's own form, whose scale is 1.
    if scale.isEmpty { node.domain = ONNXNormalizer.domain }
    return ONNXRewrite(replaced: group, nodes: [node], pattern: "layer norm written out")
  }

  /// `ReduceMean` over the two image axes (`[2, 3]` or `[-2, -1]`): PyTorch's
  /// `AdaptiveAvgPool2d(1)` as the default exporter writes it, a `GlobalAveragePool` (and a
  /// `Flatten` when the reduction drops the axes).
  static let meanOverImageAxes = ONNXPattern(name: "ReduceMean over the image axes") { view, index in
    let mean = view.nodes[index]
    guard View.isOp(mean, "ReduceMean"), let x = mean.inputs.first, let axes = axes(mean, view),
      Set(axes) == [2, 3] || Set(axes) == [-2, -1]
    else { return nil }
    let pool = mean.name.isEmpty ? "\(mean.outputs[0]).pool" : mean.name
    if (mean.attribute("keepdims")?.int ?? 1) == 1 {
      return ONNXRewrite(
        replaced: [mean], nodes: [ONNXNode("GlobalAveragePool", inputs: [x], outputs: mean.outputs, name: pool)], pattern: "ReduceMean")
    }
    return ONNXRewrite(
      replaced: [mean],
      nodes: [
        ONNXNode("GlobalAveragePool", inputs: [x], outputs: [pool + ".kept"], name: pool),
        ONNXNode("Flatten", inputs: [pool + ".kept"], outputs: mean.outputs, name: pool + ".flatten", attributes: [.int("axis", 1)]),
      ], pattern: "ReduceMean")
  }

  /// A batch norm exported in training mode (`training=TrainingMode.TRAINING`): its running
  /// statistics are the ones it predicts with in eval mode, and its extra outputs (the updated
  /// statistics) are read by nothing. The inference form, with a note.
  static let trainingModeBatchNorm = ONNXPattern(name: "training-mode batch norm") { view, index in
    let node = view.nodes[index]
    guard View.isOp(node, "BatchNormalization"), (node.attribute("training_mode")?.int ?? 0) != 0, !node.outputs[0].isEmpty,
      node.outputs.dropFirst().allSatisfy({ $0.isEmpty || (view.readBy($0).isEmpty && $0 != view.output) })
    else { return nil }
    var inference = node
    inference.outputs = [node.outputs[0]]
    inference.attributes.removeAll { $0.name == "training_mode" }
    return ONNXRewrite(
      replaced: [node], nodes: [inference], pattern: "training-mode batch norm",
      note:
        "\(node.name.isEmpty ? "a BatchNormalization" : node.name) was exported in training mode: it is imported with its running statistics (batch_norm trains on batch statistics and predicts with these, as PyTorch's eval mode does)"
    )
  }
}
