import Backends
import Datasets
import Foundation
import SpecKit
import TermPlot

/// What a command produced, for a front end to show.
public enum CommandOutcome: Sendable {
  /// Done; text to print (may be empty).
  case done(String)
  /// Done; something to draw, at the front end's size.
  case drawing(Drawing)
  /// The command failed; the session is as it was. The text says why and what to do.
  case failed(String)
  /// Training was started with --wait: the front end waits for it (and may stop it).
  case waiting(String)
  /// The dashboard was asked for: a front end on a terminal opens it.
  case dashboard
  case quit
}

/// The engine both front ends share. It puts together the session's document (spec, state,
/// undo/redo, journal: `SessionDocument`) and its training (worker, snapshots, requests at step
/// boundaries: `TrainingController`), runs typed commands (`perform`) and command lines
/// (`execute`), and collects events. Used from one thread (the front end's); training runs on
/// the worker's own queue. Properties only read; `refresh` takes in what the worker published.
public final class SessionEngine {
  /// The session as a document.
  public internal(set) var document: SessionDocument
  /// Its training.
  let training: TrainingController
  var pendingEvents: [EngineEvent] = []
  /// The seeded initial state of the current spec, for histograms before any training.
  var initialStateCache: (spec: SessionSpec, state: TrainingState)?
  /// The last calibration measured (by `posterior` or `calibration`), with the session it was
  /// measured on: the dashboard's uncertainty pane shows it while the weights are those.
  public internal(set) var calibration: MeasuredCalibration?
  /// Each variational ρ's σ as the idle snapshot last published it: a frame recomputes it only
  /// when the ρ changed (an unchanged array compares by its storage).
  var sigmas: [String: (rho: [Float], sigma: [Float])] = [:]

  public var spec: SessionSpec { document.spec }
  /// The training state when no worker holds it (nil: the seeded initial state).
  public var state: TrainingState? { document.state }
  /// Where the session was loaded from or last saved.
  public var path: String? { document.path }
  public var hasUnsavedChanges: Bool { document.hasUnsavedChanges }

  /// Whether a front end shows per-tensor gradient norms and update ratios; measuring them
  /// costs an extra export of the parameters at every histogram refresh, so only on demand.
  public var measuresTensorStatistics: Bool {
    get { training.measuresStatistics }
    set { training.measuresStatistics = newValue }
  }

  /// The backends this engine trains on.
  public var backends: BackendRegistry { training.backends }

  public init(bundle: SessionBundle, path: String? = nil, backends: BackendRegistry = .builtIn) {
    document = SessionDocument(bundle: bundle, path: path)
    training = TrainingController(backends: backends)
  }

  /// The built-in default session: three spirals, a 2-64-64-3 ReLU MLP, Adam — ready to train.
  public static func withDefaultSession(backends: BackendRegistry = .builtIn) -> SessionEngine {
    let engine = SessionEngine(bundle: SessionBundle(spec: emptySpec(name: "spirals", input: [2])), backends: backends)
    for line in [
      "new spirals --input 2", "data spirals samples=600 classes=3 noise=0.1 seed=7", "add dense 64 relu", "add dense 64 relu",
      "add dense 3",
      "loss softmax_cross_entropy", "optimizer adam lr=0.01", "batch 64", "stop max_steps 2000",
    ] {
      _ = engine.execute(line)
    }
    engine.document.undoStack.removeAll()
    engine.document.hasUnsavedChanges = false
    return engine
  }

  /// A spec to build on: the given input, no layers yet, spirals data, softmax cross-entropy, Adam.
  static func emptySpec(name: String, input: [Int]) -> SessionSpec {
    SessionSpec(
      name: name, model: ModelSpec(input: input, layers: []), loss: .softmaxCrossEntropy, optimizer: .adam(.init(weightDecay: 0)),
      data: DataSpec(source: .spirals(samples: 600, classes: 3, noise: 0.1, seed: 0)))
  }

  /// The folder data files are relative to.
  var folder: String { path.map { PathText.folder($0) } ?? FileManager.default.currentDirectoryPath }

  /// Applies an edit to the document; a running worker gets the changed spec at its next step
  /// boundary, and a new session forgets the old one's training.
  func change(_ edit: Edit, line: String) throws(CommandError) -> CommandOutcome {
    let step = training.liveSnapshot?.step ?? state?.step ?? 0
    // Made on a copy first: an edit the session's backend cannot train (lbfgs on jax) changes nothing.
    var changed = document
    let (message, events) = try changed.apply(edit, line: line, folder: folder, training: training.hasWorker, step: step)
    if case .new = edit {
    } else if let backend = try? backends.named(spec.backend) {
      let unsupported = backend.capabilities.unsupported(in: changed.spec)
      if !unsupported.isEmpty {
        throw CommandError(
          "the \(backend.name) backend cannot train that (\(unsupported.map(\.description).joined(separator: "; "))); nothing changed: choose a backend that can first (backends lists them)"
        )
      }
    }
    document = changed
    pendingEvents.append(contentsOf: events)
    if let backend = try? backends.named(spec.backend) { training.change(to: spec, backend: backend) }
    if case .new = edit {
      training.forgetSession()
      // A new session trains on the fast backend when it can run here; reference is one command away.
      if let fast = backends.all.first(where: { $0.name == "fast" && $0.unavailableReason == nil }) { document.spec.backend = fast.name }
    }
    return .done(message)
  }

  // MARK: running commands

