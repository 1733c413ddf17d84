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
}

/// Trains one session from its current state with one backend until a stop rule fires:
/// steps on the trainer, records the history and events into the spec, evaluates the validation
/// split at the end of every epoch. Synchronous; the caller chooses the thread.
public final class TrainingRun {
  /// The spec with the history and events recorded so far.
  public private(set) var spec: SessionSpec
  public let backend: any Backend
  public let trainer: any Trainer
  public let data: DataSplit

  /// Prepares a run: reads the data (relative to `folder`), checks it against the spec, and
  /// builds the backend's trainer from the bundle's state (or the seeded initial state).
  public init(bundle: SessionBundle, folder: String, backend: any Backend) throws(SessionError) {
    spec = bundle.spec
    self.backend = backend
    let dataset: Dataset
    do { dataset = try DatasetLoader.load(spec.data, relativeTo: folder) } catch { throw .data(error) }
    let mismatches = spec.problems(with: dataset.shape)
    guard mismatches.isEmpty else { throw .dataMismatch(file: nil, mismatches) }
    data = DataSplit(dataset, validationFraction: spec.data.validationFraction, seed: spec.training.seed)
    let state: TrainingState
    do { state = try bundle.trainingState() } catch { throw .spec(error) }
    do { trainer = try backend.makeTrainer(spec: spec, state: state, data: data) } catch { throw .backend(error) }
    if bundle.spec.state != nil {
      spec.history.events.append(HistoryEvent(step: state.step, kind: "load", detail: "resumed at step \(state.step) on \(backend.name)"))
    }
  }

  /// The session as it stands: the spec with its history and the trainer's state.
  public var bundle: SessionBundle { SessionBundle(spec: spec, state: trainer.exportState()) }

  /// Trains until a stop rule fires.
  ///
  /// - Parameters:
  ///   - extraSteps: train exactly this many more steps, in place of the `max_steps` and
  ///     `max_epochs` rules (the other rules still apply); nil to follow the rules.
  ///   - shouldStop: asked before each step; true ends the run as `interrupted`.
  ///   - onEvent: every recorded step, every evaluation, and last the summary.
  @discardableResult
  public func run(extraSteps: Int? = nil, shouldStop: () -> Bool = { false }, onEvent: (RunEvent) -> Void = { _ in }) -> RunSummary {
    let start = trainer.step
    let clock = ContinuousClock()
    let began = clock.now
    func elapsed() -> Double {
      let d = clock.now - began
      return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
    let rules = spec.training.stop
    var lastRecorded: Float?
    var calmSteps = 0
    var bestValidation = Float.infinity
    var staleEvaluations = 0
    var lastEvaluationStep = -1
    var reason: StopReason?
    var message = ""

    func evaluateValidation() -> Evaluation? {
      guard let validation = data.validation else { return nil }
      let result = trainer.evaluate(validation)
      lastEvaluationStep = trainer.step
      if result.loss.isFinite { spec.history.valLoss.append(MetricPoint(step: trainer.step, value: result.loss)) }
      onEvent(.evaluation(step: trainer.step, result))
      return result
    }

    loop: while true {
      // Limits on steps, epochs and time, checked before each step.
      if let extraSteps {
        if trainer.step - start >= extraSteps {
          reason = .steps
          break
        }
      } else {
        for rule in rules {
          switch rule {
          case .maxSteps(let steps) where trainer.step >= steps: reason = .maxSteps
          case .maxEpochs(let epochs) where trainer.epoch >= epochs: reason = .maxEpochs
          default: continue
          }
          break loop
        }
      }
      for case .timeLimit(let seconds) in rules where elapsed() >= seconds {
        reason = .timeLimit
        break loop
      }
      if shouldStop() {
        reason = .interrupted
        break
      }

      let result: StepResult
      do { result = try trainer.trainStep() } catch {
        reason = .diverged
        message = error.description
        if case .diverged(let step, _, let why) = error {
          spec.history.events.append(HistoryEvent(step: step, kind: "diverged", detail: "\(why); the state is kept from step \(step - 1)"))
        }
        break
      }

      if result.step % spec.training.record.every == 0 {
        spec.history.trainLoss.append(MetricPoint(step: result.step, value: result.loss))
        onEvent(.step(result))
        for case .targetLoss(let value) in rules where Double(result.loss) <= value { reason = .targetLoss }
        for case .converged(let tol, let patience) in rules {
          if let last = lastRecorded, Double(abs(result.loss - last)) < tol { calmSteps += 1 } else { calmSteps = 0 }
          if calmSteps >= patience { reason = .converged }
        }
        lastRecorded = result.loss
      }
      if result.endedEpoch, let evaluation = evaluateValidation() {
        for case .earlyStopping(let patience, let minDelta) in rules {
          if Double(evaluation.loss) < Double(bestValidation) - minDelta {
            bestValidation = evaluation.loss
            staleEvaluations = 0
          } else {
            staleEvaluations += 1
            if staleEvaluations >= patience { reason = .earlyStopping }
          }
        }
      }
      if reason != nil { break }
    }

    let stopReason = reason ?? .steps
    if lastEvaluationStep != trainer.step, trainer.step > start { _ = evaluateValidation() }
    let validation = data.validation.map { trainer.evaluate($0) }
    let train = trainer.evaluate(data.train)
    if message.isEmpty { message = "stopped by \(stopReason.rawValue) at step \(trainer.step)" }
    spec.history.events.append(
      HistoryEvent(
        step: trainer.step, kind: "stop", detail: "\(stopReason.rawValue) after \(trainer.step - start) steps on \(backend.name)"))
    let summary = RunSummary(
      step: trainer.step, stepsRun: trainer.step - start, reason: stopReason, message: message, train: train, validation: validation,
      seconds: elapsed())
    onEvent(.done(summary))
    return summary
  }
}
