import Backends
import Foundation
import SpecKit

/// Trains a session document: the worker and its run, what training is doing (running, paused,
/// idle, the step a paused run was heading for), the tensor distributions a next run carries
/// on, and the requests that take effect at the next step boundary — pause, stop, a change of
/// optimizer or backend, an export answered by the worker. It never edits the document; the
/// engine hands it the document to train and takes back what a finished run returns.
final class TrainingController {
  /// The backends it trains on, with the settings last chosen (`backend jax devices=2`).
  private(set) var backends: BackendRegistry
  private(set) var worker: TrainingWorker?
  /// What training is doing when no worker runs (idle, or paused between runs).
  private(set) var status: TrainingStatus = .idle
  /// The step a paused run was heading for.
  private(set) var pausedTarget: Int?
  /// Distributions and per-tensor statistics of this session's finished runs, which the next
  /// run carries on (cleared by new and load).
  private(set) var tensorHistory: (distributions: [String: [DistributionColumn]], statistics: [String: TensorStatistics]) = ([:], [:])
  /// The session's steps against the seconds it has trained (a point when a run starts and
  /// ends, and while it trains whenever `sampleTimeline` is called, at most every 0.1 s):
  /// `compare --by time`. Seconds count training only, from every run of this session here (and
  /// in the workbench that saved it).
  var timeline: [TimelinePoint] = []
  /// The seconds of the runs that have ended.
  var trainedSeconds = 0.0
  /// Timeline points kept (thinned to every other one when full).
  static let timelineLimit = WorkspaceIndex.timelineLimit

  /// Whether per-tensor gradient norms and update ratios are measured (on demand: they cost an
  /// extra export of the parameters at every histogram refresh).
  var measuresStatistics = false {
    didSet { worker?.measuresStatistics.store(measuresStatistics, ordering: .relaxed) }
  }

  init(backends: BackendRegistry) { self.backends = backends }

  /// Trains on `backend` (new settings of one of its backends) from now on.
  func configure(_ backend: any Backend) { backends = backends.replacing(backend) }

  /// Whether a worker is attached (it may have finished since the last `collect`).
  var hasWorker: Bool { worker != nil }

  /// Whether the worker is still training.
  var isTraining: Bool { worker.map { worker in !worker.shared.withLock { $0.finished } } ?? false }

  /// The status, the worker's live one while it trains.
  var currentStatus: TrainingStatus { worker?.shared.withLock { $0.snapshot.status } ?? status }

  /// The worker's live snapshot, while there is a worker.
  var liveSnapshot: Snapshot? { worker?.shared.withLock { $0.snapshot } }

  /// Starts a run of `document` in the background.
  func start(_ document: SessionDocument, folder: String, extraSteps: Int?, resuming: Bool = false) throws(CommandError) -> String {
    guard worker == nil else { throw CommandError("already training; pause, stop, or wait for it") }
    let spec = document.spec
    let problems = SpecParts.problems(of: spec)
    guard problems.isEmpty else {
      throw CommandError("the session cannot train yet:\n" + problems.map { "  \($0)" }.joined(separator: "\n"))
    }
    let run: TrainingRun
    do {
      let backend = try backends.named(spec.backend)
      run = try TrainingRun(bundle: document.bundle, folder: folder, backend: backend, recordLoad: false)
    } catch let error as BackendError {
      throw CommandError(error.description)
    } catch let error as SessionError {
      throw CommandError(error.description)
    } catch {
      throw CommandError("\(error)")
    }
    let start = run.trainer.step
    if let extraSteps, let problem = StateSpec.tooManySteps(extraSteps, from: start) { throw CommandError("train: \(problem)") }
    let target = TrainingRun.plannedStep(spec: spec, from: start, extraSteps: extraSteps)
    if let target, target <= start, extraSteps == nil {
      throw CommandError("already at step \(start), where the stop rules end training; train N trains N more steps")
    }
    var previous = Snapshot()
    (previous.distributions, previous.tensorStatistics) = tensorHistory
    worker = TrainingWorker(
      run: run, extraSteps: extraSteps, previous: previous, measuresStatistics: measuresStatistics)
    status = .running
    addToTimeline(TimelinePoint(step: start, seconds: trainedSeconds))
    pausedTarget = target
    let warnings = run.startWarnings
    return (resuming ? "resumed" : "training") + " in the background from step \(start)" + (target.map { " to step \($0)" } ?? "")
      + warnings.map { "\nwarning: " + $0 }.joined()
  }

