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
    case change(SessionSpec, backend: any Backend)
    /// Answer with the session as it stands at this step boundary (for saving or exporting
    /// while training).
    case export(ExportReply)
  }

  /// The answer to an export request: the worker fulfils it at its next step boundary (or with
  /// the final session when it stops first); the asker waits on it, without polling.
  final class ExportReply: Sendable {
    private let answered = DispatchSemaphore(value: 0)
    private let bundle = Mutex<SessionBundle?>(nil)

    func fulfill(_ value: SessionBundle) {
      let first = bundle.withLock { current in
        defer { if current == nil { current = value } }
        return current == nil
      }
      if first { answered.signal() }
    }

    /// The session, or nil when no boundary came within `seconds`.
    func wait(seconds: Double) -> SessionBundle? {
      guard answered.wait(timeout: .now() + seconds) == .success else { return nil }
      return bundle.withLock { $0 }
    }
  }

  /// What the worker publishes; front ends copy what they need under the lock.
  struct Shared: Sendable {
    var snapshot = Snapshot()
    var events: [EngineEvent] = []
    /// The session when the worker stopped or paused.
    var result: SessionBundle?
    var finished = false
  }

  /// The shortest time between two histogram refreshes.
  static let tensorRefreshInterval = Duration.milliseconds(100)

  let shared = Mutex(Shared())
  /// Whether a front end shows per-tensor statistics (they cost an extra export of the
  /// parameters at every histogram refresh, so they are measured only while someone looks).
  let measuresStatistics = Atomic<Bool>(false)
  /// Requests waiting for the next step boundary, and, once the run has ended, the session it
  /// ended with (a request that comes after that is answered at once: nothing waits for a
  /// boundary that will never come).
  private let controls = Mutex<(pending: [Control], final: SessionBundle?)>(([], nil))
  private let queue = DispatchQueue(label: "specbench.training", qos: .userInitiated)

  /// The run, handed to the worker's queue.
  // @unchecked: after `start` hands it over, only blocks on `queue` (a serial queue) touch it.
  private final class RunBox: @unchecked Sendable {
    let run: TrainingRun
    init(_ run: TrainingRun) { self.run = run }
  }

  /// Starts training on the worker's queue.
  init(run: TrainingRun, extraSteps: Int?, previous: Snapshot? = nil, measuresStatistics: Bool = false) {
    let box = RunBox(run)
    self.measuresStatistics.store(measuresStatistics, ordering: .relaxed)
    shared.withLock { shared in
      // Distributions and statistics carry on from earlier runs of the same session.
      shared.snapshot.distributions = previous?.distributions ?? [:]
      shared.snapshot.tensorStatistics = previous?.tensorStatistics ?? [:]
      shared.snapshot.status = .running
      shared.snapshot.backend = run.backend.name
      shared.snapshot.step = run.trainer.step
      shared.snapshot.epoch = run.trainer.epoch
      shared.snapshot.history = run.spec.history
    }
    queue.async { [self] in loop(box.run, extraSteps: extraSteps) }
  }

  func request(_ control: Control) {
    let final = controls.withLock { controls in
      if controls.final == nil { controls.pending.append(control) }
      return controls.final
    }
    // After the end, an export is answered with the final session; pause, stop and changes
    // have nothing left to act on (the engine collects the finished run).
    if let final, case .export(let reply) = control { reply.fulfill(final) }
  }

  private func publish(_ event: EngineEvent) { shared.withLock { $0.events.append(event) } }

  /// Ends the conversation (the run paused or stopped): answers the export requests that came
  /// after the last boundary with the final session, and keeps it to answer any that come later,
  /// in the same lock, so that none can fall between the two.
  private func answerPendingExports(with bundle: SessionBundle) {
    let pending = controls.withLock { controls in
      defer { (controls.pending, controls.final) = ([], bundle) }
      return controls.pending
    }
    for case .export(let reply) in pending { reply.fulfill(bundle) }
  }

  private func loop(_ run: TrainingRun, extraSteps: Int?) {
    TrainingLoad.begin()
    defer { TrainingLoad.end() }
    let clock = ContinuousClock()
    let began = clock.now
    var rateMark = (clock.now, run.trainer.step)
    var lastTensors = clock.now
    /// The parameters after a histogram refresh, to measure the next step's update against.
    var before: (step: Int, parameters: [String: [Float]])?
    let histogramsEvery = run.spec.training.record.histogramsEvery
    /// The last multiple of `histogramsEvery` training passed (an engine's chunk may pass one
    /// without stopping on it).
    var lastMultiple = histogramsEvery > 0 ? run.trainer.step / histogramsEvery : 0
    run.onEvent = { [self] event in
      switch event {
      case .step(let result):
        shared.withLock { s in
          s.snapshot.record(result.recordedValues, at: result.step)
          s.snapshot.lastLoss = result.loss
          s.snapshot.learningRate = result.learningRate
          s.snapshot.optimizerReport = result.optimizer.map { "last step: " + $0.text }
        }
      case .evaluation(let step, let evaluation):
        shared.withLock { s in
          s.snapshot.record(evaluation.recordedValues, at: step)
        }
      case .done:
        break
      }
    }
    run.begin(extraSteps: extraSteps)
    shared.withLock { $0.snapshot.plannedStep = run.plannedStep }
    before = publishTensors(run)
    publish(
      EngineEvent(
        .started, "training on \(run.backend.name) from step \(run.trainer.step)" + (run.plannedStep.map { " to step \($0)" } ?? "")))
    var reason: StopReason?
    var paused = false
    steps: while true {
      // Every request of this boundary is answered; the first pause or stop ends the run here.
      var ending = false
      for control in controls.withLock({ controls in
        defer { controls.pending.removeAll() }
        return controls.pending
      }) {
        switch control {
        case .pause where !ending:
          (paused, ending) = (true, true)
        case .stop where !ending:
          (reason, ending) = (.interrupted, true)
        case .pause, .stop:
          break
        case .export(let reply):
          reply.fulfill(run.bundle)
        case .change(let spec, let backend):
          apply(spec, backend, to: run)
        }
      }
      if ending { break steps }
      // Measuring an update (for the statistics) takes a chunk of one update.
      if let stop = run.advance(atMost: before == nil ? nil : 1) {
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
        shared.withLock { s in s.snapshot.stepsPerSecond = rate }
      }
      // The step and the seconds to it together: a workbench's timeline pairs them.
      let elapsedSeconds = (now - began) / .seconds(1)
      shared.withLock { s in
        s.snapshot.step = step
        s.snapshot.epoch = run.trainer.epoch
        s.snapshot.elapsedSeconds = elapsedSeconds
      }
      if let measured = before, step == measured.step + 1 {
        publishStatistics(run, before: measured.parameters)
        before = nil
      }
      // Histograms at the steps `record.histograms_every` names (for an engine in chunks, at
      // the first boundary after one), but at most ten a second: a fast backend reaches a
      // multiple of 50 hundreds of times a second, and nobody sees more.
      if histogramsEvery > 0 && step / histogramsEvery > lastMultiple {
        lastMultiple = step / histogramsEvery
        if now - lastTensors >= Self.tensorRefreshInterval {
          lastTensors = now
          before = publishTensors(run)
        }
      }
    }
    if paused {
      let bundle = run.bundle
      answerPendingExports(with: bundle)
      publishTensors(run)
      shared.withLock { s in
        s.result = bundle
        s.snapshot.status = .paused
        s.snapshot.history = bundle.spec.history
        s.finished = true
        s.events.append(EngineEvent(.paused, "paused at step \(run.trainer.step)"))
      }
      return
    }
    let summary = run.finish(reason ?? .steps)
    let bundle = run.bundle
    answerPendingExports(with: bundle)
    publishTensors(run)
    var text = summary.message
    if !summary.rateText.isEmpty { text += " " + summary.rateText }
    text += " — train loss \(ProgressLine.significant(Double(summary.train.loss)))" + summary.train.measuresText
    if let validation = summary.validation {
      text += "; validation loss \(ProgressLine.significant(Double(validation.loss)))" + validation.measuresText
    }
    shared.withLock { s in
      s.result = bundle
      s.snapshot.status = .idle
      s.snapshot.step = bundle.spec.state?.step ?? s.snapshot.step
      s.snapshot.history = bundle.spec.history
      s.finished = true
      s.events.append(EngineEvent(summary.reason.eventKind, text))
    }
  }

  /// Applies a spec or backend change at this step boundary, mapping the optimizer's slots.
  private func apply(_ spec: SessionSpec, _ backend: any Backend, to run: TrainingRun) {
    do {
      var state = try run.trainer.exportState()
      let step = state.step
      var details: [EngineEvent] = []
      if spec.optimizer != run.spec.optimizer {
        let mapped = try StateMapping.optimizerChange(from: run.spec, to: spec, state: state)
        state = mapped.0
        details.append(EngineEvent(.optimizer, "optimizer at step \(step): \(mapped.detail)"))
        run.record(HistoryEvent(step: step, kind: "optimizer", detail: mapped.detail))
      }
      if backend.label != run.backend.label {
        details.append(EngineEvent(.backend, "backend at step \(step): \(run.backend.label) -> \(backend.label), state carried across"))
        run.record(HistoryEvent(step: step, kind: "backend", detail: "\(run.backend.label) -> \(backend.label)"))
      }
      try run.replace(spec: spec, state: state, backend: backend)
      shared.withLock { s in
        s.snapshot.backend = backend.name
        s.snapshot.plannedStep = run.plannedStep
        s.snapshot.events = run.spec.history.events
        s.events.append(contentsOf: details)
      }
    } catch {
      publish(EngineEvent(.error, "could not apply the change at step \(run.trainer.step): \(error); training goes on unchanged"))
    }
  }

  /// Publishes every parameter's and buffer's values, for histograms, and appends their
  /// distributions. Returns the parameters (and their step) when statistics are measured.
  @discardableResult
  private func publishTensors(_ run: TrainingRun) -> (step: Int, parameters: [String: [Float]])? {
    // Plots need no optimizer slots.
    guard let state = try? run.trainer.exportState(parametersOnly: true) else { return nil }
    var values: [String: [Float]] = [:]
    var parameters: [String: [Float]] = [:]
    for (name, tensor) in state.tensors {
      switch StateKey(name: name) {
      case .parameter(let tensorName)?:
        values[tensorName] = tensor.scalars
        parameters[tensorName] = tensor.scalars
        // A variational weight's σ beside its ρ, so that the histograms show μ and σ.
        if let sigma = VariationalSpec.sigmaName(ofRho: tensorName) { values[sigma] = tensor.scalars.map(VariationalSpec.softplus) }
      case .buffer(let tensorName)?:
        values[tensorName] = tensor.scalars
      case .slot?, .optimizer?, .engine?, .posterior?, nil:
        continue
      }
    }
    let columns = values.compactMap { name, values in DistributionColumn(step: state.step, values: values).map { (name, $0) } }
    shared.withLock { s in
      s.snapshot.tensorValues = values
      s.snapshot.histogramStep = state.step
      for (name, column) in columns where s.snapshot.distributions[name]?.last?.step != column.step {
        DistributionColumn.append(column, to: &s.snapshot.distributions[name, default: []])
      }
    }
    return measuresStatistics.load(ordering: .relaxed) ? (state.step, parameters) : nil
  }

  /// Publishes each parameter's gradient norm and update-to-weight ratio of the step just taken.
  private func publishStatistics(_ run: TrainingRun, before: [String: [Float]]) {
    guard let after = try? run.trainer.exportState(parametersOnly: true) else { return }
    let norms = run.trainer.gradientNorms()
    var statistics: [String: TensorStatistics] = [:]
    for (name, old) in before {
      guard let new = after.tensors[StateKey.parameter(name)]?.scalars, new.count == old.count, let gradientNorm = norms[name] else {
        continue
      }
      let weightNorm = l2Norm(old)
      let updateNorm = l2Norm(zip(new, old).map { $0 - $1 })
      statistics[name] = TensorStatistics(
        gradientNorm: gradientNorm, updateRatio: weightNorm > 0 ? updateNorm / weightNorm : 0, step: after.step)
    }
    shared.withLock { $0.snapshot.tensorStatistics.merge(statistics) { $1 } }
  }
}
