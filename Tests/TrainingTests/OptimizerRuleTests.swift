import Datasets
import Foundation
import SpecKit
import Synchronization
import TensorCore
import Testing

@testable import Backends

/// What a probing rule saw, for the test to read.
final class ProbeRecord: @unchecked Sendable {
  /// Each step's losses, one per evaluation.
  var losses: [[Float]] = []
  /// When set, the next step changes the parameters and then evaluates at a point where the
  /// loss overflows.
  var failNextStep = false
}

/// A rule that is not elementwise: each step it evaluates its objective three times — at the
/// parameters, at a trial point half an SGD step along the gradient, and at the parameters
/// again — then makes plain SGD's update from the first gradient (with `OptimizerMath`, so its
/// bits are `ElementwiseRule(.sgd)`'s). It keeps whole-model state: how many evaluations it made
/// (a scalar) and the last gradient, flattened across every parameter.
struct ProbeRule: OptimizerRule {
  let lr: Double
  let record: ProbeRecord

  var elementwise: OptimizerSpec? { nil }

  func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor] {
    [
      OptimizerStateTensor(key: .optimizer("evaluations"), shape: []),
      OptimizerStateTensor(key: .optimizer("direction"), shape: [parameters.reduce(0) { $0 + $1.shape.reduce(1, *) }]),
    ]
  }

  func update(
    parameters: inout [String: Tensor], state: inout [String: StoredTensor], objective: Objective, context: UpdateContext
  ) throws(BackendError) -> UpdateOutcome {
    let names = parameters.keys.sorted()
    let (loss, gradients) = try objective(parameters)
    var losses = [loss]
    var trial = parameters
    for name in names {
      trial[name]!.scalars = zip(parameters[name]!.scalars, gradients[name]!.scalars).map { $0 - Float(lr / 2) * $1 }
    }
    losses.append(try objective(trial).loss)
    losses.append(try objective(parameters).loss)
    record.losses.append(losses)
    var none: [String: [Float]] = [:]
    for name in names {
      OptimizerMath.update(
        .sgd(.init(lr: lr)), param: &parameters[name]!.scalars, grad: gradients[name]!.scalars, slots: &none, step: context.step,
        learningRate: context.learningRate)
    }
    state[StateKey.optimizer("evaluations").name]!.scalars[0] += 3
    state[StateKey.optimizer("direction").name]!.scalars = names.flatMap { gradients[$0]!.scalars }
    if record.failNextStep {
      // The parameters are changed; this evaluation overflows: the trainer must undo the step.
      let huge = parameters.mapValues { Tensor(shape: $0.shape, scalars: $0.scalars.map { $0 * 1e30 }) }
      _ = try objective(huge)
    }
    return UpdateOutcome(loss: loss)
  }
}

