import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends

/// The framed conversation with the jax worker (docs/jax.md), and every fault SpecBench must
/// survive: the real worker, started as SpecBench starts it.
@Suite("The engine process and its protocol", .enabled(if: PlainPython.isAvailable, "python3 is not installed: skipped"))
struct EngineProcessTests {
  static func worker(testing: Bool = true) throws -> EngineProcess {
    let python = try #require(PlainPython.interpreter, "python3 is required")
    return try EngineProcess(
      executable: python, arguments: [repositoryPath("engines/jax/worker.py")],
      environment: ["SPECBENCH_ENGINE_TEST": testing ? "1" : "0"])
  }

  static func op(_ name: String, _ members: [JSONObject.Member] = []) -> JSONValue {
    .object([.init(key: "op", value: .string(name))] + members)
  }

  @Test func helloEchoAndExit() throws {
    let worker = try Self.worker()
    let hello = try worker.request(Self.op("hello"), timeout: .seconds(60))
    #expect(hello.header.objectValue?["ok"] == .bool(true) && hello.header.objectValue?["protocol"]?.numberValue?.int == 1)
    // 16 MiB each way: many short reads and partial writes on a 64 KiB pipe.
    var generator = SplitMix64(state: 9)
    let payload = (0..<(16 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    let echo = try worker.request(Self.op("echo"), payload: payload, timeout: .seconds(60))
    #expect(echo.payload == payload && echo.header.objectValue?["bytes"]?.numberValue?.int == 16 << 20)
    let unknown = try worker.request(Self.op("trian"), timeout: .seconds(10))
    #expect(unknown.header.objectValue?["error"]?.stringValue == "unknown op \"trian\"")
    #expect(try worker.request(Self.op("exit"), timeout: .seconds(10)).header.objectValue?["ok"] == .bool(true))
  }

  /// A print to fd 1 and a megabyte on standard error: the frames stay clean and nothing blocks.
  @Test func noiseNeverBlocksNorCorruptsTheStream() throws {
    let worker = try Self.worker()
    let reply = try worker.request(Self.op("noise", [.init(key: "bytes", value: .int(1 << 20))]), timeout: .seconds(30))
    #expect(reply.header.objectValue?["ok"] == .bool(true))
    #expect(try worker.request(Self.op("echo"), payload: [1, 2, 3], timeout: .seconds(10)).payload == [1, 2, 3])
    waitUntil { worker.standardError.contains("native code writing to fd 1 reaches standard error too") }
    #expect(worker.standardError.contains("a print to fd 1 goes to standard error"))
    #expect(worker.standardError.utf8.count <= EngineProcess.stderrKept)
  }

  @Test func aWorkerThatDiesIsReportedWithItsStatus() throws {
    let worker = try Self.worker()
    #expect {
      try worker.request(Self.op("crash"), timeout: .seconds(30))
    } throws: { error in
      guard let failure = error as? EngineProcess.Failure, case .exited(let how, _) = failure else { return false }
      return how == "exited with status 7"
    }
    // Killed from outside between requests: the next request says so, and nothing traps on EPIPE.
    let other = try Self.worker()
    _ = try other.request(Self.op("echo"), timeout: .seconds(30))
    kill(other.processIdentifier, SIGKILL)
    #expect {
      try other.request(Self.op("echo"), payload: [UInt8](repeating: 7, count: 1 << 20), timeout: .seconds(30))
    } throws: { error in
      "\(error)" == "the engine was killed by signal 9"
    }
  }

