import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Interchange

/// ONNX files built to break the importer, and sessions whose names are built to break out of
/// the generated PyTorch script.
@Suite("Hostile interchange files")
struct HostileInterchangeTests {
  static let weight = ONNXRefusalTests.weight

  static func refusal(_ nodes: [ONNXNode], initializers: [ONNXTensor] = [weight], inputs: [ONNXValueInfo]? = nil) -> String? {
    do {
      _ = try ONNXImport.session(from: ONNXRefusalTests.model(nodes, inputs: inputs, initializers: initializers), file: "m.onnx", name: "m")
      return nil
    } catch {
      return error.description
    }
  }

  @Test(arguments: [
    ([ONNXNode("Gemm", inputs: ["x"], outputs: ["y"], name: "g")], "node \"g\" (Gemm): it has 1 inputs, but needs its weight as input 2"),
    ([ONNXNode("MatMul", inputs: ["x"], outputs: ["y"], name: "m")], "node \"m\" (MatMul): it has 1 inputs, but needs its weight"),
    (
      [ONNXNode("LayerNormalization", inputs: ["x"], outputs: ["y"], name: "ln")],
      "node \"ln\" (LayerNormalization): it has 1 inputs, but needs its scale"
    ),
    ([ONNXNode("BatchNormalization", inputs: ["x"], outputs: ["y"], name: "bn")], "it needs scale, bias, mean and variance"),
    ([ONNXNode("Relu", inputs: ["x"], outputs: [], name: "r")], "node \"r\" (Relu): it has no output"),
    (
      [ONNXNode("Gemm", inputs: ["x", "W"], outputs: ["y"], name: "nan", attributes: [.int("transB", 1), .float("alpha", .nan)])],
      "node \"nan\" (Gemm): attribute alpha is nan; it must be a finite number"
    ),
    (
      [ONNXNode("LeakyRelu", inputs: ["x"], outputs: ["y"], name: "lr", attributes: [.float("alpha", .infinity)])],
      "attribute alpha is inf"
    ),
    (
      [ONNXNode("LayerNormalization", inputs: ["x", "S"], outputs: ["y"], name: "eps", attributes: [.float("epsilon", .nan)])],
      "attribute epsilon is nan"
    ),
    (
      [ONNXNode("Dropout", inputs: ["x"], outputs: ["y"], name: "d", attributes: [.float("ratio", .nan)])],
      "attribute ratio is nan"
    ),
  ])
  func malformedNodeListsAreRefusedNotTrapped(_ nodes: [ONNXNode], _ message: String) {
    let scale = ONNXTensor(name: "S", dims: [4], floats: [1, 1, 1, 1])
    let text = Self.refusal(nodes, initializers: [Self.weight, scale])
    #expect(text?.contains(message) == true, "\(text ?? "accepted")")
  }

  @Test func aGELUPatternWithAMissingOutputIsRefused() {
    let half = ONNXTensor(name: "h", dims: [], floats: [0.5]), root = ONNXTensor(name: "r", dims: [], floats: [Float(2).squareRoot()])
    let one = ONNXTensor(name: "o", dims: [], floats: [1])
    let nodes = [
      ONNXNode("Div", inputs: ["x", "r"], outputs: ["a"]), ONNXNode("Erf", inputs: ["a"], outputs: []),
      ONNXNode("Add", inputs: ["b", "o"], outputs: ["c"]), ONNXNode("Mul", inputs: ["x", "c"], outputs: ["d"]),
      ONNXNode("Mul", inputs: ["d", "h"], outputs: ["y"]),
    ]
    #expect(Self.refusal(nodes, initializers: [half, root, one])?.contains("it has no output") == true)
  }

  @Test func nonFiniteWeightsAreRefusedWithTheirPlace() {
    var bad = Self.weight
    bad.floats[5] = .infinity
    let text = Self.refusal([ONNXNode("Gemm", inputs: ["x", "W"], outputs: ["y"], attributes: [.int("transB", 1)])], initializers: [bad])
    #expect(text?.contains("W holds inf at flat index 5; weights must be finite") == true, "\(text ?? "accepted")")
  }

  @Test(arguments: [[Int.max / 2, 2], [1 << 31, 1 << 31, 1 << 31]])
  func inputShapesThatOverflowAreRefused(_ sample: [Int]) {
    let inputs = [ONNXValueInfo(name: "x", shape: [.symbol("N")] + sample.map { .value($0) })]
    let text = Self.refusal([ONNXNode("Flatten", inputs: ["x"], outputs: ["y"])], inputs: inputs)
    #expect(text?.contains("more than 2^40 values per sample") == true, "\(text ?? "accepted")")
  }

