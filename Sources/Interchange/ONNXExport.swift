import Datasets
import Foundation
import SpecKit

/// The inference graph of a session as an ONNX model (opset 17): its trained weights as
/// initializers, one input `input` and one output `output`, each with a symbolic batch
/// dimension. Dense layers are `Gemm` with `transB=1` (the format's `[out, in]` weights as they
/// are), normalisations `LayerNormalization` and `BatchNormalization` (inference form, running
/// statistics), convolutions `Conv` (weights `[out, in/groups, kh, kw]` as they are, pads as
/// top, left, bottom, right), the pools `MaxPool`, `AveragePool` (`count_include_pad=1`) and
/// `GlobalAveragePool` + `Flatten`, reshape `Reshape` (0 keeps the batch), activations their ONNX ops — GELU as `x·½·(1 + erf(x·√½))` and SiLU as
/// `x·sigmoid(x)`, which opset 17 has no op for — and dropout left out (identity at inference).
public enum ONNXExport {
  public static let opset = 17
  public static let inputName = "input"
  public static let outputName = "output"

  /// The `.onnx` bytes, and what the file leaves out (for the user to read).
  ///
  /// - Parameters:
  ///   - softmax: end with a softmax over the last axis, so that the output is probabilities
  ///     rather than logits.
  ///   - standardization: the data's standardisation (a csv source's `normalize`, with the
  ///     training split's statistics): the graph starts with it, `Sub` then `Div`, so that it
  ///     takes raw rows as the session's data file has them.
  ///   - classNames: the classes in label order, written into the metadata
  ///     (`specbench.classes`, a JSON array).
  public static func export(
    spec: SessionSpec, state: TrainingState, softmax: Bool = false, standardization: Standardization? = nil, classNames: [String]? = nil
  ) throws(InterchangeError) -> (bytes: [UInt8], leftOut: [String]) {
    let shapes: [LayerShape]
    do { shapes = try spec.model.layerShapes() } catch {
      throw .cannotExport(format: "onnx", reason: "the model's shapes do not chain: \(error.issues.first?.message ?? "\(error)")")
    }
    var builder = GraphBuilder(state: state)
    var current = inputName
    var leftOut: [String] = []
    if let standardization {
      // (x − mean) / std per input column; a constant column (std 0) is only centred.
      builder.initializers.append(
        ONNXTensor(name: "preprocess.mean", dims: [standardization.mean.count], floats: standardization.mean.map { Float($0) }))
      builder.initializers.append(
        ONNXTensor(name: "preprocess.std", dims: [standardization.std.count], floats: standardization.std.map { $0 > 0 ? Float($0) : 1 }))
      builder.node("Sub", [current, "preprocess.mean"], "preprocess.centred", name: "preprocess.sub")
      builder.node("Div", ["preprocess.centred", "preprocess.std"], "preprocess.standardised", name: "preprocess.div")
      current = "preprocess.standardised"
    }
    for shape in shapes {
      let name = shape.layer.name
      switch shape.layer.kind {
      case .dense(let dense):
        var inputs = [current, try builder.initializer(name + ".weight", role: "param")]
        if dense.useBias { inputs.append(try builder.initializer(name + ".bias", role: "param")) }
        let linear = dense.activation == .identity ? name : name + ".linear"
        builder.node("Gemm", inputs, linear, name: name, [.int("transB", 1)])
        current = builder.activation(dense.activation, from: linear, to: name, layer: name)
      case .activation(let function):
        current = builder.activation(function, from: current, to: name, layer: name, identityNode: true)
      case .dropout:
        leftOut.append("\(name) (dropout is the identity at inference)")
      case .flatten:
        builder.node("Flatten", [current], name, name: name, [.int("axis", 1)])
        current = name
      case .layerNorm(let eps):
        builder.node(
          "LayerNormalization",
          [current, try builder.initializer(name + ".weight", role: "param"), try builder.initializer(name + ".bias", role: "param")], name,
          name: name, [.int("axis", -1), .float("epsilon", Float(eps))])
        current = name
      case .batchNorm(let eps, let momentum):
        // ONNX's momentum weighs the old running value: 1 − PyTorch's.
        builder.node(
          "BatchNormalization",
          [
            current, try builder.initializer(name + ".weight", role: "param"), try builder.initializer(name + ".bias", role: "param"),
            try builder.initializer(name + ".running_mean", role: "buffer"), try builder.initializer(name + ".running_var", role: "buffer"),
          ], name, name: name, [.float("epsilon", Float(eps)), .float("momentum", Float(1 - momentum))])
        current = name
      case .conv2d(let conv):
        var inputs = [current, try builder.initializer(name + ".weight", role: "param")]
        if conv.useBias { inputs.append(try builder.initializer(name + ".bias", role: "param")) }
        let linear = conv.activation == .identity ? name : name + ".conv"
        builder.node(
          "Conv", inputs, linear, name: name,
          Self.windowAttributes(conv.window) + [
            .ints("dilations", [conv.window.dilation.height, conv.window.dilation.width]), .int("group", conv.groups),
          ])
        current = builder.activation(conv.activation, from: linear, to: name, layer: name)
      case .maxPool2d(let pool):
        builder.node("MaxPool", [current], name, name: name, Self.windowAttributes(pool.window))
        current = name
      case .avgPool2d(let pool):
        builder.node("AveragePool", [current], name, name: name, Self.windowAttributes(pool.window) + [.int("count_include_pad", 1)])
        current = name
      case .globalAvgPool:
        // ONNX's global pool keeps [N, C, 1, 1]; the flatten makes it the format's [N, C].
        builder.node("GlobalAveragePool", [current], name + ".pool", name: name + ".pool")
        builder.node("Flatten", [name + ".pool"], name, name: name, [.int("axis", 1)])
        current = name
      case .reshape:
        // 0 keeps the batch dimension; the other sizes are the resolved sample shape.
        let target = name + ".shape"
        builder.initializers.append(ONNXTensor(name: target, dims: [shape.outputShape.count + 1], ints: [0] + shape.outputShape))
        builder.node("Reshape", [current, target], name, name: name)
        current = name
      }
    }
    if softmax {
      if case .activation(.softmax)? = shapes.last?.layer.kind {
        throw .cannotExport(format: "onnx", reason: "the model ends with a softmax already; export without --softmax")
      }
      if case .dense(let dense)? = shapes.last?.layer.kind, dense.activation == .softmax {
        throw .cannotExport(format: "onnx", reason: "the model ends with a softmax already; export without --softmax")
      }
      builder.node("Softmax", [current], "softmax", name: "softmax", [.int("axis", -1)])
      current = "softmax"
    }
    // The last tensor is the graph's output: rename it (or pass the input through).
    if current == inputName {
      builder.node("Identity", [current], outputName, name: "output")
    } else {
      builder.rename(current, to: outputName)
    }
    let outputShape = shapes.last?.outputShape ?? spec.model.input
    var model = ONNXModel()
    model.opsets = [ONNXOpset(domain: "", version: opset)]
    model.producerName = "SpecBench"
    model.producerVersion = SpecBenchVersion.current
    model.docString = "Session \(spec.name), exported at step \(state.step) (inference graph; see the session file for training)."
    model.metadata = [
      ("specbench.session", spec.name), ("specbench.step", String(state.step)), ("specbench.loss", spec.loss.name),
      ("specbench.output", softmax ? "probabilities" : "the model's last layer (logits for a classifier)"),
      (
        "specbench.input",
        standardization == nil ? "the samples as the data holds them" : "raw rows of the data file (the graph standardises them)"
      ),
    ]
    if let classNames { model.metadata.append(("specbench.classes", JSONWriter.compact(.array(classNames.map { .string($0) })))) }
    model.graph.name = spec.name
    model.graph.nodes = builder.nodes
    model.graph.initializers = builder.initializers
    model.graph.inputs = [ONNXValueInfo(name: inputName, shape: [.symbol("batch")] + spec.model.input.map { .value($0) })]
    model.graph.outputs = [ONNXValueInfo(name: outputName, shape: [.symbol("batch")] + outputShape.map { .value($0) })]
    leftOut += [
      "the optimizer (\(spec.optimizer.name)) and its state (ONNX holds an inference graph only)",
      "the schedule, the data, the loss (\(spec.loss.name)) and the stop rules",
    ]
    return (model.encoded(), leftOut)
  }

