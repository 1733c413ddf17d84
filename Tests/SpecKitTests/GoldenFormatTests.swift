import Foundation
import SpecBenchTestSupport
import Testing

@testable import SpecKit

/// Golden files pin the canonical format: a change to how sessions are written shows up here as
/// a diff. Re-record with `SPECBENCH_RECORD_GOLDEN=1 swift test --filter GoldenFormat` and review
/// the diff before committing.
@Suite("Golden format files")
struct GoldenFormatTests {
  static let goldenFolder = repositoryPath("Tests/SpecKitTests/Golden")
  static let recording = ProcessInfo.processInfo.environment["SPECBENCH_RECORD_GOLDEN"] == "1"
  static let exampleNames = ["blobs", "circles", "digits-cnn", "digits-mlp", "iris", "moons", "sine", "sine-lbfgs", "spirals", "xor"]

  func compare(_ text: String, golden name: String) throws {
    let path = "\(Self.goldenFolder)/\(name)"
    if Self.recording {
      try text.write(toFile: path, atomically: true, encoding: .utf8)
      return
    }
    let expected = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text == expected, "\(name) differs from its golden file; re-record with SPECBENCH_RECORD_GOLDEN=1 if the change is intended")
  }

  @Test(arguments: exampleNames)
  func exampleSessionsHaveTheirCanonicalForm(name: String) throws {
    let spec = try SessionFile.load(repositoryPath("sessions/\(name).json")).spec
    try compare(spec.canonicalText, golden: "\(name).json")
  }

  @Test func everyTypeOfTheFormatHasItsCanonicalForm() throws {
    try compare(Self.completeSpec.canonicalText, golden: "complete.json")
  }

  @Test(arguments: exampleNames)
  func saveLoadSaveIsByteIdentical(name: String) throws {
    let first = try SessionFile.load(repositoryPath("sessions/\(name).json")).spec.canonicalText
    let second = try SessionSpec.decode(Array(first.utf8)).canonicalText
    #expect(first == second)
  }

  /// `lbfgs` written canonically: every field, `max_eval` and `line_search` as null when unset
  /// (so `max_eval` follows `max_iter` as PyTorch's None does), and read back the same.
  @Test func lbfgsHasItsCanonicalForm() throws {
    let defaults = OptimizerSpec.lbfgs(.init())
    #expect(
      JSONWriter.compact(defaults.json)
        == #"{"type": "lbfgs", "lr": 1.0, "max_iter": 20, "max_eval": null, "tolerance_grad": 1e-07, "tolerance_change": 1e-09, "history_size": 100, "line_search": null}"#
    )
    var spec = Self.completeSpec
    for optimizer in [defaults, .lbfgs(.init(lr: 0.5, maxIter: 7, maxEval: 9, historySize: 3, lineSearch: .strongWolfe))] {
      spec.optimizer = optimizer
      #expect(try SessionSpec.decode(Array(spec.canonicalText.utf8)).optimizer == optimizer)
    }
    #expect(OptimizerSpec.LBFGS(maxIter: 20).evaluationBudget == 25 && OptimizerSpec.LBFGS(maxIter: 1).evaluationBudget == 1)
    #expect(OptimizerSpec.LBFGS(maxIter: 3).evaluationBudget == 3 && OptimizerSpec.LBFGS(maxEval: 40).evaluationBudget == 40)
  }

  /// The complete session with a Laplace posterior in place of its variational layers.
  static let posteriorSpec: SessionSpec = {
    var spec = completeSpec
    spec.model.variational = nil
    spec.posterior = PosteriorSpec(
      subset: .all, hessian: .kron, priorPrecision: 0.5, priorTuning: .marglik, noiseSigma: 0.3, predictive: .mc, samples: 50, step: 40,
      dataCount: 48)
    return spec
  }()

  @Test func aPosteriorHasItsCanonicalForm() throws {
    try compare(Self.posteriorSpec.canonicalText, golden: "complete-posterior.json")
    let back = try SessionSpec.decode(Array(Self.posteriorSpec.canonicalText.utf8))
    #expect(back == Self.posteriorSpec)
  }

  @Test func completeSpecRoundTrips() throws {
    let text = Self.completeSpec.canonicalText
    let back = try SessionSpec.decode(Array(text.utf8))
    #expect(back == Self.completeSpec)
    #expect(back.canonicalText == text)
  }

  @Test func canonicalTextIsSortedTwoSpaceJSONThatPythonReadsTheSame() throws {
    let text = Self.completeSpec.canonicalText
    #expect(text.hasPrefix("{\n  \"backend\": \"fast\",\n  \"data\": {\n    \"centers\": 3,"))
    #expect(text.hasSuffix("}\n"))
  }

  @Test(.enabled(if: PythonPeer.isAvailable, "python3 with numpy and safetensors is not installed: skipped"))
  func pythonReadsTheCanonicalTextAsTheSameData() throws {
    let text = Self.completeSpec.canonicalText
    // Python's json reads it, and re-dumping with sort_keys gives the same data.
    let script = """
      import json, sys
      a = json.loads(sys.argv[1])
      assert list(a.keys()) == sorted(a.keys()), "keys are not sorted"
      print(json.dumps(a, sort_keys=True))
      """
    let result = try PythonPeer.run(script, [text])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(JSONWriter.canonical(try JSONParser.parse(result.stdout)) == text)
  }

  /// A session using every layer type, activation, initializer, a non-default of most fields,
  /// state and history (as the spec file holds it: events and the metrics file's reference).
  static let completeSpec: SessionSpec = {
    let layers: [LayerSpec] = [
      LayerSpec(name: "flat", kind: .flatten),
      LayerSpec(name: "img", kind: .reshape(shape: [2, 1, -1])),
      LayerSpec(
        name: "c1",
        kind: .conv2d(
          Conv2DLayer(
            filters: 4, kernel: Pair(1), padding: .same, groups: 2, activation: .relu,
            initializer: DenseInit(weight: .heUniform, bias: .constant(value: 0.01))))),
      LayerSpec(name: "mp", kind: .maxPool2d(PoolLayer(kernel: Pair(1)))),
      LayerSpec(name: "ap", kind: .avgPool2d(PoolLayer(kernel: Pair(1, 1), stride: Pair(1), padding: Pair(0)))),
      LayerSpec(
        name: "c2", kind: .conv2d(Conv2DLayer(filters: 2, kernel: Pair(1), stride: Pair(2), dilation: Pair(2, 1), useBias: false))),
      LayerSpec(name: "gap", kind: .globalAvgPool),
      LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-3, momentum: 0.2)),
      LayerSpec(
        name: "d1",
        kind: .dense(
          DenseLayer(
            units: 6, activation: .leakyReLU(alpha: 0.2), useBias: true,
            initializer: DenseInit(weight: .uniform(low: -0.5, high: 0.5), bias: .constant(value: 0.1))))),
      LayerSpec(
        name: "d2",
        kind: .dense(
          DenseLayer(units: 6, activation: .gelu, useBias: false, initializer: DenseInit(weight: .normal(mean: 0, std: 0.02), bias: .zeros))
        )),
      LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-6)),
      LayerSpec(name: "drop", kind: .dropout(rate: 0.25)),
      LayerSpec(name: "a1", kind: .activation(function: .silu)),
      LayerSpec(name: "d3", kind: .dense(DenseLayer(units: 6, activation: .elu, initializer: DenseInit(weight: .heNormal, bias: .ones)))),
      LayerSpec(
        name: "d4", kind: .dense(DenseLayer(units: 6, activation: .softplus, initializer: DenseInit(weight: .heUniform, bias: .zeros)))),
      LayerSpec(
        name: "d5", kind: .dense(DenseLayer(units: 6, activation: .tanh, initializer: DenseInit(weight: .lecunNormal, bias: .zeros)))),
      LayerSpec(
        name: "d6", kind: .dense(DenseLayer(units: 6, activation: .sigmoid, initializer: DenseInit(weight: .glorotNormal, bias: .zeros)))),
      LayerSpec(name: "a2", kind: .activation(function: .relu)),
      LayerSpec(name: "a3", kind: .activation(function: .identity)),
      LayerSpec(name: "out", kind: .dense(DenseLayer(units: 3))),
      LayerSpec(name: "a4", kind: .activation(function: .softmax)),
    ]
    return SessionSpec(
      name: "complete",
      model: ModelSpec(
        input: [2], layers: layers,
        variational: VariationalSpec(
          layers: ["d3", "out"], prior: .scaleMixture(pi: 0.25, sigma1: 1.5, sigma2: 0.002), klWeight: 0.001, rhoInit: -4, trainSamples: 2,
          predictSamples: 16)),
      loss: .mse,
      optimizer: .adamw(.init(lr: 0.002, beta1: 0.85, beta2: 0.995, eps: 1e-7, weightDecay: 0.02, amsgrad: true)),
      schedule: .warmupCosine(warmupSteps: 10, tMax: 100, etaMin: 1e-5),
      data: DataSpec(
        source: .blobs(samples: 60, centers: 3, features: 2, std: 0.5, seed: 18_446_744_073_709_551_615), validationFraction: 0.2),
      training: TrainingSpec(
        batchSize: 8, shuffle: false, seed: 12_345_678_901_234_567_890,
        stop: [
          .maxSteps(steps: 100), .maxEpochs(epochs: 9), .timeLimit(seconds: 2.5), .targetLoss(value: 0.01),
          .converged(tol: 1e-6, patience: 20), .earlyStopping(patience: 5, minDelta: 0.001),
        ],
        record: RecordSpec(every: 2, histogramsEvery: 0)),
      backend: "fast",
      state: StateSpec(
        step: 40, epoch: 5, tensors: "complete.safetensors", sha256: String(repeating: "ab", count: 32),
        epochOrderSeed: 18_446_744_073_709_551_615, index: 16, dropoutRNG: 42),
      journal: ["new complete --input 2", "add flatten"],
      history: HistorySpec(
        events: [
          HistoryEvent(step: 3, kind: "optimizer", detail: "adam -> adamw"),
          HistoryEvent(step: 4, kind: "backend", detail: "reference -> fast"),
        ],
        metrics: MetricsRecord(
          file: "complete.history.safetensors", sha256: String(repeating: "cd", count: 32), points: [.trainLoss: 2, .valLoss: 1])))
  }()
}

@Suite("Codable bridge")
struct CodableBridgeTests {
  @Test func jsonDecoderAndEncoderRoundTripThroughTheStrictReader() throws {
    let spec = GoldenFormatTests.completeSpec
    let data = try JSONEncoder().encode(spec)
    #expect(try JSONDecoder().decode(SessionSpec.self, from: data) == spec)
  }

  @Test func jsonDecoderReportsEveryProblem() throws {
    let text = baseSessionText.replacingOccurrences(of: "\"units\": 8", with: "\"units\": -8").replacingOccurrences(
      of: "\"lr\": 0.01", with: "\"lr\": 0")
    do {
      _ = try JSONDecoder().decode(SessionSpec.self, from: Data(text.utf8))
      Issue.record("expected an error")
    } catch let DecodingError.dataCorrupted(context) {
      #expect(context.debugDescription.contains("model.layers[0].units: must be a positive integer, got -8"))
      #expect(context.debugDescription.contains("optimizer.lr: must be a number > 0, got 0"))
    }
  }
}
