import Backends
import Datasets
import Foundation
import SpecKit
import TensorCore

/// Why a run ended, as the `done` event's `reason` says it.
public enum StopReason: String, Sendable {
  case maxSteps = "max_steps"
  case maxEpochs = "max_epochs"
  case timeLimit = "time_limit"
  case targetLoss = "target_loss"
  case converged
  case earlyStopping = "early_stopping"
  /// `--steps N` was reached.
  case steps
  case diverged
  case interrupted
  /// The engine failed (its process died, it stopped answering); the state is the last good step's.
  case engineFailed = "engine_failed"
  /// A data file read as training goes (a mapped IDX or `.npy` file) changed; the state is the
  /// last step's, trained on the file as it was.
  case dataChanged = "data_changed"

  /// The kind of the event a front end shows when a run ends this way.
  public var eventKind: EngineEvent.Kind {
    switch self {
    case .diverged: .diverged
    case .engineFailed, .dataChanged: .failed
    default: .stopped
    }
  }
}

/// What a run reports as it goes.
public enum RunEvent: Sendable {
  /// A recorded step: its number, the batch loss before the update, the rate used.
  case step(StepResult)
  /// Validation after an epoch (and at the end of a run).
  case evaluation(step: Int, Evaluation)
  case done(RunSummary)
}

/// How a run ended, with the final losses.
public struct RunSummary: Sendable {
  public var step: Int
  public var stepsRun: Int
  public var reason: StopReason
  /// What happened, for people ("stopped by max_steps at step 3000").
  public var message: String
  public var train: Evaluation
  public var validation: Evaluation?
  public var seconds: Double

  /// `(3000 steps in 1.2 s, 2500 steps/s)`, or "" when nothing ran.
  public var rateText: String {
    guard stepsRun > 0 && seconds > 0 else { return "" }
    let rate = Double(stepsRun) / seconds
    return "(\(stepsRun) steps in \(ProgressLine.significant(seconds)) s, \(Int(rate.rounded())) steps/s)"
  }
}

/// Trains one session from its current state with one backend until a stop rule fires:
/// steps on the trainer, records the history and events into the spec, evaluates the validation
/// split at the end of every epoch. Synchronous and single-threaded: `run` loops on its own;
/// a background worker calls `begin`, then `advance` between its control requests, then `finish`.
public final class TrainingRun {
  /// The spec with the history and events recorded so far.
  public private(set) var spec: SessionSpec
  public private(set) var backend: any Backend
  public private(set) var trainer: any Trainer
  public let data: DataSplit

  /// Receives every recorded step, every evaluation, and the summary.
  public var onEvent: (RunEvent) -> Void = { _ in }

  // What the stop rules remember during one run.
  private var start = 0
  private var extraSteps: Int?
  private let clock = ContinuousClock()
  private var began = ContinuousClock.now
  private var lastRecorded: Float?
  private var calmSteps = 0
  private var bestValidation = Float.infinity
  /// The best evaluation so far, for `early_stopping`: its step and loss, and (with
  /// `restore_best`) the whole state then.
  private var best: (step: Int, loss: Float, state: TrainingState?)?
  /// What the run says when a rule that reports more than its name stopped it.
  private var stopNote: String?
  /// The step the run stopped at, when the state then went back to an earlier one.
  private var stoppedAt: Int?
  private var staleEvaluations = 0
  private var lastEvaluationStep = -1
  private var divergence: String?
  /// A state known to be finite, and when it was taken: an update that overflows spoils the
  /// trainer's state, and the last finite state is rebuilt by replaying from here (training is
  /// deterministic, so the replay gives the same bits). Taken at least every
  /// `checkpointInterval`, so a replay is short and the copies cost nothing measurable.
  private var checkpoint: TrainingState
  private var checkpointTaken = ContinuousClock.now
  /// Set when a spoilt trainer could not be rebuilt: its state is never handed out.
  private var trainerIsSpoilt = false
  static let checkpointInterval = Duration.seconds(2)

