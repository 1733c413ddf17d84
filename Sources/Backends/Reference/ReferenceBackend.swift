import Datasets
import SpecKit
import TensorCore

/// The oracle: every layer, loss and optimizer of the format, computed with TensorCore's plain
/// loops on one core. Other backends are tested against it.
public struct ReferenceBackend: Backend {
  public init() {}

  public var name: String { "reference" }
  public var summary: String { "plain, readable loops on one core; the oracle every other backend is tested against" }
  public var capabilities: Capabilities { .everything }

  public func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
    try check(spec: spec, state: state)
    return try ReferenceTrainer(spec: spec, state: state, train: data.train, validation: data.validation, kernels: PlainKernels())
  }
}
