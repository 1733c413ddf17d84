import Backends
import Dispatch
import Foundation
import SpecKit
import Synchronization

/// Runs one `TrainingRun` on its own serial queue. Between steps it applies the requests waiting
/// for it and publishes a snapshot; nothing else touches the run while it trains.
final class TrainingWorker: Sendable {
  enum Control: Sendable {
    case pause
    case stop
    /// Continue with this spec (optimizer, schedule or stop rules changed) and backend; the
    /// optimizer's slots are mapped when the optimizer changed.
    case change(SessionSpec, backend: String)
    /// Publish the session as it stands, for saving while training.
    case export
  }

  /// What the worker publishes; front ends copy what they need under the lock.
  struct Shared: Sendable {
    var snapshot = Snapshot()
    var events: [EngineEvent] = []
    /// The session when the worker stopped or paused (or when an export was asked for).
    var result: SessionBundle?
    var exported: SessionBundle?
    var finished = false
  }

  let shared = Mutex(Shared())
  private let controls = Mutex<[Control]>([])
  private let queue = DispatchQueue(label: "specbench.training", qos: .userInitiated)

  /// The run, handed to the worker's queue.
  // @unchecked: after `start` hands it over, only blocks on `queue` (a serial queue) touch it.
  private final class RunBox: @unchecked Sendable {
    let run: TrainingRun
    init(_ run: TrainingRun) { self.run = run }
  }

  /// Starts training on the worker's queue.
  init(run: TrainingRun, extraSteps: Int?) {
    let box = RunBox(run)
    shared.withLock { shared in
      shared.snapshot.status = .running
      shared.snapshot.backend = run.backend.name
      shared.snapshot.step = run.trainer.step
      shared.snapshot.epoch = run.trainer.epoch
      shared.snapshot.history = run.spec.history
    }
    queue.async { [self] in loop(box.run, extraSteps: extraSteps) }
  }

  func request(_ control: Control) { controls.withLock { $0.append(control) } }

  private func publish(_ event: EngineEvent) { shared.withLock { $0.events.append(event) } }

  private func loop(_ run: TrainingRun, extraSteps: Int?) {
    let clock = ContinuousClock()
    var rateMark = (clock.now, run.trainer.step)
    let histogramsEvery = run.spec.training.record.histogramsEvery
    run.onEvent = { [self] event in
      switch event {
      case .step(let result):
        shared.withLock { s in
          s.snapshot.history.trainLoss.append(MetricPoint(step: result.step, value: result.loss))
          s.snapshot.lastLoss = result.loss
          s.snapshot.learningRate = result.learningRate
        }
      case .evaluation(let step, let evaluation):
        shared.withLock { s in
          if evaluation.loss.isFinite { s.snapshot.history.valLoss.append(MetricPoint(step: step, value: evaluation.loss)) }
        }
      case .done:
        break
      }
    }
    run.begin(extraSteps: extraSteps)
    shared.withLock { $0.snapshot.plannedStep = run.plannedStep }
    publishTensors(run)
    publish(
      EngineEvent(
        "started", "training on \(run.backend.name) from step \(run.trainer.step)" + (run.plannedStep.map { " to step \($0)" } ?? "")))
    var reason: StopReason?
    var paused = false
    steps: while true {
      for control in controls.withLock({ pending in
        defer { pending.removeAll() }
        return pending
      }) {
        switch control {
        case .pause:
          paused = true
          break steps
        case .stop:
          reason = .interrupted
          break steps
        case .export:
          let bundle = run.bundle
          shared.withLock { $0.exported = bundle }
        case .change(let spec, let backendName):
          apply(spec, backendName, to: run)
        }
      }
      if let stop = run.advance() {
        reason = stop
        break
      }
      let step = run.trainer.step
      let now = clock.now
      let elapsed = now - rateMark.0
      if elapsed >= .milliseconds(500) {
        let seconds = elapsed / .seconds(1)
        let rate = Double(step - rateMark.1) / seconds
        rateMark = (now, step)
        shared.withLock { $0.snapshot.stepsPerSecond = rate }
      }
      shared.withLock { s in
        s.snapshot.step = step
        s.snapshot.epoch = run.trainer.epoch
      }
      if histogramsEvery > 0 && step % histogramsEvery == 0 { publishTensors(run) }
    }
    if paused {
      let bundle = run.bundle
      publishTensors(run)
      shared.withLock { s in
        s.result = bundle
        s.snapshot.status = .paused
        s.snapshot.history = bundle.spec.history
        s.finished = true
        s.events.append(EngineEvent("paused", "paused at step \(run.trainer.step)"))
      }
      return
    }
    let summary = run.finish(reason ?? .steps)
    let bundle = run.bundle
    publishTensors(run)
    var text = summary.message
    text +=
      " — train loss \(ProgressLine.significant(Double(summary.train.loss)))"
      + (summary.train.accuracy.map { String(format: ", accuracy %.1f%%", $0 * 100) } ?? "")
    if let validation = summary.validation {
      text +=
        "; validation loss \(ProgressLine.significant(Double(validation.loss)))"
        + (validation.accuracy.map { String(format: ", accuracy %.1f%%", $0 * 100) } ?? "")
    }
    shared.withLock { s in
      s.result = bundle
      s.snapshot.status = .idle
      s.snapshot.step = bundle.spec.state?.step ?? s.snapshot.step
      s.snapshot.history = bundle.spec.history
      s.finished = true
      s.events.append(EngineEvent(summary.reason == .diverged ? "diverged" : "stopped", text))
    }
  }

  /// Applies a spec or backend change at this step boundary, mapping the optimizer's slots.
  private func apply(_ spec: SessionSpec, _ backendName: String, to run: TrainingRun) {
    do {
      let backend = try BackendRegistry.named(backendName)
      var state = run.trainer.exportState()
      let step = state.step
      var details: [EngineEvent] = []
      if spec.optimizer != run.spec.optimizer {
        let mapped = try StateMapping.optimizerChange(from: run.spec, to: spec, state: state)
        state = mapped.0
        details.append(EngineEvent("optimizer", "optimizer at step \(step): \(mapped.detail)"))
        run.record(HistoryEvent(step: step, kind: "optimizer", detail: mapped.detail))
      }
      if backend.name != run.backend.name {
        details.append(EngineEvent("backend", "backend at step \(step): \(run.backend.name) -> \(backend.name), state carried across"))
        run.record(HistoryEvent(step: step, kind: "backend", detail: "\(run.backend.name) -> \(backend.name)"))
      }
      try run.replace(spec: spec, state: state, backend: backend)
      shared.withLock { s in
        s.snapshot.backend = backend.name
        s.snapshot.plannedStep = run.plannedStep
        s.snapshot.history.events = run.spec.history.events
        s.events.append(contentsOf: details)
      }
    } catch {
      publish(EngineEvent("error", "could not apply the change at step \(run.trainer.step): \(error); training goes on unchanged"))
    }
  }

  /// Publishes every parameter's and buffer's values, for histograms.
  private func publishTensors(_ run: TrainingRun) {
    let state = run.trainer.exportState()
    var values: [String: [Float]] = [:]
    for (name, tensor) in state.tensors where !name.hasPrefix("opt/") {
      values[String(name.drop { $0 != "/" }.dropFirst())] = tensor.scalars
    }
    shared.withLock { s in
      s.snapshot.tensorValues = values
      s.snapshot.histogramStep = state.step
    }
  }
}