  /// Prepares a run: reads the data (relative to `folder`), checks it against the spec, and
  /// builds the backend's trainer from the bundle's state (or the seeded initial state).
  ///
  /// - Parameter recordLoad: add a `load` event when the bundle has state (a run resumed from a
  ///   file); the workbench turns it off, since its state never left memory.
  public init(bundle: SessionBundle, folder: String, backend: any Backend, recordLoad: Bool = true) throws(SessionError) {
    spec = bundle.spec
    self.backend = backend
    let dataset: Dataset
    do { dataset = try DatasetLoader.load(spec.data, relativeTo: folder) } catch { throw .data(error) }
    let mismatches = spec.problems(with: dataset.shape)
    guard mismatches.isEmpty else { throw .dataMismatch(file: nil, mismatches) }
    data = DataSplit(dataset, validationFraction: spec.data.validationFraction, seed: spec.training.seed)
    var state: TrainingState
    do { state = try bundle.trainingState() } catch { throw .spec(error) }
    // A posterior belongs to the weights it was fitted at; training moves them.
    if let posterior = spec.posterior {
      spec.posterior = nil
      state.tensors = state.tensors.filter { StateKey(name: $0.key)?.isPosterior != true }
      spec.history.events.append(
        HistoryEvent(
          step: state.step, kind: "posterior",
          detail: "removed the \(posterior.subset.rawValue) Laplace posterior: training moves the weights it was fitted at"))
    }
    guard state.index <= data.train.count else {
      throw .spec(
        .stateMismatch(
          path: "the session",
          problems: [
            "state.position.index is \(state.index), but an epoch has only \(data.train.count) training samples; the state belongs to other data"
          ]))
    }
    let (given, dropped) = Self.state(state, for: backend)
    do { trainer = try backend.makeTrainer(spec: spec, state: given, data: data) } catch { throw .backend(error) }
    checkpoint = given
    if let event = dropped { spec.history.events.append(event) }
    if recordLoad && bundle.spec.state != nil {
      spec.history.events.append(HistoryEvent(step: state.step, kind: "load", detail: "resumed at step \(state.step) on \(backend.name)"))
    }
  }

  /// The session as it stands: the spec with its history and the trainer's state (the last
  /// checkpoint's, should the engine fail to export it).
  public var bundle: SessionBundle {
    SessionBundle(spec: spec, state: trainerIsSpoilt ? checkpoint : (try? trainer.exportState()) ?? checkpoint)
  }

  /// Seconds since `begin`.
  public var elapsedSeconds: Double { (clock.now - began) / .seconds(1) }

  /// Trains until a stop rule fires (`begin`, `advance` until it answers, `finish`).
  ///
  /// - Parameters:
  ///   - extraSteps: train exactly this many more steps, in place of the `max_steps` and
  ///     `max_epochs` rules (the other rules still apply); nil to follow the rules.
  ///   - shouldStop: asked before each step; true ends the run as `interrupted`.
  ///   - onEvent: every recorded step, every evaluation, and last the summary.
  @discardableResult
  public func run(extraSteps: Int? = nil, shouldStop: () -> Bool = { false }, onEvent: @escaping (RunEvent) -> Void = { _ in })
    -> RunSummary
  {
    self.onEvent = onEvent
    begin(extraSteps: extraSteps)
    while true {
      if shouldStop() { return finish(.interrupted) }
      if let reason = advance() { return finish(reason) }
    }
  }

  /// Starts counting a run: its steps, time and the stop rules' memory.
  public func begin(extraSteps: Int?) {
    start = trainer.step
    self.extraSteps = extraSteps
    began = clock.now
    (lastRecorded, calmSteps, bestValidation, staleEvaluations, lastEvaluationStep, divergence) = (nil, 0, .infinity, 0, -1, nil)
    (best, stopNote, stoppedAt) = (nil, nil, nil)
  }

