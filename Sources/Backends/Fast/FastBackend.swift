import Datasets
import SpecKit
import TensorCore

/// The same spec semantics as `reference`, with SIMD, cache-friendly matrix products on both
/// cores (`FastKernels`). Agrees with `reference` within float rounding.
public struct FastBackend: Backend {
  public init() {}

  public var name: String { "fast" }
  public var summary: String { "SIMD matrix products on both cores; agrees with reference within float rounding" }
  public var capabilities: Capabilities { .everything }

  public func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
    try sequentialTrainer(spec: spec, state: state, data: data, kernels: BLASKernels())
  }
}
