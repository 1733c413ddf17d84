import Foundation
import SpecKit
import Testing

@testable import Interchange

/// The normalisation pass before layer matching (`ONNXNormalizer`): constant folding, identity
/// elimination, and each entry of `ONNXPatterns.table` on its own, each with a case it must
/// rewrite and a case it must leave alone (a value inside the idiom that something else reads).
@Suite("ONNX normalisation")
struct ONNXPatternTests {
  typealias N = ONNXNode

  static func scalar(_ name: String, _ value: Float) -> ONNXTensor { ONNXTensor(name: name, dims: [], floats: [value]) }
  static func ints(_ name: String, _ values: [Int]) -> ONNXTensor { ONNXTensor(name: name, dims: [values.count], ints: values) }

  /// The graph after the pass: its nodes (op types, and the pass itself), from input `x` of
  /// `shape` per sample to output `y`.
  static func normalised(
    _ nodes: [ONNXNode], constants: [ONNXTensor] = [], shape: [Int] = [4], output: String = "y", opset: Int = 17
  ) throws -> ONNXNormalizer {
    var graph = ONNXGraph()
    graph.nodes = nodes
    graph.initializers = constants
    graph.inputs = [ONNXValueInfo(name: "x", shape: [.symbol("N")] + shape.map { .value($0) })]
    graph.outputs = [ONNXValueInfo(name: output, shape: nil)]
    var normalizer = ONNXNormalizer(graph, input: "x", inputShape: shape, opset: opset)
    try normalizer.run()
    return normalizer
  }

  static func ops(_ normalizer: ONNXNormalizer) -> [String] { normalizer.nodes.map(\.opType) }

  /// The layers an import makes of a graph of these nodes and constants.
  static func layers(_ nodes: [ONNXNode], constants: [ONNXTensor], shape: [Int] = [4]) throws -> [LayerSpec] {
    var model = ONNXModel()
    model.graph.nodes = nodes
    model.graph.initializers = constants
    model.graph.inputs = [ONNXValueInfo(name: "x", shape: [.symbol("N")] + shape.map { .value($0) })]
    model.graph.outputs = [ONNXValueInfo(name: nodes.last!.outputs[0], shape: nil)]
    return try ONNXImport.session(from: model.encoded(), file: "m.onnx", name: "m").bundle.spec.model.layers
  }

  // MARK: - Folding and identities

  @Test func everyFormOfConstantIsFolded() throws {
    let made = try Self.normalised([
      N("Constant", inputs: [], outputs: ["a"], attributes: [.float("value_float", 2)]),
      N("Constant", inputs: [], outputs: ["b"], attributes: [ONNXAttribute(name: "value_floats", kind: .floats, floats: [1, 2])]),
      N("Constant", inputs: [], outputs: ["c"], attributes: [.int("value_int", 7)]),
      N("Constant", inputs: [], outputs: ["d"], attributes: [.ints("value_ints", [3, 4])]),
      N("Constant", inputs: [], outputs: ["e"], attributes: [ONNXAttribute(name: "value", kind: .tensor, tensor: Self.scalar("e", 5))]),
      N("Identity", inputs: ["e"], outputs: ["f"]),
      N("Relu", inputs: ["x"], outputs: ["y"]),
    ])
    #expect(Self.ops(made) == ["Relu"])
    #expect(made.constants["a"]?.floats == [2] && made.constants["b"]?.floats == [1, 2])
    #expect(made.constants["c"]?.ints == [7] && made.constants["d"]?.ints == [3, 4])
    #expect(made.constants["f"]?.floats == [5])
  }