  /// A window's `kernel_shape`, `strides` and `pads` (top, left, bottom, right).
  static func windowAttributes(_ window: Window) -> [ONNXAttribute] {
    let (before, after) = (window.padBefore, window.padAfter)
    return [
      .ints("kernel_shape", [window.kernel.height, window.kernel.width]), .ints("strides", [window.stride.height, window.stride.width]),
      .ints("pads", [before.height, before.width, after.height, after.width]),
    ]
  }

  /// Nodes and initializers in the order they are made.
  struct GraphBuilder {
    let state: TrainingState
    var nodes: [ONNXNode] = []
    var initializers: [ONNXTensor] = []
    private var constants: [Float: String] = [:]

    init(state: TrainingState) { self.state = state }

    /// The state tensor `role/name` as an initializer named `name`.
    mutating func initializer(_ name: String, role: String) throws(InterchangeError) -> String {
      guard let tensor = state.tensors["\(role)/\(name)"] else {
        throw .cannotExport(format: "onnx", reason: "the state has no tensor \(role)/\(name)")
      }
      initializers.append(ONNXTensor(name: name, dims: tensor.shape, floats: tensor.scalars))
      return name
    }

    /// A scalar constant initializer, made once per value.
    mutating func constant(_ value: Float) -> String {
      if let name = constants[value] { return name }
      let name = "specbench.constant\(constants.count)"
      constants[value] = name
      initializers.append(ONNXTensor(name: name, dims: [], floats: [value]))
      return name
    }