@Suite("Optimizer rules at whole-model granularity")
struct OptimizerRuleTests {
  /// A model with dropout and batch_norm, so that re-running the forward pass could redraw masks
  /// or move the running statistics; plain SGD.
  static let spec = makeSpec(
    layers: [
      dense("d1", 16, .relu), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)),
      LayerSpec(name: "drop", kind: .dropout(rate: 0.3)), dense("d2", 3),
    ], optimizer: .sgd(.init(lr: 0.05)), batchSize: 8)

  func trainers(record: ProbeRecord) throws -> (probe: ReferenceTrainer, plain: ReferenceTrainer) {
    let rule = ProbeRule(lr: 0.05, record: record)
    let base = try Self.spec.initialTrainingState()
    var state = base
    state.tensors = try Self.spec.initialTensors(optimizer: rule)
    let data = try DatasetLoader.load(Self.spec.data, relativeTo: "")
    let probe = try ReferenceTrainer(spec: Self.spec, state: state, train: data, kernels: PlainKernels(), rule: rule)
    return (probe, try makeTrainer(Self.spec, state: base))
  }

  func bits(_ tensors: [String: StoredTensor]) -> [String: [UInt32]] { tensors.mapValues { $0.scalars.map(\.bitPattern) } }

  /// The model's tensors (no optimizer state) of an exported state.
  func model(_ state: TrainingState) -> [String: StoredTensor] { state.tensors.filter { StateKey(name: $0.key)?.isOptimizerState != true } }

  @Test func aRuleThatEvaluatesThreeTimesAStepSeesFixedMasksAndCommitsStatisticsOnce() throws {
    let record = ProbeRecord()
    let (probe, plain) = try trainers(record: record)
    for step in 1...12 {
      let a = try probe.trainStep()
      let b = try plain.trainStep()
      #expect(probe.evaluations == 3)
      // The step's loss is the first evaluation's, the same as one evaluation gives.
      #expect(a.loss.bitPattern == b.loss.bitPattern, "step \(step)")
      let losses = record.losses.last!
      // The same parameters give the same loss: the dropout masks and the batch are the step's.
      #expect(losses[2].bitPattern == losses[0].bitPattern, "step \(step): \(losses)")
      #expect(losses[1] != losses[0], "the trial point is another point")
    }
    // Masks drawn once a step, statistics committed once (from the first evaluation), the same
    // SGD arithmetic: every parameter and batch_norm's running statistics have the bits of a
    // trainer that evaluates once, and so does the dropout generator.
    let probeState = try probe.exportState(parametersOnly: false)
    let plainState = try plain.exportState(parametersOnly: false)
    let sameModel = bits(model(probeState)) == bits(model(plainState))
    #expect(sameModel, "the parameters or buffers differ from a trainer that evaluates once")
    #expect(probeState.dropoutRNG == plainState.dropoutRNG)
    #expect(probeState.step == 12 && probeState.optimizerSteps == 12)
    // The rule's own state spans the model: a scalar and a vector over every parameter.
    let evaluations = try #require(probeState.tensors[StateKey.optimizer("evaluations")])
    #expect(evaluations.shape == [] && evaluations.scalars == [36])
    let total = Self.spec.model.parameterCount
    #expect(probeState.tensors[StateKey.optimizer("direction")]?.shape == [total])
    #expect(StateKey(name: "opt/model/direction") == .optimizer("direction"))
    // The layout the rule declares is the one loading checks; the spec's own optimizer (SGD)
    // has no such tensors.
    let rule = ProbeRule(lr: 0.05, record: record)
    #expect(Self.spec.stateProblems(probeState.tensors, optimizer: rule).isEmpty)
    #expect(Self.spec.stateProblems(probeState.tensors).contains { $0.contains("unexpected tensor opt/model/evaluations") })
    let layout = try Self.spec.stateLayout(optimizer: rule)
    #expect(layout.suffix(2).map(\.name) == ["opt/model/evaluations", "opt/model/direction"])
    #expect(layout.suffix(2).allSatisfy { if case .optimizerState = $0.kind { true } else { false } })
  }

  @Test func aRuleThatFailsAfterChangingThingsLeavesTheStepAsItWas() throws {
    let record = ProbeRecord()
    let (probe, plain) = try trainers(record: record)
    for _ in 1...3 {
      _ = try probe.trainStep()
      _ = try plain.trainStep()
    }
    let before = try probe.exportState(parametersOnly: false)
    record.failNextStep = true
    do {
      _ = try probe.trainStep()
      Issue.record("expected the step to fail")
    } catch {
      guard case .diverged(let step, _, let reason) = error else {
        Issue.record("wrong error \(error)")
        return
      }
      #expect(step == 4)
      #expect(reason.contains("the loss is") || reason.contains("is not finite"), "\(reason)")
    }
    // Parameters, the rule's state, buffers, counters and generators are the step's start.
    let after = try probe.exportState(parametersOnly: false)
    let unchanged = bits(after.tensors) == bits(before.tensors)
    #expect(unchanged, "the failed step changed the state")
    #expect(after.step == 3 && after.dropoutRNG == before.dropoutRNG && after.index == before.index)
    // And the step made again is the step a trainer that never failed makes.
    record.failNextStep = false
    let again = try probe.trainStep()
    let reference = try plain.trainStep()
    #expect(again.loss.bitPattern == reference.loss.bitPattern)
    let same = bits(model(try probe.exportState(parametersOnly: false))) == bits(model(try plain.exportState(parametersOnly: false)))
    #expect(same, "the step made again differs from a trainer that never failed")
  }

  /// fast runs such a rule in its own buffers: the same losses as reference, the step's masks
  /// at every evaluation (the first and third losses equal), batch_norm's statistics committed
  /// once (the buffers equal reference's), a failure in the middle undone.
  @Test func fastTrainsARuleThatIsNotElementwiseInItsOwnBuffers() throws {
    let record = ProbeRecord()
    let rule = ProbeRule(lr: 0.05, record: record)
    var state = try Self.spec.initialTrainingState()
    let data = try DatasetLoader.load(Self.spec.data, relativeTo: "")
    let split = DataSplit(data, validationFraction: 0, seed: Self.spec.training.seed)
    #expect(try FastBackend().makeTrainer(spec: Self.spec, state: state, data: split) is FastTrainer)
    state.tensors = try Self.spec.initialTensors(optimizer: rule)
    let fast = try FastBackend().makeTrainer(spec: Self.spec, state: state, data: split, rule: rule)
    #expect(fast is FastTrainer)
    let (probe, _) = try trainers(record: ProbeRecord())
    for _ in 1...8 {
      let a = try fast.trainStep()
      let b = try probe.trainStep()
      #expect(abs(a.loss - b.loss) <= 1e-4 * max(1, abs(b.loss)), "\(a.loss) vs \(b.loss)")
    }
    #expect(record.losses.count == 8 && record.losses.allSatisfy { $0[0].bitPattern == $0[2].bitPattern })
    let (x, y) = (try fast.exportState(), try probe.exportState())
    #expect(Set(x.tensors.keys) == Set(y.tensors.keys))
    for name in ["buffer/bn.running_mean", "buffer/bn.running_var", "opt/model/direction"] {
      for (a, b) in zip(x.tensors[name]!.scalars, y.tensors[name]!.scalars) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b)), "\(name)") }
    }
    #expect(x.tensors["opt/model/evaluations"] == y.tensors["opt/model/evaluations"])
    // A failure after changes: fast puts the step's start back, as reference does.
    let before = try fast.exportState()
    record.failNextStep = true
    #expect(throws: BackendError.self) { try fast.trainStep() }
    #expect(try fast.exportState() == before)
  }

  @Test func theBuiltInRulesAreElementwiseAndDeclareTheirSlots() {
    for optimizer: OptimizerSpec in [
      .sgd(.init(lr: 0.1, momentum: 0.9)), .adam(.init(weightDecay: 0, amsgrad: true)), .adamw(.init(weightDecay: 0.01)),
      .rmsprop(.init(momentum: 0.5, centered: true)),
      .adagrad(.init(initialAccumulatorValue: 0.25)),
    ] {
      let rule = OptimizerRules.rule(for: optimizer)
      #expect(rule.elementwise == optimizer)
      let declared = rule.stateTensors(for: [ParameterShape(name: "d.weight", shape: [2, 3])])
      #expect(declared.map { $0.key } == optimizer.slots.map { StateKey.slot(parameter: "d.weight", $0.slot) })
      #expect(declared.allSatisfy { $0.shape == [2, 3] })
      #expect(declared.map { $0.initialValue } == optimizer.slots.map { $0.initialValue })
    }
  }
}
