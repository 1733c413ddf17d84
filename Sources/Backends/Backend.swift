import Datasets
import SpecKit
import TensorCore

/// A compute engine: turns a spec and a state into a trainer. Backends share the spec's meaning
/// and differ only in how they compute.
public protocol Backend: Sendable {
  /// The name used in specs and on the command line (`reference`).
  var name: String { get }
  /// One line for `specbench backends`.
  var summary: String { get }
  /// What it can train; anything else is refused before training.
  var capabilities: Capabilities { get }
  /// Why it cannot run on this machine (a library it needs is missing), or nil when it can.
  var unavailableReason: String? { get }
  /// Its settings (`devices=2`), in the order `backend NAME KEY=VALUE…` takes them.
  var options: [BackendOption] { get }

  /// This backend with `options` set (`backend jax devices=2`).
  ///
  /// - Throws: `BackendError.invalidOptions` for an option it does not take or a bad value.
  func configured(_ options: [BackendOption]) throws(BackendError) -> any Backend

  /// A trainer for `spec` starting from `state`, training on `data.train`.
  ///
  /// - Throws: `BackendError.unsupported` naming every field this backend cannot do by its JSON
  ///   path, or `.invalidState` when the state does not belong to the spec.
  func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer
}

/// A model being trained: it owns its parameters, optimizer slots, batches and generators, and
/// is driven from one thread at a time.
///
/// The runner drives it in chunks: `train(upTo:stopAtEpochEnd:)` says how far the trainer may go
/// and gets back the results of the updates it made, and a failure if one stopped it. An
/// in-process trainer makes one step a call (the default, which loops over `trainStep`); an
/// engine in another process may make many (`stepsPerCall`), and then pause, stop, a swap or a
/// save take effect at the end of its chunk — the next boundary it offers. The observers
/// (`evaluate`, `predict`, `exportState`) may fail too, with `BackendError.engineFailed`
/// naming the backend and the reason.
public protocol Trainer: AnyObject {
  /// Updates made so far.
  var step: Int { get }
  /// Completed epochs.
  var epoch: Int { get }

  /// One update on the next batch.
  ///
  /// - Returns: the batch's loss computed before the update, and the rate used.
  /// - Throws: `BackendError.diverged` when the loss or a gradient is not finite; nothing is
  ///   updated then (parameters, slots, running statistics, batch position and generators stay
  ///   as they were after the previous step). `BackendError.updateDiverged` when the update
  ///   itself made a parameter, slot or buffer non-finite: the trainer's state is then *not* the
  ///   previous step's, and the caller must not use it (`TrainingRun` rebuilds the last finite
  ///   state from its checkpoint).
  func trainStep() throws(BackendError) -> StepResult

  /// Updates until the state's step is `limit` (or, with `stopAtEpochEnd`, until a batch ends
  /// an epoch), and returns what each update did; a failure ends the chunk early, after the
  /// updates it lists. A default loops over `trainStep`.
  func train(upTo limit: Int, stopAtEpochEnd: Bool) -> TrainingChunk

  /// How many updates the trainer would like to make in one `train(upTo:)` call: 1 (the
  /// default) for trainers in this process, more for an engine that a request costs time.
  var stepsPerCall: Int { get }

  /// Keeps only the first `count` updates of the last `train(upTo:)` call, as if it had
  /// stopped there: a stop rule (`target_loss`, `converged`) fired inside the chunk, and the
  /// state must be the one a trainer making one step a call would have stopped at. A trainer
  /// whose chunks are one step long never needs it (the default accepts only the whole chunk).
  func keepFirst(_ count: Int, of chunk: TrainingChunk) throws(BackendError)

  /// Mean loss and accuracy over a part of the data in evaluation mode (dropout off, batch_norm
  /// on its running statistics), or nil when that part is empty (no validation split). Changes
  /// nothing.
  func evaluate(_ part: DataPart) throws(BackendError) -> Evaluation?

