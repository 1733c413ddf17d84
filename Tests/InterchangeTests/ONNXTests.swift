import Backends
import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Interchange
@testable import Session

@Suite("ONNX with onnxruntime", .enabled(if: ONNXPeer.isAvailable, "python3 with onnx and onnxruntime is not installed: skipped"))
struct ONNXRuntimeTests {
  static let examples = ["blobs", "circles", "digits-cnn", "digits-mlp", "iris", "moons", "sine", "sine-lbfgs", "spirals", "xor"]

  /// Every example session, trained, exported and run in onnxruntime on random inputs, gives
  /// SpecBench's predictions within 1e-5; the ONNX checker accepts the file; and importing it
  /// back gives a session whose predictions are the same bits.
  @Test(arguments: examples)
  func exportedModelsRunInOnnxRuntimeAndComeBackUnchanged(name: String) throws {
    let (bundle, _) = try trainedExample(name)
    try checkRoundTrip(bundle, name: name, dataFolder: repositoryPath("sessions"))
  }

  /// Every image layer and option (same padding with an even kernel, so uneven pads; groups,
  /// strides, dilation; both pools with padding; batch_norm on images; two reshapes; the global
  /// pool), trained a few steps on digits: onnxruntime agrees, and it comes back bit for bit.
  @Test(arguments: [
    #"[{"type": "conv2d", "filters": 6, "kernel": 2, "padding": "same", "activation": "relu"}, {"type": "batch_norm"}, {"type": "max_pool2d", "kernel": 3, "stride": 2, "padding": 1}, {"type": "conv2d", "filters": 8, "kernel": [2, 3], "stride": [1, 2], "dilation": [2, 1], "padding": 1, "groups": 2, "activation": "tanh"}, {"type": "avg_pool2d", "kernel": 2, "stride": 1, "padding": 1}, {"type": "reshape", "shape": [40, 3]}, {"type": "reshape", "shape": [8, 5, -1]}, {"type": "global_avg_pool"}, {"type": "dense", "units": 10}]"#,
    #"[{"type": "conv2d", "filters": 4, "kernel": 3, "use_bias": false}, {"type": "reshape", "shape": [-1]}, {"type": "dense", "units": 10, "activation": "softmax"}]"#,
  ])
  func everyImageLayerRunsInOnnxRuntimeAndComesBack(layers: String) throws {
    try checkRoundTrip(try trainedImageSession(layers: layers), name: "images", dataFolder: "")
  }