  /// The step this run will stop at, when a step limit says so.
  public var plannedStep: Int? { Self.plannedStep(spec: spec, from: start, extraSteps: extraSteps) }

  /// The step a run from `start` will stop at: `start + extraSteps`, or the `max_steps` rule.
  public static func plannedStep(spec: SessionSpec, from start: Int, extraSteps: Int?) -> Int? {
    if let extraSteps { return start + extraSteps }
    return spec.training.stop.compactMap { rule -> Int? in
      if case .maxSteps(let n) = rule { return max(n, start) }
      return nil
    }.min()
  }

  /// Checks the limits, asks the trainer for the next chunk of updates (one step for trainers
  /// in this process; as many as the engine takes, up to the limits, for others), records
  /// each, and folds the rules that look at losses over them. Returns why the run must stop, or
  /// nil to go on. A rule that fires inside a chunk stops the run at the update it fired on:
  /// the trainer keeps only the updates up to it (`keepFirst`), so that every backend stops at
  /// the same step with the same state. `atMost` caps the chunk (one update, to measure it).
  public func advance(atMost chunkLimit: Int? = nil) -> StopReason? {
    let rules = spec.training.stop
    var limit = Int.max
    if let extraSteps {
      if trainer.step - start >= extraSteps { return .steps }
      limit = start + extraSteps
    } else {
      for rule in rules {
        switch rule {
        case .maxSteps(let steps) where trainer.step >= steps: return .maxSteps
        case .maxEpochs(let epochs) where trainer.epoch >= epochs: return .maxEpochs
        case .maxSteps(let steps): limit = min(limit, steps)
        default: continue
        }
      }
    }
    for case .timeLimit(let seconds) in rules where elapsedSeconds >= seconds { return .timeLimit }

    // A mapped data file is read as the steps go: one that changed would train on other data
    // (or, cut short, stop the program), so every chunk starts by looking at it.
    if let change = data.fileChange() {
      divergence = change
      spec.history.events.append(HistoryEvent(step: trainer.step, kind: "failed", detail: change))
      return .dataChanged
    }
    if clock.now - checkpointTaken >= Self.checkpointInterval, let state = try? trainer.exportState() {
      checkpoint = state
      checkpointTaken = clock.now
    }
    // Epoch ends are boundaries a chunk stops at when something happens there: a validation,
    // an epoch limit.
    let epochEnds = data.validation != nil || rules.contains { if case .maxEpochs = $0 { true } else { false } }
    // (No overflow, whatever stepsPerCall an engine declares: limit − step ≥ 1 here.)
    let chunk = trainer.train(
      upTo: trainer.step + min(limit - trainer.step, max(1, min(trainer.stepsPerCall, chunkLimit ?? .max))), stopAtEpochEnd: epochEnds)
    for (i, result) in chunk.results.enumerated() {
      guard let reason = record(result, rules: rules) else { continue }
      // A rule that fired inside the chunk: the run stops where a step-by-step run would have.
      if i + 1 < chunk.results.count {
        do { try trainer.keepFirst(i + 1, of: chunk) } catch { return fail(error, lastGood: result.step) }
      }
      return reason
    }
    if let failure = chunk.failure { return fail(failure, lastGood: chunk.results.last?.step ?? trainer.step) }
    return nil
  }

  /// Stops on a failure of the trainer: a divergence keeps (or rebuilds) the last finite state;
  /// an engine that failed is replaced by a trainer rebuilt at the last good step.
  private func fail(_ error: BackendError, lastGood: Int) -> StopReason {
    switch error {
    case .diverged(let step, _, let why):
      spec.history.events.append(HistoryEvent(step: step, kind: "diverged", detail: "\(why); the state is kept from step \(step - 1)"))
      divergence = error.description
      return .diverged
    case .updateDiverged(let step, _, let why):
      let kept = restoreState(at: step - 1)
      spec.history.events.append(HistoryEvent(step: step, kind: "diverged", detail: "\(why); the state is kept from step \(kept)"))
      divergence = "training diverged at step \(step): \(why); the state is kept from step \(kept)"
      return .diverged
    default:
      let kept = restoreState(at: lastGood)
      divergence = "\(error.description); the state is kept from step \(kept)"
      spec.history.events.append(HistoryEvent(step: kept, kind: "failed", detail: divergence!))
      return .engineFailed
    }
  }