  /// An import writes only what validate accepts: here a weight with no output units, and a
  /// layer too large for the memory limit.
  @Test func importsThatWouldNotValidateAreRefused() {
    let empty = ONNXTensor(name: "W", dims: [0, 4], floats: [])
    let text = Self.refusal([ONNXNode("Gemm", inputs: ["x", "W"], outputs: ["y"], attributes: [.int("transB", 1)])], initializers: [empty])
    #expect(text?.contains("units: must be a positive integer, got 0") == true, "\(text ?? "accepted")")
  }

  /// 20,000 nodes import in linear time (it was quadratic: 25 s); the size here is what matters,
  /// not a time limit.
  @Test func aLongChainImports() throws {
    let nodes =
      (0..<20_000).map { i in ONNXNode(i % 2 == 0 ? "Relu" : "Tanh", inputs: [i == 0 ? "x" : "t\(i - 1)"], outputs: ["t\(i)"]) }
      + [ONNXNode("Identity", inputs: ["t19999"], outputs: ["y"])]
    let (bundle, _) = try ONNXImport.session(from: ONNXRefusalTests.model(nodes, initializers: []), file: "long.onnx", name: "long")
    #expect(bundle.spec.model.layers.count == 20_000)
    #expect(bundle.spec.model.layers.last?.name == "activation20000")
  }

  /// 5,000 SiLUs written out (Sigmoid · x) import as 5,000 layers: each pattern sweeps the graph
  /// once per pass, not once per match.
  @Test func manyIdiomsImport() throws {
    var nodes: [ONNXNode] = []
    for i in 0..<5_000 {
      let x = i == 0 ? "x" : "t\(i - 1)"
      nodes += [ONNXNode("Sigmoid", inputs: [x], outputs: ["s\(i)"]), ONNXNode("Mul", inputs: [x, "s\(i)"], outputs: ["t\(i)"])]
    }
    nodes.append(ONNXNode("Identity", inputs: ["t4999"], outputs: ["y"]))
    let (bundle, notes) = try ONNXImport.session(from: ONNXRefusalTests.model(nodes, initializers: []), file: "silu.onnx", name: "silu")
    #expect(bundle.spec.model.layers.count == 5_000)
    #expect(notes.contains { $0.contains("SiLU as Sigmoid · x ×5000") })
  }

  /// Shape arithmetic on a file's own large integer tensor (a Concat of it with itself 100
  /// times: 10^7 entries) is not folded — shapes are short — and the import names the node.
  @Test func aLargeIntegerTensorIsNotFoldedIntoAShape() {
    let big = ONNXTensor(name: "big", dims: [100_000], ints: Array(repeating: 1, count: 100_000))
    let nodes = [
      ONNXNode("Concat", inputs: Array(repeating: "big", count: 100), outputs: ["target"], name: "huge", attributes: [.int("axis", 0)]),
      ONNXNode("Reshape", inputs: ["x", "target"], outputs: ["y"], name: "r"),
    ]
    let text = Self.refusal(nodes, initializers: [big])
    #expect(text?.contains("node \"huge\" (Concat)") == true, "\(text ?? "accepted")")
  }

  // MARK: the PyTorch script

  /// Names that try to leave a string literal, a docstring or a comment.
  static func hostileNames(marker: String) -> (session: String, layer: String) {
    let payload = "import os; open(\(TorchExport.pythonLiteral(marker)), \"w\").write(\"owned\")"
    return (
      "x\"\"\"\n\(payload)\n\"\"\"\\\u{1B}]0;title\u{07}\u{2028}'''\0",
      "d1\n\(payload)\n#\u{85}\r\(payload)"
    )
  }

  @Test(.enabled(if: PythonPeer.isAvailable, "python3 with numpy and safetensors is not installed: skipped"))
  func namesInTheScriptAreDataNeverCode() throws {
    let folder = temporaryFolder("specbench-inject")
    let marker = folder + "/owned"
    let (sessionName, layerName) = Self.hostileNames(marker: marker)
    var (bundle, _) = try trainedExample("xor", steps: 3)
    bundle.spec.name = sessionName
    bundle.spec.model.layers[0].name = layerName
    var tensors: [String: StoredTensor] = [:]
    let old = bundle.spec.model.layers[0].name
    for (key, value) in bundle.tensors! { tensors[key.replacingOccurrences(of: "dense1.", with: layerName + ".")] = value }
    _ = old
    bundle.tensors = tensors
    let result = try Exporter.export(bundle, to: .pytorch, path: folder + "/train", folder: repositoryPath("sessions"))
    let script = try String(contentsOfFile: result.files[0], encoding: .utf8)
    #expect(!script.unicodeScalars.contains { $0.value > 0x7E || ($0.value < 0x20 && $0 != "\n") }, "printable ASCII and newlines only")
    // Compile and run the module's top level (and build_model) with the stand-in torch, then
    // read the names back from the script's literals.
    let check =
      TorchExportTests.standIn + """

        import ast as _ast
        print(json.dumps({"session": namespace["SESSION_NAME"], "layers": namespace["LAYERS"]}))
        """
    let run = try PythonPeer.run(check, [result.files[0], result.files[1]])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(!FileManager.default.fileExists(atPath: marker), "the payload ran")
    let lines = run.stdout.split(separator: "\n")
    let names = try JSONSerialization.jsonObject(with: Data((lines.last ?? "").utf8)) as? [String: Any]
    #expect(names?["session"] as? String == sessionName)
    #expect((names?["layers"] as? [String])?.first == layerName)
  }
}

