import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends
@testable import Session

/// Trains `spec` (or continues `bundle`) for `steps` steps on `backend`.
func train(_ bundle: SessionBundle, steps: Int, on backend: any Backend = ReferenceBackend()) throws -> (SessionBundle, RunSummary) {
  let run = try TrainingRun(bundle: bundle, folder: "", backend: backend)
  let summary = run.run(extraSteps: steps)
  return (run.bundle, summary)
}

@Suite("Exact resume and divergence")
struct ResumeTests {
  /// A model with every source of state: dropout (generator), batch_norm (buffers), slots.
  static func spec(_ optimizer: OptimizerSpec) -> SessionSpec {
    makeSpec(
      layers: [
        dense("d1", 8, .relu), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)),
        LayerSpec(name: "drop", kind: .dropout(rate: 0.25)), LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-5)), dense("d2", 3),
      ], optimizer: optimizer, schedule: .cosine(tMax: 20, etaMin: 0.001), validationFraction: 0.2)
  }

  @Test(arguments: OptimizerTests.cases, testedBackends)
  func trainSaveLoadTrainEqualsTrainingStraight(optimizer: OptimizerSpec, backendName: String) throws {
    try trainSaveLoadTrain(optimizer: optimizer, backendName: backendName)
  }

  /// L-BFGS on the backends that run it, over the same model (dropout masks fixed within a
  /// step, batch_norm's statistics committed once, a validation split, a schedule).
  @Test(arguments: LBFGSTests.cases, ["reference", "fast"])
  func lbfgsTrainSaveLoadTrainEqualsTrainingStraight(optimizer: OptimizerSpec, backendName: String) throws {
    try trainSaveLoadTrain(optimizer: optimizer, backendName: backendName)
  }

  /// Every image layer (conv2d with its options, both pools, batch_norm on images, the global
  /// pool, reshape) with dropout and Adam: bit for bit after a save and a load, on each backend.
  @Test(arguments: testedBackends)
  func imageLayersResumeExactly(backendName: String) throws {
    let spec = makeSpec(
      input: [48],
      layers: [
        reshape("image", [3, 4, 4]), conv("c1", 6, padding: .same, groups: 3, .relu),
        LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)), maxPool("p1", Pair(2), stride: Pair(1), padding: Pair(1)),
        conv("c2", 4, kernel: Pair(2, 2), stride: Pair(2, 1), dilation: Pair(1, 2), .tanh), avgPool("p2", Pair(2), stride: Pair(1)),
        LayerSpec(name: "drop", kind: .dropout(rate: 0.2)), LayerSpec(name: "gap", kind: .globalAvgPool), dense("d", 3),
      ], optimizer: .adam(.init(lr: 0.01, weightDecay: 0)), data: imageData, validationFraction: 0.2)
    try trainSaveLoadTrain(spec: spec, label: "image layers", backendName: backendName)
  }

  func trainSaveLoadTrain(optimizer: OptimizerSpec, backendName: String) throws {
    try trainSaveLoadTrain(spec: Self.spec(optimizer), label: "\(optimizer)", backendName: backendName)
  }

  func trainSaveLoadTrain(spec: SessionSpec, label: String, backendName: String) throws {
    let backend = try BackendRegistry.builtIn.named(backendName)
    let (straight, _) = try train(SessionBundle(spec: spec), steps: 17, on: backend)
    let (half, _) = try train(SessionBundle(spec: spec), steps: 7, on: backend)
    let folder = temporaryFolder()
    try SessionFile.save(half, to: folder + "/half")
    let loaded = try SessionFile.load(folder + "/half.json")
    let (resumed, _) = try train(loaded, steps: 10, on: backend)
    let (a, b) = (try straight.trainingState(), try resumed.trainingState())
    #expect(a.step == 17 && b.step == 17)
    #expect(a.epoch == b.epoch && a.index == b.index && a.epochOrderSeed == b.epochOrderSeed)
    #expect(a.dropoutRNG == b.dropoutRNG && a.optimizerSteps == b.optimizerSteps)
    #expect(Set(a.tensors.keys) == Set(b.tensors.keys))
    for (name, tensor) in a.tensors {
      // Bit for bit: compare bit patterns, so -0.0 vs 0.0 or NaN payloads would show.
      #expect(tensor.scalars.map(\.bitPattern) == b.tensors[name]!.scalars.map(\.bitPattern), "\(label): \(name)")
    }
    // The steps ran over epoch boundaries (24 or 32 training samples, batches of 8).
    #expect(a.epoch >= 4)
  }

  @Test func theLossesAfterResumingAreTheLossesOfTheStraightRun() throws {
    let spec = Self.spec(.adam(.init(lr: 0.01, weightDecay: 0)))
    let (straight, _) = try train(SessionBundle(spec: spec), steps: 12)
    let (half, _) = try train(SessionBundle(spec: spec), steps: 5)
    let (resumed, _) = try train(half, steps: 7)
    #expect(straight.spec.history.trainLoss == resumed.spec.history.trainLoss)
  }

  @Test(arguments: testedBackends)
  func aNonFiniteLossStopsAndKeepsTheLastFiniteState(backendName: String) throws {
    // A learning rate that makes the loss blow up within a few steps; batch_norm's running
    // statistics must come back from the failed step too.
    let spec = makeSpec(
      input: [1],
      layers: [dense("d1", 8, .relu), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)), dense("d2", 1)], loss: .mse,
      optimizer: .sgd(.init(lr: 1e6)), data: .sine(samples: 40, noise: 0, seed: 2))
    let backend = try BackendRegistry.builtIn.named(backendName)
    let (bundle, summary) = try train(SessionBundle(spec: spec), steps: 100, on: backend)
    #expect(summary.reason == .diverged)
    let lastGood = summary.step
    #expect(lastGood >= 1 && lastGood < 100)
    #expect(summary.message.contains("training diverged at step \(lastGood + 1)"))
    #expect(summary.message.contains("the state is kept from step \(lastGood)"))
    let state = try bundle.trainingState()
    #expect(state.step == lastGood)
    #expect(state.tensors.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
    // It is exactly the state of a run that stopped at that step.
    let (reference, _) = try train(SessionBundle(spec: spec), steps: lastGood, on: backend)
    let expected = try reference.trainingState()
    #expect(state.tensors == expected.tensors)
    #expect((state.index, state.epoch, state.epochOrderSeed) == (expected.index, expected.epoch, expected.epochOrderSeed))
    #expect(bundle.spec.history.events.contains { $0.kind == "diverged" && $0.step == lastGood + 1 })
    // And it can be saved: no NaN reaches the file.
    let folder = temporaryFolder()
    try SessionFile.save(bundle, to: folder + "/d")
    #expect(try SessionFile.load(folder + "/d.json").tensors == state.tensors)
  }

  /// `early_stopping` names the best evaluation; with `restore_best` the session goes back to
  /// its exact state (and history), which equals a run stopped at that step.
  @Test(arguments: testedBackends)
  func earlyStoppingRestoresTheBestStateExactly(backendName: String) throws {
    var spec = Self.spec(.adam(.init(lr: 0.01, weightDecay: 0)))
    // Never improves by 100 after the first evaluation: fires at the second (3 steps an epoch).
    spec.training.stop = [.maxSteps(steps: 500), .earlyStopping(patience: 1, minDelta: 100, restoreBest: true)]
    let backend = try BackendRegistry.builtIn.named(backendName)
    let run = try TrainingRun(bundle: SessionBundle(spec: spec), folder: "", backend: backend)
    let summary = run.run()
    #expect(summary.reason == .earlyStopping)
    #expect(summary.message.hasPrefix("stopped by early_stopping at step 6 (best validation loss "), "\(summary.message)")
    #expect(summary.message.hasSuffix("at step 3); restored the state of step 3"), "\(summary.message)")
    #expect(summary.step == 3 && summary.stepsRun == 6)
    let bundle = run.bundle
    #expect(bundle.spec.state?.step == 3)
    #expect(bundle.spec.history.trainLoss.map(\.step) == [1, 2, 3] && bundle.spec.history.valLoss.map(\.step) == [3])
    // Every metric goes back with it: the rates and accuracies too.
    #expect(bundle.spec.history[.learningRate].map(\.step) == [1, 2, 3] && bundle.spec.history[.trainAccuracy].map(\.step) == [1, 2, 3])
    #expect(bundle.spec.history[.valAccuracy].map(\.step) == [3])
    #expect(
      bundle.spec.history.events.contains {
        $0.kind == "restore" && $0.step == 3 && $0.detail.hasPrefix("early_stopping stopped at step 6")
      })
    // The same state as a run that stopped at step 3.
    var three = spec
    three.training.stop = [.maxSteps(steps: 3)]
    let straight = try TrainingRun(bundle: SessionBundle(spec: three), folder: "", backend: backend)
    _ = straight.run()
    let (restored, expected) = (try bundle.trainingState(), try straight.bundle.trainingState())
    #expect(restored.tensors == expected.tensors)
    #expect((restored.index, restored.epoch, restored.dropoutRNG) == (expected.index, expected.epoch, expected.dropoutRNG))
    // Saved and loaded, it continues from step 3 with a history whose steps never decrease.
    let folder = temporaryFolder()
    try SessionFile.save(bundle, to: folder + "/e")
    #expect(try SessionFile.load(folder + "/e.json").spec.state?.step == 3)
    // Without restore_best the message still names the best evaluation, and nothing goes back.
    spec.training.stop = [.maxSteps(steps: 500), .earlyStopping(patience: 1, minDelta: 100)]
    let plain = try TrainingRun(bundle: SessionBundle(spec: spec), folder: "", backend: backend).run()
    #expect(plain.step == 6 && plain.message.hasSuffix("at step 3)"), "\(plain.message)")
  }

  @Test func stopRulesFire() throws {
    var spec = Self.spec(.adam(.init(lr: 0.01, weightDecay: 0)))
    func reason(_ rules: [StopRule]) throws -> (StopReason, Int) {
      spec.training.stop = rules
      let run = try TrainingRun(bundle: SessionBundle(spec: spec), folder: "", backend: ReferenceBackend())
      let summary = run.run()
      return (summary.reason, summary.step)
    }
    #expect(try reason([.maxSteps(steps: 9)]) == (.maxSteps, 9))
    #expect(try reason([.maxEpochs(epochs: 2)]) == (.maxEpochs, 6))  // 24 samples / 8 = 3 steps per epoch
    #expect(try reason([.maxSteps(steps: 500), .targetLoss(value: 100)]) == (.targetLoss, 1))
    #expect(try reason([.maxSteps(steps: 500), .converged(tol: 100, patience: 3)]) == (.converged, 4))
    #expect(try reason([.maxSteps(steps: 500), .earlyStopping(patience: 1, minDelta: 100)]).0 == .earlyStopping)
    #expect(try reason([.maxSteps(steps: 100_000), .timeLimit(seconds: 0.05)]).0 == .timeLimit)
    var stops = 0
    let run = try TrainingRun(bundle: SessionBundle(spec: spec), folder: "", backend: ReferenceBackend())
    #expect(
      run.run(shouldStop: {
        stops += 1
        return stops > 4
      }).reason == .interrupted)
  }

  @Test func historyRecordsEveryNthStepAndValidationAtEpochEnds() throws {
    var spec = Self.spec(.sgd(.init(lr: 0.05)))
    spec.training.record.every = 2
    let (bundle, _) = try train(SessionBundle(spec: spec), steps: 9)
    #expect(bundle.spec.history.trainLoss.map(\.step) == [2, 4, 6, 8])
    #expect(bundle.spec.history.valLoss.map(\.step) == [3, 6, 9])
    #expect(bundle.spec.history.events.last?.kind == "stop")
  }

  @Test func anUnsupportedFeatureIsNamedByItsPath() {
    let limited = Capabilities(
      layers: ["dense"], activations: ["relu", "identity"], losses: ["mse"], optimizers: ["sgd"], schedules: ["constant"])
    let spec = Self.spec(.adam(.init(weightDecay: 0)))
    let paths = limited.unsupported(in: spec).map(\.description)
    #expect(paths.contains("model.layers[1].type: layer type \"batch_norm\" is not supported by this backend"))
    #expect(paths.contains("loss.type: loss \"softmax_cross_entropy\" is not supported by this backend"))
    #expect(paths.contains("optimizer.type: optimizer \"adam\" is not supported by this backend"))
    #expect(paths.contains("schedule.type: schedule \"cosine\" is not supported by this backend"))
    #expect(Capabilities.everything.unsupported(in: spec).isEmpty)
    #expect(ReferenceBackend().capabilities == .everything)
  }
}