  /// The model's outputs for `inputs` (`[N, sample shape…]`) in evaluation mode.
  func predict(_ inputs: Tensor) throws(BackendError) -> Tensor

  /// The state, in the format's names, to save or to hand to another backend; with
  /// `parametersOnly`, the parameters and buffers alone (what plots need), without the
  /// optimizer's slots.
  func exportState(parametersOnly: Bool) throws(BackendError) -> TrainingState

  /// The L2 norm of every parameter's gradient in the last successful step, by tensor name;
  /// empty before this trainer's first step.
  func gradientNorms() -> [String: Float]

  /// Seconds the engine spent compiling when it was made, for those that compile (jax); nil
  /// for the others.
  var compileSeconds: Double? { get }
}

/// One `KEY=VALUE` setting of a backend.
public struct BackendOption: Hashable, Sendable {
  public var key: String
  public var value: String
  public init(key: String, value: String) { (self.key, self.value) = (key, value) }
}

/// The part of a session's data to evaluate on.
public enum DataPart: String, Sendable {
  case train, validation
}

/// What one `train(upTo:stopAtEpochEnd:)` call did: the updates made, in order, and the
/// failure that ended it early (the state is then the last listed update's, except after
/// `.updateDiverged` and `.engineFailed`, where the runner rebuilds it).
public struct TrainingChunk: Sendable {
  public var results: [StepResult]
  public var failure: BackendError?

  public init(results: [StepResult] = [], failure: BackendError? = nil) {
    (self.results, self.failure) = (results, failure)
  }
}

extension Trainer {
  public var stepsPerCall: Int { 1 }
  public var compileSeconds: Double? { nil }

  public func keepFirst(_ count: Int, of chunk: TrainingChunk) throws(BackendError) {
    precondition(count == chunk.results.count, "a trainer of one step a call cannot go back over part of its chunk")
  }

  public func train(upTo limit: Int, stopAtEpochEnd: Bool) -> TrainingChunk {
    var chunk = TrainingChunk()
    while step < limit {
      do {
        let result = try trainStep()
        chunk.results.append(result)
        if stopAtEpochEnd && result.endedEpoch { break }
      } catch {
        chunk.failure = error
        break
      }
    }
    return chunk
  }

  /// The complete state (parameters, buffers, slots, counters, generator positions).
  public func exportState() throws(BackendError) -> TrainingState { try exportState(parametersOnly: false) }
}