  /// Records one update: its loss in the history (every `record.every` steps), the validation
  /// at an epoch's end, and the rules that look at losses. Returns the rule that fired, if any.
  private func record(_ result: StepResult, rules: [StopRule]) -> StopReason? {
    var reason: StopReason?
    if result.step % spec.training.record.every == 0 {
      spec.history.record(result.recordedValues, at: result.step)
      onEvent(.step(result))
      for case .targetLoss(let value) in rules where Double(result.loss) <= value { reason = .targetLoss }
      for case .converged(let tol, let patience) in rules {
        if let last = lastRecorded, Double(abs(result.loss - last)) < tol { calmSteps += 1 } else { calmSteps = 0 }
        if calmSteps >= patience { reason = .converged }
      }
      lastRecorded = result.loss
    }
    if result.endedEpoch, let evaluation = evaluateValidation() {
      for case .earlyStopping(let patience, let minDelta, let restoreBest) in rules {
        if Double(evaluation.loss) < Double(bestValidation) - minDelta {
          bestValidation = evaluation.loss
          staleEvaluations = 0
          best = (trainer.step, evaluation.loss, restoreBest ? try? trainer.exportState() : nil)
        } else {
          staleEvaluations += 1
          if staleEvaluations >= patience {
            reason = .earlyStopping
            stopEarly(restoring: restoreBest)
          }
        }
      }
    }
    return reason
  }

  /// `early_stopping` fired: says the best step and loss and, with `restore_best`, goes back to
  /// the best evaluation's state and history.
  private func stopEarly(restoring: Bool) {
    let stoppedAt = trainer.step
    guard let best else {
      stopNote = "stopped by early_stopping at step \(stoppedAt) (the validation loss never improved)"
      return
    }
    let bestText = "best validation loss \(ProgressLine.significant(Double(best.loss))) at step \(best.step)"
    stopNote = "stopped by early_stopping at step \(stoppedAt) (\(bestText))"
    guard restoring, let state = best.state, best.step < stoppedAt,
      let restored = try? backend.makeTrainer(spec: spec, state: state, data: data)
    else { return }
    trainer = restored
    self.stoppedAt = stoppedAt
    (checkpoint, checkpointTaken, trainerIsSpoilt) = (state, clock.now, false)
    lastEvaluationStep = best.step
    spec.history.truncate(after: best.step)
    spec.history.events.append(
      HistoryEvent(
        step: best.step, kind: "restore", detail: "early_stopping stopped at step \(stoppedAt); restored step \(best.step) (\(bestText))"))
    stopNote! += "; restored the state of step \(best.step)"
  }

  /// Ends the run: a last validation, the final losses, a `stop` event, the summary.
  @discardableResult
  public func finish(_ reason: StopReason) -> RunSummary {
    // (A changed mapped file is not read again: cut short, it could not be.)
    let readable = reason != .dataChanged && data.fileChange() == nil
    if readable, lastEvaluationStep != trainer.step, trainer.step > start { _ = evaluateValidation() }
    let failed = Evaluation(loss: .nan, accuracy: nil)
    let validation = data.validation == nil ? nil : (readable ? try? trainer.evaluate(.validation) : nil) ?? failed
    let train = (readable ? try? trainer.evaluate(.train) : nil) ?? failed
    let ran = (stoppedAt ?? trainer.step) - start
    let message = divergence ?? stopNote ?? "stopped by \(reason.rawValue) at step \(trainer.step)"
    spec.history.events.append(
      HistoryEvent(step: trainer.step, kind: "stop", detail: "\(reason.rawValue) after \(ran) steps on \(backend.name)"))
    let summary = RunSummary(
      step: trainer.step, stepsRun: ran, reason: reason, message: message, train: train, validation: validation,
      seconds: elapsedSeconds)
    onEvent(.done(summary))
    return summary
  }

