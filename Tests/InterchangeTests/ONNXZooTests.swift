import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Interchange

/// A zoo of PyTorch models (`Tests/Python/onnx_zoo.py`: MLPs, every activation SpecBench
/// imports, layer and batch norm, dropout, a flatten of a multi-axis input, convolutions and
/// pools), exported by PyTorch itself with both exporters at several opsets, as users export
/// them. Every file imports; the imported session keeps the model's input shape and predicts
/// what PyTorch predicts; and exported again, it predicts the same in onnxruntime.
@Suite(
  "ONNX from PyTorch's exporters",
  .enabled(if: TorchONNXPeer.isAvailable, "python3 with torch, onnx, onnxscript and onnxruntime is not installed: skipped"))
struct ONNXZooTests {
  /// What the script exports every model with, and the extra exports of some models.
  static let plan: [String: [Int]] = ["dynamo": [18, 19, 20, 21], "legacy": Array(13...20)]
  static let variants: [String: (opset: Int, models: [String])] = [
    "legacy-train": (17, ["batch-norm", "conv-batch-norm", "dropout"]),
    "dynamo-unoptimized": (18, ["batch-norm", "conv-batch-norm", "gelu", "layer-norm"]),
  ]

  struct Export: Decodable {
    var file: String
    var model: String
    var exporter: String
    var opset: Int
  }

  struct Check: Decodable {
    var file: String
    var max_abs: Double?
    var max_rel: Double?
    var close: Bool?
  }

  @Test func everyExportOfTheZooImportsAndPredictsWhatPyTorchPredicts() throws {
    let folder = temporaryFolder("specbench-onnx-zoo")
    let script = try String(contentsOfFile: repositoryPath("Tests/Python/onnx_zoo.py"), encoding: .utf8)
    let made = try TorchONNXPeer.run(script, [folder])
    #expect(made.status == 0, "\(made.stderr)")
    let lines = made.stdout.split(separator: "\n").map { Array($0.utf8) }
    let exports = lines.compactMap { try? JSONDecoder().decode(Export.self, from: Data($0)) }
    let refused = made.stdout.split(separator: "\n").filter { $0.contains("\"refused\"") }
    #expect(refused.isEmpty, "PyTorch's exporters refused: \(refused.joined(separator: "\n"))")

    // The whole plan was exported: every model with both exporters at every opset.
    let models = Set(exports.map(\.model))
    #expect(models.count >= 19, "\(models.sorted())")
    for model in models {
      var expected = Set(Self.plan.flatMap { exporter, opsets in opsets.map { "\(exporter)-\($0)" } })
      for (exporter, variant) in Self.variants where variant.models.contains(model) { expected.insert("\(exporter)-\(variant.opset)") }
      let got = Set(exports.filter { $0.model == model }.map { "\($0.exporter)-\($0.opset)" })
      #expect(got == expected, "\(model): exported \(got.sorted()), planned \(expected.sorted())")
    }

    var checks: [String] = []
    var failures: [String] = []
    for export in exports {
      let expected = export.file.replacingOccurrences(of: ".onnx", with: ".safetensors")
      let tensors = try readTensors(expected)
      let input = try #require(tensors["input"])
      let output = try #require(tensors["output"])
      let bytes = [UInt8](try #require(FileManager.default.contents(atPath: export.file)))
      let imported: SessionBundle
      switch Result(catching: { () throws(InterchangeError) in try ONNXImport.session(from: bytes, file: export.file, name: export.model) })
      {
      case .success(let made): imported = made.bundle
      case .failure(let error):
        failures.append("\(PathText.lastComponent(export.file)): \(error)")
        continue
      }
      // The input keeps the model's shape (a flatten is a layer, not a change of input).
      #expect(imported.spec.model.input == Array(input.shape.dropFirst()), "\(export.file)")
      // SpecBench's own forward pass predicts what PyTorch does.
      let ours = try predictions(imported, Tensor(shape: input.shape, scalars: input.scalars), folder: folder)
      #expect(ours.shape == output.shape)
      if !isClose(ours.scalars, output.scalars) {
        failures.append(
          "\(PathText.lastComponent(export.file)): SpecBench's predictions differ from PyTorch's by \(maxDifference(ours.scalars, output.scalars))"
        )
      }
      // Exported again: onnxruntime predicts the same (checked below, all files in one run).
      let (again, _) = try ONNXExport.export(spec: imported.spec, state: try imported.trainingState())
      let path = export.file.replacingOccurrences(of: ".onnx", with: ".again.onnx")
      try Data(again).write(to: URL(fileURLWithPath: path))
      checks += [path, expected]
    }
    #expect(failures.isEmpty, "\(failures.count) of \(exports.count) files:\n\(failures.joined(separator: "\n"))")

    let checked = try TorchONNXPeer.run(script, ["--check"] + checks)
    #expect(checked.status == 0, "\(checked.stderr)")
    let results = checked.stdout.split(separator: "\n").compactMap { try? JSONDecoder().decode(Check.self, from: Data($0.utf8)) }
    #expect(results.count == checks.count / 2)
    for result in results {
      #expect(
        result.close == true && (result.max_rel ?? 1) <= 1e-5,
        "\(PathText.lastComponent(result.file)) in onnxruntime: \(result.max_abs ?? .nan) from PyTorch's (\(result.max_rel ?? .nan) of the largest output)"
      )
    }
    let worst = results.compactMap(\.max_rel).max() ?? .nan
    print("ONNX zoo: \(exports.count) files from \(models.count) models, worst round trip \(worst) of the largest output")
  }

  /// numpy.isclose(rtol: 1e-5, atol: 1e-6) for every value.
  func isClose(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - Double($1)) <= 1e-6 + 1e-5 * abs(Double($1)) }
  }

  func maxDifference(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
  }
}