/// External data that reaches outside the model's folder, past its file, or into a special
/// file: refused, naming the tensor, before anything is written.
@Suite("Hostile ONNX external data")
struct HostileExternalDataTests {
  /// A one-layer model (`W` [3, 4], `b` [3]) whose `W` is external with these entries.
  static func model(_ entries: [(String, String)]) -> [UInt8] {
    var w = Protobuf.Writer()
    w.message(7) { g in
      g.message(1) { n in
        for input in ["x", "W", "b"] { n.string(1, input) }
        n.string(2, "y")
        n.string(4, "Gemm")
        n.message(5) { a in
          a.string(1, "transB")
          a.int(3, 1)
          a.int(20, 2)
        }
      }
      g.message(5) { t in
        t.packedInts(1, [3, 4])
        t.int(2, 1)
        t.string(8, "W")
        for (key, value) in entries {
          t.message(13) { e in
            e.string(1, key)
            e.string(2, value)
          }
        }
        t.int(14, 1)
      }
      g.message(5) { t in
        t.packedInts(1, [3])
        t.int(2, 1)
        t.string(8, "b")
        t.bytes(9, [UInt8](repeating: 0, count: 12))
      }
      for (field, name, width) in [(11, "x", 4), (12, "y", 3)] {
        g.message(field) { v in
          v.string(1, name)
          v.message(2) { type in
            type.message(1) { tensor in
              tensor.int(1, 1)
              tensor.message(2) { shape in
                shape.message(1) { $0.string(2, "N") }
                shape.message(1) { $0.int(1, width) }
              }
            }
          }
        }
      }
    }
    w.message(8) { o in o.int(2, 17) }
    return w.bytes
  }

  @Test func externalDataOutsideTheFolderOrTheFileIsRefused() throws {
    let folder = temporaryFolder()
    let values = (0..<12).flatMap { i in withUnsafeBytes(of: Float(i).bitPattern.littleEndian, Array.init) }
    try Data([0, 0, 0, 0] + values).write(to: URL(fileURLWithPath: folder + "/m.onnx.data"))
    #expect(mkfifo(folder + "/fifo.data", 0o600) == 0)
    // The good case first: the entries as the exporters write them.
    let good = try ONNXImport.session(
      from: Self.model([("location", "m.onnx.data"), ("offset", "4"), ("length", "48")]), file: folder + "/m.onnx", name: "m")
    #expect(
      good.bundle.tensors?.values.contains { $0.scalars == (0..<12).map(Float.init) || $0.scalars.sorted() == (0..<12).map(Float.init) }
        == true)
    let cases: [([(String, String)], String)] = [
      ([("location", "../../etc/passwd")], "is not a plain file name beside the model"),
      ([("location", "/etc/passwd")], "is not a plain file name beside the model"),
      ([("location", ".hidden")], "is not a plain file name beside the model"),
      ([("location", "a\u{1B}[2Jb")], "is not a plain file name beside the model"),
      ([("offset", "4")], "names none (location)"),
      ([("location", "m.onnx.data"), ("offset", "-4")], "offset must be a whole number from 0"),
      ([("location", "m.onnx.data"), ("length", "1e9")], "length must be a whole number from 0"),
      ([("location", "m.onnx.data"), ("offset", "8"), ("length", "48")], "reaches past the file's end (52 bytes)"),
      ([("location", "m.onnx.data"), ("offset", "\(Int.max)"), ("length", "48")], "reaches past the file's end"),
      ([("location", "m.onnx.data"), ("length", "40")], "has 40 bytes of data for dimensions [3, 4] (48 expected)"),
      ([("location", "missing.data")], "no such file"),
      ([("location", "fifo.data")], "FIFO"),
      ([("location", "m.onnx.data"), ("sha", "x")], "unknown external data key"),
    ]
    for (entries, message) in cases {
      do {
        _ = try ONNXImport.session(from: Self.model(entries), file: folder + "/m.onnx", name: "m")
        Issue.record("accepted \(entries)")
      } catch {
        #expect(error.description.contains(message), "\(entries): \(error.description)")
        #expect(!error.description.unicodeScalars.contains("\u{1B}"), "no control character reaches the message")
      }
    }
  }
}