  /// Continues with another spec, state or backend at this step boundary (an optimizer change,
  /// a backend swap), keeping the history and the stop rules' memory.
  public func replace(spec newSpec: SessionSpec, state: TrainingState, backend newBackend: any Backend) throws(SessionError) {
    let (given, dropped) = Self.state(state, for: newBackend)
    do { trainer = try newBackend.makeTrainer(spec: newSpec, state: given, data: data) } catch { throw .backend(error) }
    (checkpoint, checkpointTaken, trainerIsSpoilt) = (given, clock.now, false)
    var history = spec.history
    history.events.append(contentsOf: newSpec.history.events.filter { !spec.history.events.contains($0) })
    if let dropped { history.events.append(dropped) }
    spec = newSpec
    spec.history = history
    backend = newBackend
  }

  /// After the trainer's state was spoilt (an update that overflowed, an engine that failed): a
  /// trainer at step `target`, replayed from the checkpoint. Returns the step of the state kept
  /// (the checkpoint's, should the replay fail).
  private func restoreState(at target: Int) -> Int {
    guard var fresh = try? backend.makeTrainer(spec: spec, state: checkpoint, data: data) else {
      // The trainer cannot be rebuilt: what the run hands out from now on is the checkpoint.
      trainerIsSpoilt = true
      return checkpoint.step
    }
    while fresh.step < target, (try? fresh.trainStep()) != nil {}
    if fresh.step < target, let atCheckpoint = try? backend.makeTrainer(spec: spec, state: checkpoint, data: data) {
      // A replayed step failed (not expected: training is deterministic); the checkpoint is finite.
      fresh = atCheckpoint
    }
    trainer = fresh
    if let state = try? fresh.exportState() { checkpoint = state }
    return fresh.step
  }

  /// The state a backend is given: its own `engine/…` state kept, the state other backends keep
  /// for themselves dropped, with an event saying what went.
  static func state(_ state: TrainingState, for backend: any Backend) -> (TrainingState, dropped: HistoryEvent?) {
    var given = state
    let foreign = state.tensors.keys.filter { name in
      guard let owner = StateKey(name: name)?.engineBackend else { return false }
      return owner != backend.name
    }.sorted()
    guard !foreign.isEmpty else { return (state, nil) }
    for name in foreign { given.tensors[name] = nil }
    let owners = Set(foreign.compactMap { StateKey(name: $0)?.engineBackend }).sorted()
    let detail =
      "dropped \(foreign.count) tensor\(foreign.count == 1 ? "" : "s") that \(owners.joined(separator: ", ")) keep\(owners.count == 1 ? "s" : "") for "
      + "\(owners.count == 1 ? "itself" : "themselves") (\(foreign.prefix(3).joined(separator: ", "))\(foreign.count > 3 ? ", …" : "")); \(backend.name) has no use for them"
    return (given, HistoryEvent(step: state.step, kind: "engine", detail: detail))
  }

  /// Appends an event to the history.
  public func record(_ event: HistoryEvent) { spec.history.events.append(event) }

  private func evaluateValidation() -> Evaluation? {
    guard data.validation != nil, let result = try? trainer.evaluate(.validation) else { return nil }
    lastEvaluationStep = trainer.step
    spec.history.record(result.recordedValues, at: trainer.step)
    onEvent(.evaluation(step: trainer.step, result))
    return result
  }
}

