import Datasets
import SpecKit
import TensorCore

/// The same spec semantics as `reference`, computed by `FastTrainer`: OpenBLAS's sgemm for the
/// products (vectorised for the CPU it runs on, threaded for large products), fused elementwise
/// passes, no allocation in the step loop. Agrees with `reference` within float rounding.
public struct FastBackend: Backend {
  public init() {}

  public var name: String { "fast" }
  public var summary: String {
    "\(BLASLibrary.description); optimizer rules in \(BLASLibrary.optimizerInstructionSet); fused passes, no allocation per step; "
      + "agrees with reference within float rounding"
  }
  public var capabilities: Capabilities { .everything }
  public var unavailableReason: String? { BLASLibrary.problem }

  public func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
    if let unavailableReason { throw .unavailable(backend: name, reason: unavailableReason) }
    try check(spec: spec, state: state)
    return try makeTrainer(spec: spec, state: state, data: data, rule: OptimizerRules.rule(for: spec.optimizer))
  }

  /// `FastTrainer`: for an elementwise rule its fused passes and vector kernels are the rule's
  /// arithmetic; any other rule (one that evaluates its objective several times, or keeps
  /// whole-model state: L-BFGS) gets an objective over the same buffers.
  func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit, rule: any OptimizerRule) throws(BackendError) -> any Trainer {
    try FastTrainer(
      spec: spec, state: state, train: data.train, validation: data.validation, rule: rule.elementwise == spec.optimizer ? nil : rule)
  }
}