    mutating func node(_ op: String, _ inputs: [String], _ output: String, name: String, _ attributes: [ONNXAttribute] = []) {
      nodes.append(ONNXNode(op, inputs: inputs, outputs: [output], name: name, attributes: attributes))
    }

    /// `function` applied to `input`, its result named `output`; returns that name. Identity
    /// makes no node unless asked (an `activation identity` layer).
    mutating func activation(_ function: Activation, from input: String, to output: String, layer: String, identityNode: Bool = false)
      -> String
    {
      let simple: (String, [ONNXAttribute])? =
        switch function {
        case .identity: identityNode ? ("Identity", []) : nil
        case .relu: ("Relu", [])
        case .leakyReLU(let alpha): ("LeakyRelu", [.float("alpha", Float(alpha))])
        case .sigmoid: ("Sigmoid", [])
        case .tanh: ("Tanh", [])
        case .softplus: ("Softplus", [])
        case .elu: ("Elu", [.float("alpha", 1)])
        case .softmax: ("Softmax", [.int("axis", -1)])
        case .gelu, .silu: nil
        }
      if let (op, attributes) = simple {
        node(op, [input], output, name: layer + "." + op.lowercased(), attributes)
        return output
      }
      switch function {
      case .gelu:
        let scaled = layer + ".gelu.scaled", erf = layer + ".gelu.erf", plus = layer + ".gelu.plus", product = layer + ".gelu.product"
        node("Mul", [input, constant(Float(0.5).squareRoot())], scaled, name: scaled)
        node("Erf", [scaled], erf, name: erf)
        node("Add", [erf, constant(1)], plus, name: plus)
        node("Mul", [input, plus], product, name: product)
        node("Mul", [product, constant(0.5)], output, name: layer + ".gelu")
        return output
      case .silu:
        let gate = layer + ".silu.sigmoid"
        node("Sigmoid", [input], gate, name: gate)
        node("Mul", [input, gate], output, name: layer + ".silu")
        return output
      default:
        return input
      }
    }

    /// Renames a tensor everywhere (the last layer's output becomes `output`).
    mutating func rename(_ old: String, to new: String) {
      for index in nodes.indices {
        nodes[index].inputs = nodes[index].inputs.map { $0 == old ? new : $0 }
        nodes[index].outputs = nodes[index].outputs.map { $0 == old ? new : $0 }
      }
    }
  }
}