  @Test func aWorkerThatHangsIsStoppedAtTheDeadline() throws {
    let worker = try Self.worker()
    let start = ContinuousClock.now
    #expect {
      try worker.request(Self.op("hang"), timeout: .milliseconds(500))
    } throws: { error in
      "\(error)".hasPrefix("the engine did not answer within 0.5 s and was stopped")
    }
    let waited = ContinuousClock.now - start
    #expect(waited < .seconds(10), "stopped soon after the deadline, not at some later time: \(waited)")
  }

  @Test func garbageOnTheStreamIsNotAFrame() throws {
    let worker = try Self.worker()
    #expect {
      try worker.request(Self.op("garbage"), timeout: .seconds(30))
    } throws: { error in
      "\(error)".hasPrefix("the engine wrote something that is not a frame (expected the magic SBJ1, got \"this\")")
    }
  }

  /// With the jax that setup installs, `hello` names its version and this machine's device.
  @Test(.enabled(if: JaxPython.isAvailable, "jax is not installed: skipped"))
  func helloNamesJaxAndItsDevices() throws {
    let python = try #require(JaxPython.interpreter, "python3 with jax is required (scripts/setup.sh installs it)")
    let worker = try EngineProcess(executable: python, arguments: [repositoryPath("engines/jax/worker.py")])
    let hello = try worker.request(Self.op("hello"), timeout: .seconds(120))
    let header = try #require(hello.header.objectValue)
    #expect(header["jax"]?.stringValue == "0.10.2", "\(hello.header)")
    #expect(header["devices"]?.arrayValue?.first?.stringValue == "cpu:0", "\(hello.header)")
  }

  /// The largest difference (relative above 1) between the worker's outputs for `spec`'s model
  /// at `state` and the reference backend's, on `inputs`.
  static func predictionGap(_ worker: EngineProcess, _ spec: SessionSpec, _ state: TrainingState, _ inputs: Tensor) throws -> Float {
    let data = try DataSplit.of(spec, relativeTo: "").split
    let expected = try ReferenceBackend().makeTrainer(spec: spec, state: state, data: data).predict(inputs)
    var tensors = state.tensors.filter { $0.key.hasPrefix("param/") || $0.key.hasPrefix("buffer/") }
    tensors["input"] = inputs
    let reply = try worker.request(
      .object([.init(key: "op", value: .string("predict")), .init(key: "model", value: spec.model.json)]),
      payload: SafeTensors.encode(SafeTensors.Contents(tensors: tensors)), timeout: .seconds(120))
    guard reply.header.objectValue?["ok"] == .bool(true), let output = try SafeTensors.decode(reply.payload).tensors["output"],
      output.shape == expected.shape
    else { throw TestFailure("predict failed: \(reply.header)") }
    return zip(output.scalars, expected.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
  }

  static func jaxWorker() throws -> EngineProcess {
    let python = try #require(JaxPython.interpreter, "python3 with jax is required (scripts/setup.sh installs it)")
    return try EngineProcess(executable: python, arguments: [repositoryPath("engines/jax/worker.py")])
  }

  /// The worker's model, written in jax.numpy from the format's rules, gives the reference
  /// backend's outputs for a model with every layer type and activation (complete.json), with
  /// batch_norm's running statistics away from their starting values.
  @Test(.enabled(if: JaxPython.isAvailable, "jax is not installed: skipped"))
  func predictAgreesWithTheReferenceOnEveryLayerType() throws {
    let worker = try Self.jaxWorker()
    var spec = try SessionSpec.decode(
      try JSONParser.parse(String(contentsOfFile: repositoryPath("Tests/SpecKitTests/Golden/complete.json"), encoding: .utf8)))
    spec.state = nil
    var state = try spec.initialTrainingState()
    state.tensors["buffer/bn.running_mean"] = StoredTensor(shape: [2], scalars: [0.3, -0.7])
    state.tensors["buffer/bn.running_var"] = StoredTensor(shape: [2], scalars: [1.9, 0.4])
    var generator = SplitMix64(state: 5)
    let inputs = Tensor(shape: [64, 2], scalars: (0..<128).map { _ in (generator.nextUniform() - 0.5) * 6 })
    let gap = try Self.predictionGap(worker, spec, state, inputs)
    #expect(gap <= 1e-5, "largest difference \(gap)")
    // A layer it cannot run is named, and the worker goes on.
    let bad = try worker.request(
      .object([
        .init(key: "op", value: .string("predict")),
        .init(
          key: "model",
          value: .object(["input": .array([.int(2)]), "layers": .array([.object(["type": .string("conv3d"), "name": .string("c")])])])),
      ]), payload: SafeTensors.encode(SafeTensors.Contents(tensors: ["input": inputs])), timeout: .seconds(60))
    #expect(bad.header.objectValue?["error"]?.stringValue == "predict: model.layers[0].type: the jax worker cannot run a 'conv3d' layer")
  }

  /// Each activation over a wide range of inputs (pre-activations to about ±30: softplus's
  /// threshold, sigmoid's saturation, gelu's exact erf form), through a dense layer.
  @Test(.enabled(if: JaxPython.isAvailable, "jax is not installed: skipped"))
  func predictAgreesWithTheReferenceOnEveryActivation() throws {
    let worker = try Self.jaxWorker()
    let activations: [Activation] = [.identity, .relu, .leakyReLU(alpha: 0.2), .sigmoid, .tanh, .gelu, .silu, .softplus, .elu, .softmax]
    for function in activations {
      let wide = LayerSpec(
        name: "d1",
        kind: .dense(
          DenseLayer(
            units: 16, activation: function, initializer: DenseInit(weight: .uniform(low: -8, high: 8), bias: .uniform(low: -2, high: 2)))))
      let spec = makeSpec(input: [1], layers: [wide, dense("d2", 1)], loss: .mse, data: .sine(samples: 20, noise: 0, seed: 1))
      var generator = SplitMix64(state: 6)
      let inputs = Tensor(shape: [64, 1], scalars: (0..<64).map { _ in (generator.nextUniform() - 0.5) * 6 })
      let gap = try Self.predictionGap(worker, spec, try spec.initialTrainingState(), inputs)
      #expect(gap <= 1e-5, "\(function.name): largest difference \(gap)")
    }
  }

  /// The batch's loss in training mode and every parameter's gradient, from the worker's
  /// jax.value_and_grad over the spec's model and loss, against the reference backend's
  /// hand-written backward pass: each loss, with batch_norm on the batch's statistics and
  /// layer_norm on the way.
  @Test(
    .enabled(if: JaxPython.isAvailable, "jax is not installed: skipped"),
    arguments: [
      (LossSpec.softmaxCrossEntropy, DataSource.spirals(samples: 60, classes: 3, noise: 0.1, seed: 1), 3),
      (.sigmoidBinaryCrossEntropy, .moons(samples: 60, noise: 0.1, seed: 2), 1),
      (.mse, .sine(samples: 60, noise: 0.05, seed: 3), 1),
      (.huber(delta: 0.3), .sine(samples: 60, noise: 0.05, seed: 4), 1),
      (.mse, .blobs(samples: 60, centers: 3, features: 2, std: 1, seed: 5), 3),
    ])
  func gradientsAgreeWithTheReference(loss: LossSpec, data source: DataSource, outputs: Int) throws {
    let worker = try Self.jaxWorker()
    let input = try #require(source.knownShape).input
    let layers = [
      dense("d1", 16, .tanh), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)),
      LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-5)), dense("d2", 8, .gelu), dense("d3", outputs),
    ]
    let spec = makeSpec(input: input, layers: layers, loss: loss, data: source)
    let trainer = try makeTrainer(spec)
    let batch = trainer.train.subset(Array(0..<32))
    var pass: ReferenceTrainer.StepPass? = ReferenceTrainer.StepPass()
    let expected = trainer.lossAndGradients(batch.inputs.materialized(), batch.targets, parameters: trainer.parameters, pass: &pass)

    var contents = SafeTensors.Contents(tensors: ["input": batch.inputs.materialized()])
    for (name, tensor) in trainer.parameters { contents.tensors["param/" + name] = tensor }
    switch batch.targets {
    case .classes(let labels): contents.integers["target"] = StoredIntegers(shape: [labels.count], values: labels.map(Int64.init))
    case .values(let values): contents.tensors["target"] = values
    }
    let reply = try worker.request(
      .object([
        .init(key: "op", value: .string("gradients")), .init(key: "model", value: spec.model.json),
        .init(key: "loss", value: spec.loss.json),
      ]), payload: SafeTensors.encode(contents), timeout: .seconds(120))
    let header = try #require(reply.header.objectValue)
    #expect(header["ok"] == .bool(true), "\(reply.header)")
    let value = try #require(header["loss"]?.numberValue?.double)
    #expect(abs(Float(value) - expected.loss) <= 1e-5 * max(1, abs(expected.loss)), "loss \(value) vs \(expected.loss)")
    let gradients = try SafeTensors.decode(reply.payload).tensors
    #expect(Set(gradients.keys) == Set(expected.gradients.keys.map { "grad/" + $0 }))
    for (name, tensor) in expected.gradients {
      let got = try #require(gradients["grad/" + name])
      let scale = max(1e-3, tensor.scalars.map(abs).max() ?? 0)
      let worst = zip(got.scalars, tensor.scalars).map { abs($0 - $1) }.max() ?? .infinity
      #expect(got.shape == tensor.shape && worst <= 1e-4 * scale, "\(loss.name) \(name): \(worst) against a largest value of \(scale)")
    }
  }

  /// The five rules in jax.numpy, PyTorch's order of arithmetic, against SpecBench's own
  /// (`OptimizerMath`, which the optimizer tests check against PyTorch): twelve updates of 37
  /// values (more than a lane of eight, and a tail) under every optimizer setting the optimizer
  /// tests use, with the rate changing between updates.
  @Test(.enabled(if: JaxPython.isAvailable, "jax is not installed: skipped"))
  func optimizerRulesAgreeWithOptimizerMath() throws {
    let worker = try Self.jaxWorker()
    for optimizer in OptimizerTests.cases {
      var generator = SplitMix64(state: 11)
      func values() -> [Float] { (0..<37).map { _ in generator.nextNormal() } }
      var ours = values()
      var theirs = ours
      var slots: [String: [Float]] = [:]
      for slot in optimizer.slots { slots[slot.slot.rawValue] = [Float](repeating: slot.initialValue, count: 37) }
      var theirSlots = slots
      var worst: Float = 0
      for k in 1...12 {
        let grad = values()
        let lr = optimizer.learningRate * (1 + 0.1 * Double(k % 3))
        OptimizerMath.update(optimizer, param: &ours, grad: grad, slots: &slots, step: k, learningRate: lr)
        var contents = SafeTensors.Contents(tensors: [
          "param/w": StoredTensor(shape: [37], scalars: theirs), "grad/w": StoredTensor(shape: [37], scalars: grad),
        ])
        for (slot, value) in theirSlots { contents.tensors["opt/w/\(slot)"] = StoredTensor(shape: [37], scalars: value) }
        let reply = try worker.request(
          .object([
            .init(key: "op", value: .string("update")), .init(key: "optimizer", value: optimizer.json), .init(key: "step", value: .int(k)),
            .init(key: "lr", value: .double(lr)),
          ]), payload: SafeTensors.encode(contents), timeout: .seconds(60))
        #expect(reply.header.objectValue?["ok"] == .bool(true), "\(optimizer.summary): \(reply.header)")
        let result = try SafeTensors.decode(reply.payload).tensors
        theirs = try #require(result["param/w"]).scalars
        for slot in theirSlots.keys { theirSlots[slot] = try #require(result["opt/w/\(slot)"], "\(slot)").scalars }
        worst = max(worst, zip(ours, theirs).map { abs($0 - $1) / max(1, abs($0)) }.max()!)
      }
      // Bit for bit for sgd, rmsprop and adagrad; adam within an ulp or two (XLA divides its own way).
      #expect(worst <= 1e-7, "\(optimizer.summary): largest difference after 12 updates \(worst)")
    }
  }

  /// The worker's data order (engines/jax/specdata.py: SplitMix64, FNV-1a, Fisher–Yates, the
  /// epoch seeds) takes the batches SpecBench's own sampler takes: from a training seed (the
  /// extremes included) with and without shuffling, and from a saved position mid-epoch; the
  /// position it ends at is the sampler's.
  @Test(arguments: [(UInt64(0), true), (UInt64.max, true), (42, false), (7, true)])
  func batchesFollowTheFormatsDataOrder(trainingSeed: UInt64, shuffle: Bool) throws {
    let worker = try Self.worker(testing: false)
    let midEpoch = trainingSeed == 7
    var sampler = EpochSampler(
      sampleCount: 37, batchSize: 8, shuffle: shuffle,
      epochOrderSeed: midEpoch ? 0xfeed_beef_dead_cafe : SeedStreams.initialEpochOrderSeed(trainingSeed: trainingSeed),
      index: midEpoch ? 13 : 0, epoch: midEpoch ? 2 : 0)
    var header: [JSONObject.Member] = [
      .init(key: "op", value: .string("batches")), .init(key: "count", value: .int(37)), .init(key: "batch_size", value: .int(8)),
      .init(key: "shuffle", value: .bool(shuffle)), .init(key: "steps", value: .int(60)),
    ]
    if midEpoch {
      header += [
        .init(key: "epoch_order_seed", value: .string(String(UInt64(0xfeed_beef_dead_cafe)))), .init(key: "index", value: .int(13)),
        .init(key: "epoch", value: .int(2)),
      ]
    } else {
      header.append(.init(key: "training_seed", value: .string(String(trainingSeed))))
    }
    let reply = try worker.request(.object(header), timeout: .seconds(30))
    #expect(reply.header.objectValue?["ok"] == .bool(true), "\(reply.header)")
    let arrays = try SafeTensors.decode(reply.payload, integers: true).integers
    let (indices, sizes, ended) = (try #require(arrays["indices"]), try #require(arrays["sizes"]), try #require(arrays["ended"]))
    var expected: (indices: [Int64], sizes: [Int64], ended: [Int64]) = ([], [], [])
    for _ in 0..<60 {
      let batch = sampler.nextBatch()
      expected.indices += batch.map(Int64.init)
      expected.sizes.append(Int64(batch.count))
      expected.ended.append(sampler.isAtEpochStart ? 1 : 0)
    }
    #expect(indices.values == expected.indices && sizes.values == expected.sizes && ended.values == expected.ended)
    let position = try #require(reply.header.objectValue?["position"]?.objectValue)
    #expect(position["epoch_order_seed"]?.stringValue == String(sampler.epochOrderSeed))
    #expect(position["index"]?.numberValue?.int == sampler.index && position["epoch"]?.numberValue?.int == sampler.epoch)
  }

  /// The worker's own tests (engines/jax/test_protocol.py), run here so that CI runs them.
  @Test func theWorkersOwnTestsPass() throws {
    let python = try #require(PlainPython.interpreter, "python3 is required")
    let result = try runProcess(python, ["-m", "unittest", "-q"], currentDirectory: repositoryPath("engines/jax"))
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stderr.contains("Ran 8 tests") && result.stderr.contains("OK"), "\(result.stderr)")
  }

  /// A reply that declares more than the memory allows is refused before anything is allocated
  /// (the limit set low for the test), and a stopped worker takes no more requests.
  @Test func aHugeDeclaredPayloadIsRefusedBeforeAllocating() throws {
    let python = try #require(PlainPython.interpreter, "python3 is required")
    let worker = try EngineProcess(
      executable: python, arguments: [repositoryPath("engines/jax/worker.py")], environment: ["SPECBENCH_ENGINE_TEST": "1"])
    #expect {
      try worker.request(Self.op("huge"), timeout: .seconds(30))
    } throws: { error in
      "\(error)".hasPrefix("the engine wrote something that is not a frame (a payload of 549755813888 bytes, more than the memory limit")
    }
    #expect {
      try worker.request(Self.op("echo"), timeout: .seconds(30))
    } throws: { error in
      "\(error)".hasPrefix("the engine was stopped after an earlier failure; start a new one")
    }
  }

  @Test func aProgramThatCannotStartSaysSo() {
    #expect {
      try EngineProcess(executable: "/nonexistent/python3", arguments: [])
    } throws: { error in
      "\(error)".hasPrefix("the engine could not be started: /nonexistent/python3")
    }
  }
}

/// Polls `condition` for up to 10 seconds.
private func waitUntil(_ condition: () -> Bool) {
  let deadline = Date().addingTimeInterval(10)
  while !condition() && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
}
