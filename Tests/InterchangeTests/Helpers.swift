import Backends
import Datasets
import Foundation
import Interchange
import Session
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

/// A session trained a few steps on the reference backend, from an example file.
func trainedExample(_ name: String, steps: Int = 30) throws -> (bundle: SessionBundle, run: TrainingRun) {
  let path = repositoryPath("sessions/\(name).json")
  let run = try TrainingRun(bundle: try SessionFile.load(path), folder: repositoryPath("sessions"), backend: ReferenceBackend())
  run.run(extraSteps: steps)
  return (run.bundle, run)
}

/// A digits session of `layers` (a JSON array) trained 10 steps on the fast backend.
func trainedImageSession(layers: String) throws -> SessionBundle {
  let text = """
    {"format": "specbench/session", "version": 6, "name": "images", "model": {"input": [1, 8, 8], "layers": \(layers)},
     "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "adam", "lr": 0.01},
     "data": {"type": "builtin", "name": "digits"}, "training": {"batch_size": 64}}
    """
  let run = try TrainingRun(bundle: SessionBundle(spec: try SessionSpec.decode(Array(text.utf8))), folder: "", backend: FastBackend())
  run.run(extraSteps: 10)
  return run.bundle
}

/// Seeded normal inputs `[count, sample…]`.
func randomInputs(_ sample: [Int], count: Int, seed: UInt64) -> Tensor {
  var generator = SplitMix64(seed: seed, stream: "interchange-inputs")
  let total = count * sample.reduce(1, *)
  return Tensor(shape: [count] + sample, scalars: (0..<total).map { _ in Float(generator.nextNormal()) })
}

/// The model's outputs for `inputs`, through a reference trainer built from the bundle's state
/// (evaluation mode). The trainer is given one zero sample as data, so that a session whose
/// data is a placeholder can still predict.
func predictions(_ bundle: SessionBundle, _ inputs: Tensor, folder: String) throws -> Tensor {
  let sample = bundle.spec.model.input
  let width = ((try? bundle.spec.model.layerShapes()) ?? []).last?.outputShape.last ?? 1
  let data = Dataset(
    inputs: Tensor(shape: [1] + sample, repeating: 0), targets: .values(Tensor(shape: [1, width], repeating: 0)),
    shape: DataShape(input: sample, target: .values(width: width)))
  let trainer = try ReferenceBackend().makeTrainer(
    spec: bundle.spec, state: try bundle.trainingState(), data: DataSplit(data, validationFraction: 0, seed: 0))
  return try trainer.predict(inputs)
}

/// A session imported back predicts `expected` for `inputs`, bit for bit.
func expectSamePredictions(_ imported: SessionBundle, _ inputs: Tensor, _ expected: Tensor, folder: String, name: String) throws {
  let back = try predictions(imported, inputs, folder: folder)
  #expect(back.shape == expected.shape)
  #expect(back.scalars.map(\.bitPattern) == expected.scalars.map(\.bitPattern), "the round trip changed \(name)'s predictions")
}

/// Whether two outputs agree within `tolerance`, relative to the larger of 1 and the value.
func agree(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5) -> Bool {
  a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
}

/// Writes tensors as safetensors, for the Python side.
func writeTensors(_ tensors: [String: Tensor], to path: String) throws {
  let stored = tensors.mapValues { StoredTensor(shape: $0.shape, scalars: $0.scalars) }
  try AtomicFile.write(SafeTensors.encode(SafeTensors.Contents(tensors: stored)), to: path)
}

func readTensors(_ path: String) throws -> [String: StoredTensor] {
  try SafeTensors.decode([UInt8](FileManager.default.contents(atPath: path) ?? Data())).tensors
}

/// Runs an ONNX file in onnxruntime on the tensor `input` of a safetensors file; writes `output`.
let runInOnnxRuntime = """
  import sys, numpy as np, onnxruntime as ort
  from safetensors.numpy import load_file, save_file
  model, inputs, outputs = sys.argv[1:4]
  session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
  x = load_file(inputs)["input"]
  name = session.get_inputs()[0].name
  y = session.run(None, {name: x})[0]
  save_file({"output": np.ascontiguousarray(y.astype(np.float32))}, outputs)
  """

/// A CSV classification session with `normalize` and a validation split, trained 150 steps in
/// `folder`: two features on very different scales (100…1000 and 0…1); the class is which side
/// of a line a row falls. Returns the spec, the trained session, the raw rows and the file's lines.
func normalisedCSVSession(in folder: String) throws -> (spec: SessionSpec, bundle: SessionBundle, raw: [Float], lines: [String]) {
  var generator = SplitMix64(seed: 11, stream: "csv-rows")
  var lines = ["size,ratio,kind"]
  var raw: [Float] = []
  for _ in 0..<120 {
    let size = Float(generator.nextUniform() * 900 + 100), ratio = Float(generator.nextUniform())
    raw += [size, ratio]
    lines.append("\(size),\(ratio),\((size - 100) / 900 + ratio > 1 ? "large" : "small")")
  }
  try (lines.joined(separator: "\n") + "\n").write(toFile: folder + "/rows.csv", atomically: true, encoding: .utf8)
  var spec = SessionSpec(
    name: "rows",
    model: ModelSpec(
      input: [2],
      layers: [
        LayerSpec(name: "d1", kind: .dense(DenseLayer(units: 8, activation: .tanh))),
        LayerSpec(name: "d2", kind: .dense(DenseLayer(units: 2))),
      ]),
    loss: .softmaxCrossEntropy, optimizer: .adam(.init(lr: 0.05, weightDecay: 0)),
    data: DataSpec(
      source: .csv(.init(path: "rows.csv", target: .name("kind"), task: .classification, normalize: true)), validationFraction: 0.25))
  spec.training.batchSize = 16
  let run = try TrainingRun(bundle: SessionBundle(spec: spec), folder: folder, backend: ReferenceBackend())
  run.run(extraSteps: 150)
  return (spec, run.bundle, raw, lines)
}
