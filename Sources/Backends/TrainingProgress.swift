import Datasets
import SpecKit

/// What every trainer keeps besides its tensors — the epoch's sample order, the dropout
/// generator, the update counts — and how a step that fails is undone. One implementation, so
/// that every backend counts, samples and rolls back the same way (exact resume and the
/// divergence replay depend on it).
struct TrainingProgress {
  /// The positions of the generators before a step, to come back to when it fails.
  struct Mark {
    fileprivate let sampler: EpochSampler
    fileprivate let dropout: SplitMix64
  }

  private(set) var sampler: EpochSampler
  /// The dropout generator; a step's forward pass draws its masks from it.
  var dropout: SplitMix64
  /// Updates made so far (the state's `step`).
  private(set) var step: Int
  /// The optimizer's own update count (hot-swaps may restart it).
  private(set) var optimizerSteps: Int
  /// State kept under `engine/…` names: carried through to every export.
  let engineState: [String: StoredTensor]

  var epoch: Int { sampler.epoch }

  /// The progress a state records, for `sampleCount` training samples in batches of the spec's size.
  init(spec: SessionSpec, state: TrainingState, sampleCount: Int) {
    sampler = EpochSampler(
      sampleCount: sampleCount, batchSize: spec.training.batchSize, shuffle: spec.training.shuffle,
      epochOrderSeed: state.epochOrderSeed, index: state.index, epoch: state.epoch)
    dropout = SplitMix64(state: state.dropoutRNG)
    step = state.step
    optimizerSteps = state.optimizerSteps
    engineState = state.tensors.filter { StateKey(name: $0.key)?.engineBackend != nil }
  }

  /// Where the generators are now.
  func mark() -> Mark { Mark(sampler: sampler, dropout: dropout) }

  /// Puts the generators back where `mark` found them (a failed step).
  mutating func restore(_ mark: Mark) { (sampler, dropout) = (mark.sampler, mark.dropout) }

  /// The next batch's sample indices, and whether it ends an epoch.
  mutating func nextBatch() -> (indices: ArraySlice<Int>, endsEpoch: Bool) {
    let batch = sampler.nextBatch()
    return (batch, sampler.isAtEpochStart)
  }

  /// The update `t` about to be made: the state's step and the optimizer's count, each plus one.
  var nextUpdate: (step: Int, optimizerStep: Int) { (step + 1, optimizerSteps + 1) }

  /// Counts a successful update.
  mutating func commit() {
    step += 1
    optimizerSteps += 1
  }

  /// The state with these counters and generators, and `tensors` (plus the `engine/…` state
  /// the trainer was given, which the built-in trainers keep as it is).
  func state(tensors: [String: StoredTensor]) -> TrainingState {
    let tensors = tensors.merging(engineState) { own, _ in own }
    return TrainingState(
      step: step, epoch: sampler.epoch, epochOrderSeed: sampler.epochOrderSeed, index: sampler.index, dropoutRNG: dropout.state,
      optimizerSteps: optimizerSteps, tensors: tensors)
  }
}