/// The L2 norm of `values`, summed in double precision.
public func l2Norm(_ values: some Collection<Float>) -> Float {
  Float(values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
}

/// What one update did.
public struct StepResult: Hashable, Sendable {
  /// The update's number (the state's `step` after it), from 1.
  public var step: Int
  /// The batch's loss, computed before the update.
  public var loss: Float
  /// The scheduled learning rate the update used.
  public var learningRate: Double
  /// The batch's accuracy (class targets) and MAE (regression losses) before the update; nil
  /// when the loss has none, or when the trainer does not measure them.
  public var measures: BatchMeasures
  /// True when this batch was the last of an epoch.
  public var endedEpoch: Bool
  /// What an iterating rule (L-BFGS) did in this step; nil for the elementwise rules.
  public var optimizer: OptimizerReport?

  public init(
    step: Int, loss: Float, learningRate: Double, endedEpoch: Bool, measures: BatchMeasures = BatchMeasures(),
    optimizer: OptimizerReport? = nil
  ) {
    (self.step, self.loss, self.learningRate, self.endedEpoch, self.measures, self.optimizer) = (
      step, loss, learningRate, endedEpoch, measures, optimizer
    )
  }
}

/// Loss and, for class targets, accuracy over a dataset; for a regression loss (mse, huber) the
/// mean absolute error and R² (docs/spec-format.md, "history").
public struct Evaluation: Hashable, Sendable {
  public var loss: Float
  /// Fraction of samples classified correctly; nil for value targets.
  public var accuracy: Double?
  /// Mean of |y − t| over every output; nil unless the loss is a regression loss.
  public var meanAbsoluteError: Double?
  /// R² averaged over the outputs whose target varies; nil unless the loss is a regression loss
  /// and some target varies.
  public var r2: Double?

  public init(loss: Float, accuracy: Double?, meanAbsoluteError: Double? = nil, r2: Double? = nil) {
    (self.loss, self.accuracy, self.meanAbsoluteError, self.r2) = (loss, accuracy, meanAbsoluteError, r2)
  }

  /// An evaluation that failed or had nothing to evaluate.
  public static let none = Evaluation(loss: .nan, accuracy: nil)
}

/// Why a backend refused or stopped.
public enum BackendError: Error, Hashable, Sendable, CustomStringConvertible {
  /// Fields of the spec this backend cannot do, each by its JSON path.
  case unsupported(backend: String, [SpecIssue])
  /// The state does not fit the spec.
  case invalidState([String])
  /// The loss or a gradient became non-finite at `step`; the state is the previous step's.
  case diverged(step: Int, loss: Float, reason: String)
  /// Update `step` made the state non-finite; the trainer's state is spoilt (see `trainStep`).
  case updateDiverged(step: Int, loss: Float, reason: String)

  /// Update `step` made `tensor`, or its optimizer state, non-finite.
  static func nonFiniteUpdate(step: Int, loss: Float, tensor: String) -> BackendError {
    .updateDiverged(step: step, loss: loss, reason: "the update made \(tensor) (or its optimizer state) not finite")
  }
  /// No backend of that name.
  case unknownBackend(name: String, known: [String])
  /// The backend cannot run on this machine (a library it needs is missing): why, and what to do.
  case unavailable(backend: String, reason: String)
  /// The engine failed while it trained or was asked something (its process died, it stopped
  /// answering): which backend, and why.
  case engineFailed(backend: String, reason: String)
  /// A setting the backend does not take, or a bad value for one.
  case invalidOptions(backend: String, reason: String)

  public var description: String {
    switch self {
    case .unsupported(let backend, let issues):
      return "the \(backend) backend cannot train this session:\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    case .invalidState(let problems):
      return "the state does not match the session:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    case .diverged(let step, _, let reason), .updateDiverged(let step, _, let reason):
      return "training diverged at step \(step): \(reason); the state is kept from step \(step - 1)"
    case .unknownBackend(let name, let known):
      return "no backend named \"\(name)\"; backends: \(known.joined(separator: ", "))"
        + (Suggestion.nearest(to: name, in: known).map { " (did you mean \"\($0)\"?)" } ?? "")
    case .unavailable(_, let reason):
      return reason
    case .engineFailed(let backend, let reason):
      return "the \(backend) backend failed: \(reason)"
    case .invalidOptions(let backend, let reason):
      return "backend \(backend): \(reason)"
    }
  }
}

extension Backend {
  public var unavailableReason: String? { nil }
  public var options: [BackendOption] { [] }

  /// The name with the settings that differ from the defaults (`jax devices=2`).
  public var label: String { ([name] + options.map { "\($0.key)=\($0.value)" }).joined(separator: " ") }

  public func configured(_ options: [BackendOption]) throws(BackendError) -> any Backend {
    guard let first = options.first else { return self }
    throw .invalidOptions(backend: name, reason: "no option \(first.key); the \(name) backend takes none")
  }

  /// Refuses what this backend cannot train (every unsupported field by its JSON path) and a
  /// state that does not belong to the spec.
  func check(spec: SessionSpec, state: TrainingState) throws(BackendError) {
    let unsupported = capabilities.unsupported(in: spec)
    guard unsupported.isEmpty else { throw .unsupported(backend: name, unsupported) }
    let problems = spec.stateProblems(state.tensors)
    guard problems.isEmpty else { throw .invalidState(problems) }
  }
}