extension TrainingRun {
  /// What to say before training `spec` on `trainingSamples` samples beyond the schedule's
  /// warnings: L-BFGS on batches smaller than the training set (it assumes one fixed objective).
  public static func optimizerWarnings(_ spec: SessionSpec, trainingSamples: Int) -> [String] {
    guard case .lbfgs = spec.optimizer, spec.training.batchSize < trainingSamples else { return [] }
    return [
      "lbfgs assumes one fixed objective, but batch_size \(spec.training.batchSize) is smaller than the \(trainingSamples) training samples: each step sees another batch, and the history mixes their curvatures (batch \(trainingSamples) trains on the whole set)"
    ]
  }

  /// Every warning for a run about to start from `step`: the schedule's and the optimizer's.
  public var startWarnings: [String] {
    spec.schedule.warnings(runFrom: trainer.step + 1, base: spec.optimizer.learningRate)
      + Self.optimizerWarnings(spec, trainingSamples: data.train.count)
  }
}

extension OptimizerReport {
  /// `4 iterations, 6 evaluations (5 line search), t 0.8123`.
  public var text: String {
    "\(iterations) iteration\(iterations == 1 ? "" : "s"), \(evaluations) evaluation\(evaluations == 1 ? "" : "s") (\(lineSearchEvaluations) line search), t \(ProgressLine.significant(Double(stepSize)))"
  }

  /// Its fields by the names of `run --json`'s step events.
  public var members: [JSONObject.Member] {
    [
      .init(key: "iterations", value: .int(iterations)), .init(key: "func_evals", value: .int(evaluations)),
      .init(key: "line_search_evals", value: .int(lineSearchEvaluations)), .init(key: "t", value: .float(stepSize)),
    ]
  }
}

extension StepResult {
  /// The history's points of a recorded update: its batch loss, its learning rate, and the
  /// batch's accuracy or MAE when the trainer measured them (docs/spec-format.md, "history").
  var recordedValues: [(Metric, Double)] {
    var values: [(Metric, Double)] = [(.trainLoss, Double(loss)), (.learningRate, learningRate)]
    if let accuracy = measures.accuracy { values.append((.trainAccuracy, Double(accuracy))) }
    if let error = measures.meanAbsoluteError { values.append((.trainMAE, Double(error))) }
    return values
  }
}

extension Evaluation {
  /// The history's points of an evaluation of the validation split: its loss, and its accuracy
  /// or MAE and R² where the loss has them.
  var recordedValues: [(Metric, Double)] {
    var values: [(Metric, Double)] = [(.valLoss, Double(loss))]
    if let accuracy { values.append((.valAccuracy, accuracy)) }
    if let meanAbsoluteError { values.append((.valMAE, meanAbsoluteError)) }
    if let r2 { values.append((.valR2, r2)) }
    return values
  }
}

extension Evaluation {
  /// What it says beyond the loss, for a line: ", accuracy 96.1%", or ", MAE 0.0123, R² 0.9731".
  public var measuresText: String {
    var text = accuracy.map { String(format: ", accuracy %.1f%%", $0 * 100) } ?? ""
    if let meanAbsoluteError { text += ", MAE \(ProgressLine.significant(meanAbsoluteError))" }
    if let r2 { text += String(format: ", R² %.4f", r2) }
    return text
  }

  /// Its measures by the history's names with `prefix` (`val` gives val_loss, val_accuracy, …),
  /// for JSON lines; a value that is not finite is null.
  public func members(prefix: String) -> [JSONObject.Member] {
    var members: [JSONObject.Member] = [.init(key: prefix + "_loss", value: loss.isFinite ? .float(loss) : .null)]
    for (name, value) in [("_accuracy", accuracy), ("_mae", meanAbsoluteError), ("_r2", r2)] {
      if let value { members.append(.init(key: prefix + name, value: value.isFinite ? .double(value) : .null)) }
    }
    return members
  }
}

extension HistorySpec {
  mutating func record(_ values: [(Metric, Double)], at step: Int) {
    for (metric, value) in values { append(value, at: step, to: metric) }
  }
}