  /// Resumes a paused run of `document` toward the step it was heading for.
  func resume(_ document: SessionDocument, folder: String) throws(CommandError) -> String {
    guard status == .paused, worker == nil else {
      throw CommandError(worker != nil ? "already training" : "nothing to resume; train starts training")
    }
    let extra = pausedTarget.map { max(0, $0 - (document.state?.step ?? 0)) }
    return try start(document, folder: folder, extraSteps: extra, resuming: true)
  }

  func pause() throws(CommandError) -> String {
    guard let worker else { throw CommandError(status == .paused ? "already paused; resume or stop" : "not training; train starts it") }
    worker.request(.pause)
    return "pausing at the next step boundary"
  }

  /// Stops a run at its next boundary, or ends a pause; the message says which.
  func stop(at step: Int) throws(CommandError) -> String {
    if let worker {
      worker.request(.stop)
      return "stopping at the next step boundary"
    }
    guard status == .paused else { throw CommandError("not training") }
    status = .idle
    pausedTarget = nil
    return "stopped at step \(step)"
  }

  /// Hands a changed spec (optimizer, schedule, stop rules) or backend to the running worker,
  /// which applies it at its next step boundary. Returns false when no worker runs.
  @discardableResult
  func change(to spec: SessionSpec, backend: any Backend) -> Bool {
    guard let worker else { return false }
    worker.request(.change(spec, backend: backend))
    return true
  }

  /// The session as the worker exports it at its next step boundary (the worker answers; nothing
  /// polls), or nil when no worker runs.
  func exportAtNextBoundary(for verb: String) throws(CommandError) -> SessionBundle? {
    guard let worker else { return nil }
    let reply = TrainingWorker.ExportReply()
    worker.request(.export(reply))
    guard let bundle = reply.wait(seconds: 30) else {
      throw CommandError("\(verb): training did not reach a step boundary in 30 s; pause, then \(verb)")
    }
    return bundle
  }

  /// A whole other session (`new`, `load`): nothing of this one's training carries over.
  func forgetSession() {
    tensorHistory = ([:], [:])
    status = .idle
    pausedTarget = nil
    // Another session's training time is not this one's.
    (timeline, trainedSeconds) = ([], 0)
  }

  /// Takes the worker's events and, when it has stopped or paused, the session it ended with
  /// (the worker is then let go).
  func collect() -> (events: [EngineEvent], finished: SessionBundle?) {
    guard let worker else { return ([], nil) }
    let (events, result, finished) = worker.shared.withLock { s -> ([EngineEvent], SessionBundle?, Bool) in
      defer { s.events.removeAll() }
      return (s.events, s.result, s.finished)
    }
    guard finished, let result else { return (events, nil) }
    let (paused, distributions, statistics) = worker.shared.withLock {
      ($0.snapshot.status == .paused, $0.snapshot.distributions, $0.snapshot.tensorStatistics)
    }
    tensorHistory = (distributions, statistics)
    let (step, elapsed) = worker.shared.withLock { ($0.snapshot.step, $0.snapshot.elapsedSeconds ?? 0) }
    trainedSeconds += elapsed
    addToTimeline(TimelinePoint(step: result.spec.state?.step ?? step, seconds: trainedSeconds))
    status = paused ? .paused : .idle
    if !paused { pausedTarget = nil }
    self.worker = nil
    return (events, result)
  }

  /// A point of the running worker's own pair of step and seconds, when it has moved on.
  func sampleTimeline() {
    guard let (step, elapsed) = worker?.shared.withLock({ ($0.snapshot.step, $0.snapshot.elapsedSeconds) }), let elapsed,
      let last = timeline.last, step > last.step, trainedSeconds + elapsed - last.seconds >= 0.1
    else { return }
    addToTimeline(TimelinePoint(step: step, seconds: trainedSeconds + elapsed))
  }

  func addToTimeline(_ point: TimelinePoint) {
    if let last = timeline.last, last.step == point.step {
      timeline[timeline.count - 1].seconds = max(last.seconds, point.seconds)
      return
    }
    // A step behind the last (an undo, a load): the timeline starts again from there.
    if let last = timeline.last, point.step < last.step { timeline.removeAll { $0.step >= point.step } }
    timeline.append(TimelinePoint(step: point.step, seconds: max(point.seconds, timeline.last?.seconds ?? 0)))
    if timeline.count > Self.timelineLimit {
      timeline = timeline.enumerated().filter { $0.offset % 2 == 0 || $0.offset == timeline.count - 1 }.map(\.element)
    }
  }
}
