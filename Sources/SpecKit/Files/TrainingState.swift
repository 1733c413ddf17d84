/// Everything a trainer needs to continue exactly where another left off, in backend-agnostic
/// form: counters, generator positions and every state tensor by its file name.
public struct TrainingState: Hashable, Sendable {
  /// Updates made so far.
  public var step: Int
  /// Completed epochs.
  public var epoch: Int
  /// The seed of the current epoch's sample order.
  public var epochOrderSeed: UInt64
  /// Samples of the current epoch already used.
  public var index: Int
  /// The dropout generator's SplitMix64 state.
  public var dropoutRNG: UInt64
  /// Updates the current optimizer has made (its `t`): equal to `step` unless the optimizer was
  /// changed during training, when it restarts with fresh slots.
  public var optimizerSteps: Int
  /// `param/…`, `buffer/…` and `opt/…/SLOT` tensors.
  public var tensors: [String: StoredTensor]

  public init(
    step: Int, epoch: Int, epochOrderSeed: UInt64, index: Int, dropoutRNG: UInt64, optimizerSteps: Int, tensors: [String: StoredTensor]
  ) {
    (self.step, self.epoch, self.epochOrderSeed, self.index) = (step, epoch, epochOrderSeed, index)
    (self.dropoutRNG, self.optimizerSteps, self.tensors) = (dropoutRNG, optimizerSteps, tensors)
  }

  /// The record that goes into the spec's `state` (file name and hash are set when saved).
  public var record: StateSpec {
    StateSpec(step: step, epoch: epoch, tensors: "", sha256: "", epochOrderSeed: epochOrderSeed, index: index, dropoutRNG: dropoutRNG)
  }
}

extension SessionSpec {
  /// The state before any training: seeded initial tensors, counters at 0.
  public func initialTrainingState() throws(SpecError) -> TrainingState {
    let record = initialStateRecord()
    return TrainingState(
      step: 0, epoch: 0, epochOrderSeed: record.epochOrderSeed, index: 0, dropoutRNG: record.dropoutRNG, optimizerSteps: 0,
      tensors: try initialTensors())
  }
}

extension SessionBundle {
  /// The key in the safetensors header's `__metadata__` that holds `optimizerSteps`.
  public static let optimizerStepsKey = "optimizer_steps"

  /// A bundle holding `state`: the spec's `state` record is set from it.
  public init(spec: SessionSpec, state: TrainingState) {
    var spec = spec
    var record = state.record
    if let old = spec.state {
      record.tensors = old.tensors
      record.sha256 = old.sha256
    }
    spec.state = record
    self.init(spec: spec, tensors: state.tensors, optimizerSteps: state.optimizerSteps)
  }

  /// The state to continue from: the saved one, or the seeded initial one.
  public func trainingState() throws(SpecError) -> TrainingState {
    guard let record = spec.state, let tensors else { return try spec.initialTrainingState() }
    return TrainingState(
      step: record.step, epoch: record.epoch, epochOrderSeed: record.epochOrderSeed, index: record.index, dropoutRNG: record.dropoutRNG,
      optimizerSteps: optimizerSteps ?? record.step, tensors: tensors)
  }
}

extension TrainingState {
  /// The state with its layers renamed (`renames`: old layer name → new): every parameter,
  /// buffer and optimizer slot of a renamed layer (`dense2.weight`, `opt/dense2.weight/exp_avg`)
  /// under the new name. Whole-model and backend-private tensors are as they were.
  public func renamingLayers(_ renames: [String: String]) -> TrainingState {
    guard !renames.isEmpty else { return self }
    func renamed(_ tensor: String) -> String {
      guard let dot = tensor.firstIndex(of: "."), let layer = renames[String(tensor[..<dot])] else { return tensor }
      return layer + tensor[dot...]
    }
    var result = self
    result.tensors = [:]
    for (name, value) in tensors {
      let key: StateKey? =
        switch StateKey(name: name) {
        case .parameter(let tensor)?: .parameter(renamed(tensor))
        case .buffer(let tensor)?: .buffer(renamed(tensor))
        case .slot(let parameter, let slot)?: .slot(parameter: renamed(parameter), slot)
        default: nil
        }
      result.tensors[key?.name ?? name] = value
    }
    return result
  }
}