  @Test func aConstantWithAnUnknownValueIsNamed() {
    #expect {
      _ = try Self.normalised([N("Constant", inputs: [], outputs: ["a"], name: "k", attributes: [.string("value_string", "s")])])
    } throws: { error in
      "\(error)".contains("node \"k\" (Constant): its value is value_string")
    }
  }

  /// Identities of computed values are removed (PyTorch's legacy exporter writes them), and an
  /// identity that makes the graph's output moves the output to what it reads.
  @Test func identitiesAreRemoved() throws {
    let made = try Self.normalised([
      N("Relu", inputs: ["x"], outputs: ["a"]), N("Identity", inputs: ["a"], outputs: ["b"]), N("Tanh", inputs: ["b"], outputs: ["c"]),
      N("Identity", inputs: ["c"], outputs: ["y"]),
    ])
    #expect(Self.ops(made) == ["Relu", "Tanh"])
    #expect(made.nodes[1].inputs == ["a"] && made.output == "c")
  }

  /// `x.view(x.size(0), -1)` as the legacy exporter writes it (Shape of a value inside the
  /// graph, Gather 0, Unsqueeze with axes as an input from opset 13 and as an attribute before,
  /// Concat with -1): a fixed reshape that keeps the batch axis.
  @Test(arguments: [13, 11])
  func theBatchSizeTakenFromAShapeMakesAFixedReshape(opset: Int) throws {
    let unsqueeze =
      opset >= 13
      ? N("Unsqueeze", inputs: ["n", "zero1"], outputs: ["n1"])
      : N("Unsqueeze", inputs: ["n"], outputs: ["n1"], attributes: [.ints("axes", [0])])
    let made = try Self.normalised(
      [
        N("Relu", inputs: ["x"], outputs: ["a"]), N("Shape", inputs: ["a"], outputs: ["s"]),
        N("Gather", inputs: ["s", "zero"], outputs: ["n"], attributes: [.int("axis", 0)]), unsqueeze,
        N("Concat", inputs: ["n1", "minus"], outputs: ["target"], attributes: [.int("axis", 0)]),
        N("Reshape", inputs: ["a", "target"], outputs: ["y"]),
      ], constants: [ONNXTensor(name: "zero", dims: [], ints: [0]), Self.ints("zero1", [0]), Self.ints("minus", [-1])],
      shape: [2, 3, 3], opset: opset)
    #expect(Self.ops(made) == ["Relu", "Reshape"])
    #expect(made.constants["target"]?.ints == [0, -1])
  }

  /// The default exporter's form: the batch size from the input's Shape (start and end, from
  /// opset 15), Squeeze, Reshape to [-1], Concat with the sizes; `allowzero=1` is dropped, as no
  /// entry is a literal 0.
  @Test func theDefaultExportersComputedShapeIsFolded() throws {
    let made = try Self.normalised(
      [
        N("Shape", inputs: ["x"], outputs: ["s"], attributes: [.int("start", 0), .int("end", 1)]),
        N("Squeeze", inputs: ["s"], outputs: ["n"]), N("Reshape", inputs: ["n", "minus"], outputs: ["n1"]),
        N("Concat", inputs: ["n1", "rest"], outputs: ["target"], attributes: [.int("axis", 0)]),
        N("Reshape", inputs: ["x", "target"], outputs: ["y"], attributes: [.int("allowzero", 1)]),
      ], constants: [Self.ints("minus", [-1]), Self.ints("rest", [12])], shape: [3, 4])
    #expect(Self.ops(made) == ["Reshape"])
    #expect(made.constants["target"]?.ints == [0, 12] && made.nodes[0].attribute("allowzero") == nil)
    // And the import keeps the input's shape, with a flatten layer.
    let layers = try Self.layers(
      [
        N("Shape", inputs: ["x"], outputs: ["s"], attributes: [.int("start", 0), .int("end", 1)]),
        N("Squeeze", inputs: ["s"], outputs: ["n"]), N("Reshape", inputs: ["n", "minus"], outputs: ["n1"]),
        N("Concat", inputs: ["n1", "rest"], outputs: ["target"], attributes: [.int("axis", 0)]),
        N("Reshape", inputs: ["x", "target"], outputs: ["f"], attributes: [.int("allowzero", 1)]),
        N("Gemm", inputs: ["f", "W"], outputs: ["y"], attributes: [.int("transB", 1)]),
      ],
      constants: [
        Self.ints("minus", [-1]), Self.ints("rest", [12]), ONNXTensor(name: "W", dims: [2, 12], floats: .init(repeating: 0.1, count: 24)),
      ],
      shape: [3, 4])
    #expect(layers.map(\.kind.typeName) == ["flatten", "dense"])
  }

  /// An axis of a value inside the graph other than the batch is not known before the chain is
  /// read: the shape stays computed, and the import says so at the reshape.
  @Test func aShapeEntryThatIsNotTheBatchIsNotGuessed() throws {
    let nodes = [
      N("Relu", inputs: ["x"], outputs: ["a"]), N("Shape", inputs: ["a"], outputs: ["s"]),
      N("Gather", inputs: ["s", "one"], outputs: ["n"]),
      N("Concat", inputs: ["minus", "n"], outputs: ["target"], attributes: [.int("axis", 0)]),
      N("Reshape", inputs: ["a", "target"], outputs: ["y"], name: "r"),
    ]
    let constants = [Self.ints("one", [1]), Self.ints("minus", [-1])]
    #expect(Self.ops(try Self.normalised(nodes, constants: constants)) == ["Relu", "Gather", "Concat", "Reshape"])
    #expect {
      _ = try Self.layers(nodes, constants: constants)
    } throws: { error in
      "\(error)".contains("(Gather): SpecBench imports chains of")
    }
  }

  // MARK: - The patterns, one by one

  @Test func matMulAndAddBecomeAGemm() throws {
    let w = ONNXTensor(name: "W", dims: [4, 3], floats: .init(repeating: 1, count: 12))
    let b = ONNXTensor(name: "b", dims: [3], floats: [1, 2, 3])
    let made = try Self.normalised(
      [N("MatMul", inputs: ["x", "W"], outputs: ["m"], name: "fc"), N("Add", inputs: ["m", "b"], outputs: ["y"])], constants: [w, b])
    #expect(Self.ops(made) == ["Gemm"] && made.nodes[0].inputs == ["x", "W", "b"] && made.nodes[0].outputs == ["y"])
    #expect(made.nodes[0].name == "fc")
    // Without the Add (a Linear without bias), and with the product read twice: a Gemm, no bias.
    let twice = try Self.normalised(
      [
        N("MatMul", inputs: ["x", "W"], outputs: ["m"]), N("Add", inputs: ["m", "b"], outputs: ["a"]),
        N("Mul", inputs: ["m", "a"], outputs: ["y"]),
      ], constants: [w, b])
    #expect(Self.ops(twice) == ["Gemm", "Add", "Mul"] && twice.nodes[0].inputs == ["x", "W"])
  }

  /// GELU written out in each order PyTorch's exporters use, with `/√2` or `·√½`.
  @Test(arguments: ["(x·a)·½", "x·(a·½)", "(x·½)·a", "x·√½ then (x·a)·½"])
  func geluWrittenOutInAnyOrderIsAGelu(order: String) throws {
    let scale =
      order.hasPrefix("x·√½") ? N("Mul", inputs: ["x", "r"], outputs: ["s"]) : N("Div", inputs: ["x", "sqrt2"], outputs: ["s"])
    var nodes = [scale, N("Erf", inputs: ["s"], outputs: ["e"]), N("Add", inputs: ["e", "one"], outputs: ["a"])]
    switch order {
    case "x·(a·½)": nodes += [N("Mul", inputs: ["half", "a"], outputs: ["h"]), N("Mul", inputs: ["x", "h"], outputs: ["y"])]
    case "(x·½)·a": nodes = [N("Mul", inputs: ["x", "half"], outputs: ["hx"])] + nodes + [N("Mul", inputs: ["hx", "a"], outputs: ["y"])]
    default: nodes += [N("Mul", inputs: ["x", "a"], outputs: ["p"]), N("Mul", inputs: ["p", "half"], outputs: ["y"])]
    }
    let constants = [
      Self.scalar("sqrt2", Float(2).squareRoot()), Self.scalar("r", Float(0.5).squareRoot()), Self.scalar("one", 1),
      Self.scalar("half", 0.5),
    ]
    let made = try Self.normalised(nodes, constants: constants)
    #expect(Self.ops(made) == ["Gelu"] && made.nodes[0].inputs == ["x"] && made.nodes[0].outputs == ["y"], "\(order)")
    #expect(made.notes.contains { $0.contains("GELU written out ×1") })
  }

  @Test func aGeluWhoseInsideIsReadElsewhereIsLeftAlone() throws {
    let made = try Self.normalised(
      [
        N("Div", inputs: ["x", "sqrt2"], outputs: ["s"]), N("Erf", inputs: ["s"], outputs: ["e"]),
        N("Add", inputs: ["e", "one"], outputs: ["a"]), N("Mul", inputs: ["x", "a"], outputs: ["p"]),
        N("Mul", inputs: ["p", "half"], outputs: ["g"]), N("Add", inputs: ["g", "e"], outputs: ["y"]),
      ], constants: [Self.scalar("sqrt2", Float(2).squareRoot()), Self.scalar("one", 1), Self.scalar("half", 0.5)])
    #expect(!Self.ops(made).contains("Gelu"))
    // And with a wrong constant (not √2) it is no GELU either.
    let wrong = try Self.normalised(
      [
        N("Div", inputs: ["x", "two"], outputs: ["s"]), N("Erf", inputs: ["s"], outputs: ["e"]),
        N("Add", inputs: ["e", "one"], outputs: ["a"]),
        N("Mul", inputs: ["x", "a"], outputs: ["p"]), N("Mul", inputs: ["p", "half"], outputs: ["y"]),
      ], constants: [Self.scalar("two", 2), Self.scalar("one", 1), Self.scalar("half", 0.5)])
    #expect(Self.ops(wrong) == ["Div", "Erf", "Add", "Mul", "Mul"])
  }

  @Test func sigmoidTimesItsInputIsASilu() throws {
    let made = try Self.normalised([N("Sigmoid", inputs: ["x"], outputs: ["s"]), N("Mul", inputs: ["s", "x"], outputs: ["y"])])
    #expect(Self.ops(made) == ["Silu"] && made.nodes[0].domain == ONNXNormalizer.domain)
    // Sigmoid times something else is not.
    let other = try Self.normalised([
      N("Relu", inputs: ["x"], outputs: ["r"]), N("Sigmoid", inputs: ["x"], outputs: ["s"]), N("Mul", inputs: ["s", "r"], outputs: ["y"]),
    ])
    #expect(Self.ops(other) == ["Relu", "Sigmoid", "Mul"])
  }

  /// A file may not use the domain of SpecBench's own canonical nodes.
  @Test func theCanonicalDomainIsRefusedInAFile() {
    var silu = N("Silu", inputs: ["x"], outputs: ["y"], name: "mine")
    silu.domain = ONNXNormalizer.domain
    #expect {
      _ = try Self.normalised([silu])
    } throws: { error in
      "\(error)".contains("node \"mine\" (Silu): the domain specbench.import is SpecBench's own")
    }
  }

  @Test func pyTorchsGuardedSoftplusIsASoftplus() throws {
    let nodes = { (threshold: String) in
      [
        N("Softplus", inputs: ["x"], outputs: ["t"]), N("Greater", inputs: ["x", threshold], outputs: ["c"]),
        N("Where", inputs: ["c", "x", "t"], outputs: ["y"]),
      ]
    }
    let constants = [Self.scalar("twenty", 20), Self.scalar("five", 5)]
    let made = try Self.normalised(nodes("twenty"), constants: constants)
    #expect(Self.ops(made) == ["Softplus"] && made.nodes[0].outputs == ["y"])
    // A threshold of 5 changes the function: left alone, and the import names the Greater.
    #expect(Self.ops(try Self.normalised(nodes("five"), constants: constants)) == ["Softplus", "Greater", "Where"])
    #expect {
      _ = try Self.layers(nodes("five"), constants: constants)
    } throws: { error in
      "\(error)".contains("(Greater): Greater is imported only as part of an idiom")
    }
  }

  /// Layer norm as the legacy exporter writes it before opset 17, with `Pow(d, 2)` or `d · d`,
  /// with and without scale and bias, with ReduceMean's axes as an attribute (before opset 18)
  /// or an input.
  @Test(arguments: [(true, true, false), (false, true, true), (true, false, false)])
  func layerNormWrittenOutIsALayerNorm(affine: Bool, pow: Bool, axesAsInput: Bool) throws {
    let mean = { (input: String, output: String) in
      axesAsInput
        ? N("ReduceMean", inputs: [input, "last"], outputs: [output])
        : N("ReduceMean", inputs: [input], outputs: [output], attributes: [.ints("axes", [-1])])
    }
    var nodes = [
      mean("x", "m"), N("Sub", inputs: ["x", "m"], outputs: ["d"]),
      pow ? N("Pow", inputs: ["d", "two"], outputs: ["p"]) : N("Mul", inputs: ["d", "d"], outputs: ["p"]), mean("p", "v"),
      N("Add", inputs: ["v", "eps"], outputs: ["ve"]), N("Sqrt", inputs: ["ve"], outputs: ["r"]),
      N("Div", inputs: ["d", "r"], outputs: [affine ? "n" : "y"]),
    ]
    if affine { nodes += [N("Mul", inputs: ["n", "w"], outputs: ["nw"]), N("Add", inputs: ["nw", "b"], outputs: ["y"])] }
    let constants = [
      Self.ints("last", [-1]), Self.scalar("two", 2), Self.scalar("eps", 1e-5),
      ONNXTensor(name: "w", dims: [4], floats: [1, 2, 3, 4]), ONNXTensor(name: "b", dims: [4], floats: [0, 1, 0, 1]),
    ]
    let made = try Self.normalised(nodes, constants: constants)
    #expect(Self.ops(made) == ["LayerNormalization"] && (made.nodes[0].domain == ONNXNormalizer.domain) == !affine)
    #expect(made.nodes[0].inputs == (affine ? ["x", "w", "b"] : ["x", "", ""]) && made.nodes[0].attribute("epsilon")?.float == 1e-5)
    let layers = try Self.layers(nodes, constants: constants)
    #expect(layers.map(\.kind.typeName) == ["layer_norm"])
  }

  @Test func aLayerNormOverDifferentAxesIsLeftAlone() throws {
    let made = try Self.normalised(
      [
        N("ReduceMean", inputs: ["x"], outputs: ["m"], attributes: [.ints("axes", [-1])]), N("Sub", inputs: ["x", "m"], outputs: ["d"]),
        N("Pow", inputs: ["d", "two"], outputs: ["p"]), N("ReduceMean", inputs: ["p"], outputs: ["v"], attributes: [.ints("axes", [1])]),
        N("Add", inputs: ["v", "eps"], outputs: ["ve"]), N("Sqrt", inputs: ["ve"], outputs: ["r"]),
        N("Div", inputs: ["d", "r"], outputs: ["y"]),
      ], constants: [Self.scalar("two", 2), Self.scalar("eps", 1e-5)])
    #expect(!Self.ops(made).contains("LayerNormalization"))
  }

  /// `AdaptiveAvgPool2d(1)` as the default exporter writes it: ReduceMean over [-2, -1] (axes
  /// an input, opset 18) or [2, 3] (an attribute); without keepdims it is also flattened.
  @Test func aMeanOverTheImageAxesIsAGlobalPool() throws {
    let kept = try Self.normalised(
      [N("ReduceMean", inputs: ["x", "axes"], outputs: ["y"], attributes: [.int("keepdims", 1)])],
      constants: [Self.ints("axes", [-1, -2])],
      shape: [2, 3, 3])
    #expect(Self.ops(kept) == ["GlobalAveragePool"])
    let dropped = try Self.normalised(
      [N("ReduceMean", inputs: ["x"], outputs: ["y"], attributes: [.ints("axes", [2, 3]), .int("keepdims", 0)])], shape: [2, 3, 3])
    #expect(Self.ops(dropped) == ["GlobalAveragePool", "Flatten"] && dropped.nodes[1].outputs == ["y"])
    let layers = try Self.layers(
      [N("ReduceMean", inputs: ["x"], outputs: ["y"], attributes: [.ints("axes", [2, 3]), .int("keepdims", 0)])], constants: [],
      shape: [2, 3, 3])
    #expect(layers.map(\.kind.typeName) == ["global_avg_pool"])
    // Over one image axis it is no global pool.
    #expect(
      Self.ops(try Self.normalised([N("ReduceMean", inputs: ["x"], outputs: ["y"], attributes: [.ints("axes", [3])])], shape: [2, 3, 3]))
        == ["ReduceMean"])
  }

  @Test func aTrainingModeBatchNormIsImportedWithItsRunningStatistics() throws {
    let parts = ["s", "b", "m", "v"].map { ONNXTensor(name: $0, dims: [4], floats: [1, 0.5, 0.25, 2]) }
    let node = N(
      "BatchNormalization", inputs: ["x", "s", "b", "m", "v"], outputs: ["y", "mean_out", "var_out"], name: "bn",
      attributes: [.int("training_mode", 1)])
    let made = try Self.normalised([node], constants: parts)
    #expect(made.nodes[0].outputs == ["y"] && made.nodes[0].attribute("training_mode") == nil)
    #expect(made.notes.contains { $0.contains("bn was exported in training mode") })
    // When its updated statistics are read, it is not the inference form: refused.
    let read = try Self.normalised([node, N("Add", inputs: ["y", "mean_out"], outputs: ["z"])], constants: parts, output: "z")
    #expect(read.nodes[0].attribute("training_mode")?.int == 1)
    #expect {
      _ = try Self.layers([node, N("Add", inputs: ["y", "mean_out"], outputs: ["z"])], constants: parts)
    } throws: { error in
      "\(error)".contains("node \"bn\" (BatchNormalization): training_mode=1")
    }
  }

  /// Every pattern in the table has a name, and the table is what the pass runs.
  @Test func theTableListsEveryPattern() {
    #expect(ONNXPatterns.table.map(\.name).count == 7)
    #expect(Set(ONNXPatterns.table.map(\.name)).count == ONNXPatterns.table.count)
  }
}