  /// Parses and runs one command line (what a user typed). A failed command leaves the session
  /// as it was.
  public func execute(_ line: String) -> CommandOutcome { CommandParser.run(line, perform: perform, blank: refresh) }

  /// Runs a typed command: the front ends' own actions (a key that pauses, a backend chosen, the
  /// stop on exit) come here without a command line. A failed command leaves the session as it
  /// was.
  public func perform(_ command: Command) -> CommandOutcome {
    refresh()
    do {
      switch command {
      case .edit(let edit, let line): return try change(edit, line: line)
      case .training(let training): return try run(training)
      case .query(let query): return try run(query)
      case .file(let file): return try run(file)
      case .frontEnd(.dashboard): return .dashboard
      case .frontEnd(.quit): return .quit
      case .runs: return .failed("\(command.text.split(separator: " ").first ?? "") works on a workbench of runs, not on one session")
      }
    } catch {
      return .failed(error.message)
    }
  }

  /// Events since the last call, oldest first.
  public func takeEvents() -> [EngineEvent] {
    refresh()
    let events = pendingEvents
    pendingEvents.removeAll()
    return events
  }

  /// The names of the backends a session can train on, in the registry's order (front ends
  /// offer them without knowing the engines).
  public var backendNames: [String] { backends.names }

  /// The backends that can run on this machine (the dashboard's `b` cycles through these). A
  /// backend whose availability is not known yet counts as available until it is: the first
  /// call starts finding out in the background (jax asks Python once). The REPL never asks, so
  /// it starts no process of its own accord.
  public var availableBackendNames: [String] {
    backends.all.filter { !BackendAvailability.isKnownUnavailable($0) }.map(\.name)
  }

  /// The latest picture of training: the worker's live one while it trains.
  public var snapshot: Snapshot {
    if let live = training.liveSnapshot { return live }
    var snapshot = Snapshot()
    snapshot.status = training.status
    snapshot.backend = spec.backend
    snapshot.step = state?.step ?? 0
    snapshot.epoch = state?.epoch ?? 0
    snapshot.history = spec.history
    snapshot.plannedStep = training.pausedTarget
    snapshot.distributions = training.tensorHistory.distributions
    snapshot.tensorStatistics = training.tensorHistory.statistics
    if let current = state, let iterations = current.tensors[LBFGSState.iterations]?.integerValue,
      let evaluations = current.tensors[LBFGSState.evaluations]?.integerValue, let t = current.tensors[LBFGSState.stepSize]?.scalars.first
    {
      snapshot.optimizerReport =
        "so far: \(iterations) L-BFGS iterations, \(evaluations) evaluations, last t \(ProgressLine.significant(Double(t)))"
    }
    if let calibration, let current = state, calibration.describes(spec, at: current.step) { snapshot.uncertainty = calibration.lines }
    if let current = state ?? initialState() {
      snapshot.histogramStep = current.step
      for (name, tensor) in current.tensors {
        guard let key = StateKey(name: name), !key.isOptimizerState, !key.isPosterior else { continue }
        snapshot.tensorValues[key.tensor] = tensor.scalars
        // A variational weight's σ beside its ρ, so that the histograms show μ and σ.
        if case .parameter(let parameter) = key, let sigma = VariationalSpec.sigmaName(ofRho: parameter) {
          if sigmas[sigma]?.rho != tensor.scalars { sigmas[sigma] = (tensor.scalars, tensor.scalars.map(VariationalSpec.softplus)) }
          snapshot.tensorValues[sigma] = sigmas[sigma]!.sigma
        }
      }
    }
    return snapshot
  }

  /// The seeded initial state of the current spec (nil while the model cannot be built).
  func initialState() -> TrainingState? {
    if let cache = initialStateCache, cache.spec == spec { return cache.state }
    guard let state = try? spec.initialTrainingState() else { return nil }
    initialStateCache = (spec, state)
    return state
  }

  /// What training is doing, without copying the snapshot: a front end's redraw loop asks for it
  /// often, and holding a copy of the history would make the worker copy it on its next append.
  public var trainingStatus: TrainingStatus { training.currentStatus }

  /// Whether the worker is still training (it may have stopped since the last `refresh`).
  public var isTraining: Bool { training.isTraining }

  /// Takes what the worker published into the engine: its events and, when it has stopped or
  /// paused, its final session (spec history, state). Properties never do this; front ends
  /// call it once a loop turn, and every command and `takeEvents` call it first.
  public func refresh() {
    let (events, finished) = training.collect()
    pendingEvents.append(contentsOf: events)
    if let finished { document.takeResult(of: finished) }
  }
}

/// A calibration with the session it was measured on, and the lines the dashboard shows for it
/// (made once, not at every frame).
public struct MeasuredCalibration: Sendable {
  public let step: Int
  public let spec: SessionSpec
  public let report: Uncertainty.Calibration
  /// The summary, then the reliability diagram's bars.
  public let lines: [String]

  init(step: Int, spec: SessionSpec, report: Uncertainty.Calibration) {
    (self.step, self.spec, self.report) = (step, spec, report)
    lines = [report.summary] + (report.rows.last?.report.reliabilityDiagram(width: 20) ?? [])
  }

  /// Whether it describes `other` at `step`: the same weights (step), model, loss, data and posterior.
  func describes(_ other: SessionSpec, at step: Int) -> Bool {
    self.step == step && spec.model == other.model && spec.loss == other.loss && spec.data == other.data
      && spec.posterior == other.posterior
  }
}

extension String {
  var nonEmpty: String? { isEmpty ? nil : self }
}