  func checkRoundTrip(_ bundle: SessionBundle, name: String, dataFolder: String) throws {
    let folder = temporaryFolder("specbench-onnx")
    let result = try Exporter.export(bundle, to: .onnx, path: folder + "/model", folder: dataFolder)
    #expect(result.files == [folder + "/model.onnx"])
    let inputs = randomInputs(bundle.spec.model.input, count: 17, seed: 5)
    let expected = try predictions(bundle, inputs, folder: dataFolder)
    try writeTensors(["input": inputs], to: folder + "/inputs.safetensors")
    let ran = try ONNXPeer.run(runInOnnxRuntime, [folder + "/model.onnx", folder + "/inputs.safetensors", folder + "/outputs.safetensors"])
    #expect(ran.status == 0, "\(ran.stderr)")
    let output = try #require(try readTensors(folder + "/outputs.safetensors")["output"])
    #expect(output.shape == expected.shape)
    #expect(agree(output.scalars, expected.scalars), "onnxruntime and SpecBench differ for \(name)")
    let check = try ONNXPeer.run(
      "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); "
        + "print(m.opset_import[0].version, m.producer_name, {p.key: p.value for p in m.metadata_props}['specbench.session'], "
        + "[d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim])",
      [folder + "/model.onnx"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(check.stdout.hasPrefix("17 SpecBench \(name) ['batch'"), "\(check.stdout)")

    // Back in: the same layers' worth of weights, the same predictions, bit for bit.
    let bytes = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/model.onnx")))
    let (imported, _) = try ONNXImport.session(from: bytes, file: "model.onnx", name: name)
    try expectSamePredictions(imported, inputs, expected, folder: folder, name: name)
  }

  /// A CSV session with `normalize`: the exported graph takes raw rows as the data file has them
  /// (it standardises them with the training split's statistics), so onnxruntime on raw rows
  /// predicts what SpecBench predicts; the class names are in the metadata. (The export used to
  /// expect standardised rows without a word: raw rows then gave chance accuracy.)
  @Test func aNormalisedCSVSessionExportsItsPreprocessing() throws {
    let folder = temporaryFolder("specbench-onnx")
    let (spec, bundle, raw, lines) = try normalisedCSVSession(in: folder)
    let result = try Exporter.export(bundle, to: .onnx, path: folder + "/rows", folder: folder, softmax: true)
    #expect(!result.leftOut.contains { $0.contains("standardisation") }, "\(result.leftOut)")
    // The state_dict alone cannot carry it, and says so.
    let weights = try Exporter.export(bundle, to: .safetensors, path: folder + "/weights", folder: folder)
    #expect(weights.leftOut.first?.hasPrefix("the data's standardisation (data.normalize)") == true, "\(weights.leftOut)")
    // SpecBench's predictions: the same rows, standardised as training standardised them.
    let dataset = try DatasetLoader.load(spec.data, relativeTo: folder)
    let split = DataSplit(dataset, validationFraction: 0.25, seed: spec.training.seed)
    let statistics = try #require(split.standardization)
    let rawRows = Tensor(shape: [120, 2], scalars: raw)
    let logits = try predictions(bundle, statistics.apply(to: rawRows), folder: folder)
    try writeTensors(["input": rawRows], to: folder + "/inputs.safetensors")
    let ran = try ONNXPeer.run(runInOnnxRuntime, [folder + "/rows.onnx", folder + "/inputs.safetensors", folder + "/outputs.safetensors"])
    #expect(ran.status == 0, "\(ran.stderr)")
    let probabilities = try #require(try readTensors(folder + "/outputs.safetensors")["output"])
    // The same class for every row, and the same probabilities within float rounding.
    let predicted = (0..<120).map { logits.scalars[2 * $0] >= logits.scalars[2 * $0 + 1] ? 0 : 1 }
    let fromONNX = (0..<120).map { probabilities.scalars[2 * $0] >= probabilities.scalars[2 * $0 + 1] ? 0 : 1 }
    #expect(predicted == fromONNX)
    let softmaxed: [Float] = (0..<120).flatMap { row -> [Float] in
      let a = logits.scalars[2 * row], b = logits.scalars[2 * row + 1], m = max(a, b)
      let (ea, eb) = (exp(a - m), exp(b - m))
      return [ea / (ea + eb), eb / (ea + eb)]
    }
    #expect(agree(probabilities.scalars, softmaxed, tolerance: 1e-4))
    // And the model is good on raw rows, which it was not when the graph expected standardised ones.
    let labels = lines.dropFirst().map { $0.hasSuffix("small") ? 1 : 0 }
    let accuracy = Double(zip(fromONNX, labels).filter { $0 == $1 }.count) / 120
    #expect(accuracy > 0.85, "accuracy on raw rows \(accuracy)")
    let metadata = try ONNXPeer.run(
      "import onnx, sys; m = onnx.load(sys.argv[1]); p = {p.key: p.value for p in m.metadata_props}; print(p['specbench.classes'], p['specbench.input'])",
      [folder + "/rows.onnx"])
    #expect(
      metadata.stdout == "[\"large\", \"small\"] raw rows of the data file (the graph standardises them)\n",
      "\(metadata.stdout) \(metadata.stderr)")
  }

  /// `--softmax` ends the graph with a softmax: onnxruntime gives probabilities that sum to 1
  /// and match softmax of SpecBench's logits.
  @Test func aSoftmaxOutputGivesProbabilities() throws {
    let (bundle, _) = try trainedExample("spirals")
    let folder = temporaryFolder("specbench-onnx")
    _ = try Exporter.export(bundle, to: .onnx, path: folder + "/model.onnx", folder: repositoryPath("sessions"), softmax: true)
    let inputs = randomInputs([2], count: 9, seed: 8)
    let logits = try predictions(bundle, inputs, folder: repositoryPath("sessions"))
    try writeTensors(["input": inputs], to: folder + "/inputs.safetensors")
    let ran = try ONNXPeer.run(runInOnnxRuntime, [folder + "/model.onnx", folder + "/inputs.safetensors", folder + "/outputs.safetensors"])
    #expect(ran.status == 0, "\(ran.stderr)")
    let output = try #require(try readTensors(folder + "/outputs.safetensors")["output"])
    var expected: [Float] = []
    for row in 0..<9 {
      let z = Array(logits.scalars[row * 3..<row * 3 + 3])
      let top = z.max()!
      let e = z.map { Foundation.exp(Double($0 - top)) }
      expected += e.map { Float($0 / e.reduce(0, +)) }
    }
    #expect(agree(output.scalars, expected))
    // A model that ends with a softmax already is not given a second one.
    var spec = bundle.spec
    spec.model.layers.append(LayerSpec(name: "probabilities", kind: .activation(function: .softmax)))
    let withSoftmax = SessionBundle(spec: spec, tensors: bundle.tensors, optimizerSteps: 0)
    #expect(throws: InterchangeError.self) {
      _ = try Exporter.export(withSoftmax, to: .onnx, path: folder + "/twice.onnx", folder: repositoryPath("sessions"), softmax: true)
    }
    #expect(!FileManager.default.fileExists(atPath: folder + "/twice.onnx"))
  }

  /// Graphs built with the `onnx` package in the layouts other exporters write — PyTorch's Gemm
  /// with transB=1, Gemm with [in, out] weights, Keras' MatMul + Add, GELU and SiLU written out,
  /// Flatten, Dropout with its ratio as an input, Identity, LayerNormalization,
  /// BatchNormalization, LeakyRelu, Elu, Softplus, Softmax — import into sessions whose
  /// predictions match onnxruntime's.
  @Test(arguments: [
    "torch_gemm", "gemm_in_out", "keras_matmul_add", "gelu_silu_flatten", "norms_and_friends", "torch_cnn", "cnn_global_pool",
  ])
  func graphsFromOtherExportersImport(layout: String) throws {
    let folder = temporaryFolder("specbench-onnx-import")
    let made = try ONNXPeer.run(Self.buildGraphs, [layout, folder])
    #expect(made.status == 0, "\(made.stderr)")
    let bytes = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/\(layout).onnx")))
    let (bundle, notes) = try ONNXImport.session(from: bytes, file: "\(layout).onnx", name: layout)
    #expect(notes.first?.contains("layers") == true)
    let tensors = try readTensors(folder + "/io.safetensors")
    let input = try #require(tensors["input"]), output = try #require(tensors["output"])
    let ours = try predictions(bundle, input, folder: folder)
    #expect(ours.shape == output.shape)
    #expect(
      agree(ours.scalars, output.scalars), "\(layout): SpecBench \(ours.scalars.prefix(6)) vs onnxruntime \(output.scalars.prefix(6))")
    // The session is a valid file that saves and loads.
    let saved = try SessionFile.save(bundle, to: folder + "/session")
    #expect(saved.model.layers.count == bundle.spec.model.layers.count)
    _ = try SessionFile.load(folder + "/session.json")
  }

  /// Builds one of the test graphs with the onnx helper API and random weights, runs it in
  /// onnxruntime on random inputs, and saves both.
  static let buildGraphs = #"""
    import sys, numpy as np, onnx, onnxruntime as ort
    from onnx import helper, numpy_helper, TensorProto
    from safetensors.numpy import save_file
    layout, folder = sys.argv[1:3]
    rng = np.random.default_rng(11)
    inits = []
    def w(name, *shape, scale=0.5):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name
    def c(name, value):
        inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        return name
    N = helper.make_node
    sample = [6]
    opset = 17
    if layout == "torch_gemm":
        nodes = [N("Gemm", ["x", w("fc1.weight", 16, 6), w("fc1.bias", 16)], ["h1"], name="/fc1/Gemm", transB=1),
                 N("Relu", ["h1"], ["a1"], name="/act/Relu"),
                 N("Gemm", ["a1", w("fc2.weight", 3, 16), w("fc2.bias", 3)], ["y"], name="/fc2/Gemm", transB=1)]
    elif layout == "gemm_in_out":
        nodes = [N("Gemm", ["x", w("W1", 6, 8), w("b1", 8)], ["h1"], alpha=1.0, beta=1.0),
                 N("Tanh", ["h1"], ["a1"]),
                 N("Gemm", ["a1", w("W2", 8, 2)], ["y"])]
    elif layout == "keras_matmul_add":
        nodes = [N("MatMul", ["x", w("dense/kernel", 6, 10)], ["m1"], name="dense/MatMul"),
                 N("Add", ["m1", w("dense/bias", 10)], ["h1"], name="dense/BiasAdd"),
                 N("Sigmoid", ["h1"], ["a1"], name="dense/Sigmoid"),
                 N("MatMul", ["a1", w("dense_1/kernel", 10, 4)], ["m2"]),
                 N("Add", ["m2", w("dense_1/bias", 4)], ["h2"]),
                 N("Softmax", ["h2"], ["y"], axis=-1)]
    elif layout == "gelu_silu_flatten":
        sample = [2, 3]
        nodes = [N("Flatten", ["x"], ["f"], axis=1),
                 N("Gemm", ["f", w("l1.w", 12, 6), w("l1.b", 12)], ["h1"], transB=1),
                 N("Div", ["h1", c("sqrt2", 1.4142135)], ["d"]), N("Erf", ["d"], ["e"]),
                 N("Add", ["e", c("one", 1.0)], ["p"]), N("Mul", ["h1", "p"], ["q"]), N("Mul", ["q", c("half", 0.5)], ["g"]),
                 N("Gemm", ["g", w("l2.w", 7, 12), w("l2.b", 7)], ["h2"], transB=1),
                 N("Sigmoid", ["h2"], ["s"]), N("Mul", ["h2", "s"], ["silu"]),
                 N("Identity", ["silu"], ["i"]),
                 N("Dropout", ["i", c("ratio", 0.25)], ["dr"]),
                 N("Gemm", ["dr", w("l3.w", 2, 7)], ["y"], transB=1)]
    elif layout == "torch_cnn":
        # As torch.onnx.export writes a LeNet-style nn.Sequential: every Conv and pool attribute
        # spelt out, ReLU after each Conv, view(-1, n) as Reshape with a stored [-1, n].
        sample = [2, 12, 12]
        i64 = lambda name, v: inits.append(numpy_helper.from_array(np.array(v, dtype=np.int64), name)) or name
        nodes = [N("Conv", ["x", w("conv1.weight", 6, 2, 3, 3), w("conv1.bias", 6)], ["/conv1/Conv_output_0"], name="/conv1/Conv",
                   dilations=[1, 1], group=1, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
                 N("Relu", ["/conv1/Conv_output_0"], ["/relu1/Relu_output_0"], name="/relu1/Relu"),
                 N("MaxPool", ["/relu1/Relu_output_0"], ["/pool1/MaxPool_output_0"], name="/pool1/MaxPool",
                   ceil_mode=0, dilations=[1, 1], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2]),
                 N("Conv", ["/pool1/MaxPool_output_0", w("conv2.weight", 8, 3, 2, 3)], ["/conv2/Conv_output_0"], name="/conv2/Conv",
                   dilations=[2, 1], group=2, kernel_shape=[2, 3], pads=[0, 1, 0, 1], strides=[1, 2]),
                 N("Tanh", ["/conv2/Conv_output_0"], ["/act2/Tanh_output_0"], name="/act2/Tanh"),
                 N("AveragePool", ["/act2/Tanh_output_0"], ["/pool2/AveragePool_output_0"], name="/pool2/AveragePool",
                   ceil_mode=0, count_include_pad=1, kernel_shape=[2, 2], pads=[1, 1, 1, 1], strides=[1, 1]),
                 N("Reshape", ["/pool2/AveragePool_output_0", i64("/Constant_output_0", [-1, 8 * 5 * 4])], ["/Reshape_output_0"], name="/Reshape"),
                 N("Gemm", ["/Reshape_output_0", w("fc.weight", 4, 160), w("fc.bias", 4)], ["y"], name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1)]
    elif layout == "cnn_global_pool":
        sample = [3, 7, 6]
        nodes = [N("Conv", ["x", w("c.w", 5, 3, 3, 3), w("c.b", 5)], ["c"], auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
                 N("Relu", ["c"], ["r"]),
                 N("Conv", ["r", w("c2.w", 4, 5, 2, 2)], ["c2"], pads=[0, 0, 1, 1]),
                 N("GlobalAveragePool", ["c2"], ["g"]),
                 N("Flatten", ["g"], ["f"], axis=1),
                 N("Gemm", ["f", w("d.w", 3, 4), w("d.b", 3)], ["y"], transB=1)]
    else:
        nodes = [N("BatchNormalization", ["x", c("bn.s", rng.uniform(0.5, 1.5, 6)), c("bn.b", rng.standard_normal(6)),
                                          c("bn.m", rng.standard_normal(6)), c("bn.v", rng.uniform(0.5, 2, 6))], ["n1"],
                   epsilon=1e-3, momentum=0.8),
                 N("Gemm", ["n1", w("W1", 9, 6), w("b1", 9)], ["h1"], transB=1),
                 N("LeakyRelu", ["h1"], ["a1"], alpha=0.2),
                 N("LayerNormalization", ["a1", c("ln.s", rng.uniform(0.5, 1.5, 9)), c("ln.b", rng.standard_normal(9))], ["n2"],
                   axis=-1, epsilon=1e-4),
                 N("Elu", ["n2"], ["a2"]),
                 N("Gemm", ["a2", w("W2", 5, 9), w("b2", 5)], ["h2"], transB=1),
                 N("Softplus", ["h2"], ["y"])]
    graph = helper.make_graph(nodes, layout, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + sample)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])], inits)
    model = helper.make_model(graph, producer_name="test", opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, f"{folder}/{layout}.onnx")
    x = rng.standard_normal([13] + sample).astype(np.float32)
    y = ort.InferenceSession(f"{folder}/{layout}.onnx", providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    save_file({"input": x, "output": np.ascontiguousarray(y)}, f"{folder}/io.safetensors")
    """#
}

/// Files the importer must refuse, each with a message that says what and where, and with
/// nothing written (these need no Python).
@Suite("ONNX files that are refused")
struct ONNXRefusalTests {
  static func model(_ nodes: [ONNXNode], inputs: [ONNXValueInfo]? = nil, initializers: [ONNXTensor] = []) -> [UInt8] {
    var model = ONNXModel()
    model.graph.nodes = nodes
    model.graph.initializers = initializers
    model.graph.inputs = inputs ?? [ONNXValueInfo(name: "x", shape: [.symbol("N"), .value(4)])]
    model.graph.outputs = [ONNXValueInfo(name: nodes.last?.outputs.first ?? "y", shape: nil)]
    return model.encoded()
  }

  static let weight = ONNXTensor(name: "W", dims: [3, 4], floats: Array(repeating: 0.5, count: 12))

  @Test func malformedFilesSayWhereTheyBreak() throws {
    let good = Self.model(
      [ONNXNode("Gemm", inputs: ["x", "W"], outputs: ["y"], attributes: [.int("transB", 1)])], initializers: [Self.weight])
    // Every truncation is refused with a reason, never a crash.
    for cut in stride(from: 1, to: good.count, by: 7) {
      #expect(throws: InterchangeError.self) { _ = try ONNXImport.session(from: Array(good.prefix(cut)), file: "cut.onnx", name: "x") }
    }
    let cases: [([UInt8], String)] = [
      ([], "the file has no graph (not an ONNX model?) (at byte 0)"),
      (Array("hello, not a model".utf8), "cut.onnx: not a readable ONNX model: "),
      ([0x3A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "a number is longer than ten bytes"),
      ([0x3A, 0x10, 0x01], "field 7 says it holds 16 bytes, but only 1 follow (a truncated file?) (at byte 0)"),
      ([0x3F, 0x00], "has wire type 7, which is not used (not a protobuf file?)"),
    ]
    for (bytes, message) in cases {
      do {
        _ = try ONNXImport.session(from: bytes, file: "cut.onnx", name: "x")
        Issue.record("\(bytes) was accepted")
      } catch {
        #expect(error.description.contains(message), "\(error.description)")
      }
    }
    _ = try ONNXImport.session(from: good, file: "good.onnx", name: "x")
  }

  @Test(arguments: [
    (
      [ONNXNode("LSTM", inputs: ["x", "W"], outputs: ["y"], name: "/lstm/LSTM")],
      "node \"/lstm/LSTM\" (LSTM): SpecBench imports chains of Gemm, MatMul + Add, Conv, MaxPool"
    ),
    (
      [ONNXNode("Conv", inputs: ["x", "W"], outputs: ["y"], name: "/conv1/Conv")],
      "node \"/conv1/Conv\" (Conv): its input has sample shape [4]; SpecBench imports 2-D image ops on [C, H, W]"
    ),
    (
      [ONNXNode("Gemm", inputs: ["x", "V"], outputs: ["y"], name: "fc")],
      "node \"fc\" (Gemm): V is computed in the graph, not a stored weight"
    ),
    (
      [ONNXNode("Relu", inputs: ["x"], outputs: ["a"]), ONNXNode("Relu", inputs: ["x"], outputs: ["y"], name: "branch")],
      "node \"branch\" (Relu): it reads x where the chain is at a; SpecBench imports graphs that are one chain of layers"
    ),
    (
      [ONNXNode("Gemm", inputs: ["x", "W"], outputs: ["y"], name: "t", attributes: [.int("transB", 1), .int("transA", 1)])],
      "node \"t\" (Gemm): transA=1"
    ),
    ([ONNXNode("Gelu", inputs: ["x"], outputs: ["y"], name: "g", attributes: [.string("approximate", "tanh")])], "approximate=tanh"),
    ([ONNXNode("Softmax", inputs: ["x"], outputs: ["y"], name: "s", attributes: [.int("axis", 0)])], "node \"s\" (Softmax): axis=0"),
    (
      [ONNXNode("Mul", inputs: ["x", "x"], outputs: ["y"], name: "square")],
      "node \"square\" (Mul): Mul is imported only as part of an idiom SpecBench recognises"
    ),
  ])
  func unsupportedNodesAreNamed(nodes: [ONNXNode], message: String) {
    do {
      _ = try ONNXImport.session(from: Self.model(nodes, initializers: [Self.weight]), file: "m.onnx", name: "m")
      Issue.record("accepted")
    } catch {
      #expect(error.description.contains(message), "\(error.description)")
    }
  }

  /// ONNX's BatchNormalization momentum weighs the running value (PyTorch's and SpecBench's
  /// weigh the batch): the export writes 1 − momentum, and the import reads it back. Predictions
  /// cannot show this (momentum only matters in training), so the attribute and the re-imported
  /// spec are compared.
  @Test func batchNormMomentumIsWrittenAsONNXsComplementAndReadBack() throws {
    var bundle = try SessionFile.load(repositoryPath("sessions/iris.json"))
    let index = try #require(bundle.spec.model.layers.firstIndex { if case .batchNorm = $0.kind { true } else { false } })
    bundle.spec.model.layers[index].kind = .batchNorm(eps: 1e-3, momentum: 0.2)
    let (bytes, _) = try ONNXExport.export(spec: bundle.spec, state: try bundle.spec.initialTrainingState())
    let model = try ONNXModel.decode(bytes)
    let node = try #require(model.graph.nodes.first { $0.opType == "BatchNormalization" })
    #expect(node.attribute("momentum")?.float == 0.8)
    #expect(node.attribute("epsilon")?.float == Float(1e-3))
    let (imported, _) = try ONNXImport.session(from: bytes, file: "iris.onnx", name: "iris")
    let layer = try #require(imported.spec.model.layers.first { if case .batchNorm = $0.kind { true } else { false } })
    guard case .batchNorm(let eps, let momentum) = layer.kind else { return }
    #expect(abs(momentum - 0.2) < 1e-6, "momentum \(momentum) came back")
    #expect(abs(eps - 1e-3) < 1e-9)
  }

  @Test func graphsThatAreNotOneChainAreRefused() {
    let two = [ONNXValueInfo(name: "x", shape: [.symbol("N"), .value(4)]), ONNXValueInfo(name: "z", shape: [.symbol("N"), .value(4)])]
    let cases: [([UInt8], String)] = [
      (Self.model([ONNXNode("Relu", inputs: ["x"], outputs: ["y"])], inputs: two), "the graph has 2 data inputs (x, z)"),
      (
        Self.model(
          [ONNXNode("Relu", inputs: ["x"], outputs: ["y"])], inputs: [ONNXValueInfo(name: "x", shape: [.symbol("N"), .symbol("F")])]),
        "symbolic or unknown axis after the batch axis"
      ),
      (
        Self.model(
          [ONNXNode("Relu", inputs: ["x"], outputs: ["y"])],
          inputs: [ONNXValueInfo(name: "x", elementType: 7, shape: [.value(1), .value(4)])]),
        "element type 7"
      ),
    ]
    for (bytes, message) in cases {
      do {
        _ = try ONNXImport.session(from: bytes, file: "m.onnx", name: "m")
        Issue.record("accepted: \(message)")
      } catch {
        #expect(error.description.contains(message), "\(error.description)")
      }
    }
    // Weights kept in an external file.
    var model = ONNXModel()
    model.graph.inputs = [ONNXValueInfo(name: "x", shape: [.symbol("N"), .value(4)])]
    var w = Protobuf.Writer()
    w.message(7) { g in
      g.message(5) { t in
        t.packedInts(1, [3, 4])
        t.int(2, 1)
        t.string(8, "W")
        t.int(14, 1)
      }
    }
    do {
      _ = try ONNXImport.session(from: w.bytes, file: "ext.onnx", name: "m")
      Issue.record("accepted")
    } catch {
      #expect(error.description.contains("keeps its data in an external file but names none (location)"), "\(error.description)")
    }
  }

  /// A model whose weights PyTorch's default exporter would put in `MODEL.onnx.data` (written
  /// here by the onnx package, every initializer external): imported with the same weights, bit
  /// for bit, as the same model with its weights inside.
  @Test func weightsInAnExternalDataFileAreRead() throws {
    let folder = temporaryFolder()
    let (bundle, _) = try trainedExample("iris", steps: 20)
    let (bytes, _) = try ONNXExport.export(spec: bundle.spec, state: try bundle.trainingState())
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/inside.onnx"))
    let moved = try ONNXPeer.run(
      "import onnx, sys; m = onnx.load(sys.argv[1]); "
        + "onnx.save(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='outside.onnx.data', size_threshold=0)",
      [folder + "/inside.onnx", folder + "/outside.onnx"])
    #expect(moved.status == 0, "\(moved.stderr)")
    let outside = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/outside.onnx")))
    let decoded = try ONNXModel.decode(outside)
    #expect(decoded.graph.initializers.allSatisfy { $0.external?.location == "outside.onnx.data" && $0.floats.isEmpty })
    let (fromOutside, _) = try ONNXImport.session(from: outside, file: folder + "/outside.onnx", name: "iris")
    let (fromInside, _) = try ONNXImport.session(from: bytes, file: folder + "/inside.onnx", name: "iris")
    #expect(fromOutside.tensors == fromInside.tensors && fromOutside.tensors?.isEmpty == false)
  }
}
