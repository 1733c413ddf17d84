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

/// The engine both front ends share: the current spec with its undo/redo history and journal,
/// the command language, the training worker, and what it publishes. Used from one thread (the
/// front end's); training runs on the worker's own queue.
public final class SessionEngine {
  public internal(set) var spec: SessionSpec
  /// The training state when no worker holds it (nil: the seeded initial state).
  public internal(set) var state: TrainingState?
  /// Where the session was loaded from or last saved.
  public internal(set) var path: String?
  public internal(set) var hasUnsavedChanges = false
  var undoStack: [UndoEntry] = []
  var redoStack: [UndoEntry] = []
  var worker: TrainingWorker?
  /// The step a paused run was heading for.
  var pausedTarget: Int?
  var status: TrainingStatus = .idle
  var pendingEvents: [EngineEvent] = []
  /// Distributions and per-tensor statistics of this session's finished runs, which the next
  /// run carries on (cleared by new and load).
  var tensorHistory: (distributions: [String: [DistributionColumn]], statistics: [String: TensorStatistics]) = ([:], [:])
  /// The seeded initial state of the current spec, for histograms before any training.
  var initialStateCache: (spec: SessionSpec, state: TrainingState)?
  /// Whether a front end shows per-tensor gradient norms and update ratios; measuring them
  /// costs an extra export of the parameters at every histogram refresh, so only on demand.
  public var measuresTensorStatistics = false {
    didSet { worker?.measuresStatistics.store(measuresTensorStatistics, ordering: .relaxed) }
  }

  /// The backends this engine trains on.
  public let backends: BackendRegistry

  public init(bundle: SessionBundle, path: String? = nil, backends: BackendRegistry = .builtIn) {
    self.backends = backends
    spec = bundle.spec
    state = bundle.spec.state == nil ? nil : try? bundle.trainingState()
    self.path = path
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
    engine.undoStack.removeAll()
    engine.hasUnsavedChanges = false
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

  // MARK: running commands

  /// Parses and runs one command line (what a user typed). A failed command leaves the session
  /// as it was.
  public func execute(_ line: String) -> CommandOutcome {
    let command: Command
    do {
      guard let parsed = try CommandParser.parse(line) else {
        refresh()
        return .done("")
      }
      command = parsed
    } catch {
      return .failed(error.message)
    }
    return perform(command)
  }

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

  /// The latest picture of training: the worker's live one while it trains.
  public var snapshot: Snapshot {
    if let worker { return worker.shared.withLock { $0.snapshot } }
    var snapshot = Snapshot()
    snapshot.status = status
    snapshot.backend = spec.backend
    snapshot.step = state?.step ?? 0
    snapshot.epoch = state?.epoch ?? 0
    snapshot.history = spec.history
    snapshot.plannedStep = pausedTarget
    snapshot.distributions = tensorHistory.distributions
    snapshot.tensorStatistics = tensorHistory.statistics
    if let current = state ?? initialState() {
      snapshot.histogramStep = current.step
      for (name, tensor) in current.tensors {
        guard let key = StateKey(name: name), !key.isOptimizerState else { continue }
        snapshot.tensorValues[key.tensor] = tensor.scalars
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
  public var trainingStatus: TrainingStatus {
    worker?.shared.withLock { $0.snapshot.status } ?? status
  }

  /// Whether the worker is still training (it may have stopped since the last `refresh`).
  public var isTraining: Bool {
    worker.map { worker in !worker.shared.withLock { $0.finished } } ?? false
  }

  /// Takes what the worker published into the engine: its events and, when it has stopped or
  /// paused, its final session (spec history, state, status). Properties never do this; front
  /// ends call it once a loop turn, and every command and `takeEvents` call it first.
  public func refresh() {
    guard let worker else { return }
    let (events, result, finished) = worker.shared.withLock { s -> ([EngineEvent], SessionBundle?, Bool) in
      defer { s.events.removeAll() }
      return (s.events, s.result, s.finished)
    }
    pendingEvents.append(contentsOf: events)
    guard finished, let result else { return }
    let (paused, distributions, statistics) = worker.shared.withLock {
      ($0.snapshot.status == .paused, $0.snapshot.distributions, $0.snapshot.tensorStatistics)
    }
    tensorHistory = (distributions, statistics)
    spec.history = result.spec.history
    state = try? result.trainingState()
    status = paused ? .paused : .idle
    if !paused { pausedTarget = nil }
    hasUnsavedChanges = true
    self.worker = nil
  }

  // MARK: changing the spec

  /// Applies a change to the spec: undo point, journal, state mapping, events.
  func change(_ command: Edit, line: String) throws(CommandError) -> CommandOutcome {
    if worker != nil && !command.appliesWhileTraining {
      throw CommandError("training is running; pause it (pause) or stop it (stop) before changing the model, data or loss")
    }
    let before = (spec: spec, state: state)
    var next = spec
    var nextState = state
    var message = ""
    switch command {
    case .new(let name, let input):
      next = Self.emptySpec(name: name, input: input ?? [2])
      nextState = nil
      message = "new session \(name) with input \(input ?? [2]); add layers, then train"
    case .data(let json):
      next.data = try parts { () throws(SpecError) in try SpecParts.data(json) }
      message = "data: \(next.data.source.summary)"
    case .add(let json, let index):
      var (name, kind) = try parts { () throws(SpecError) in try SpecParts.layer(json, at: "layer") }
      if name == nil { name = ModelSpec.freshName(for: kind.typeName, avoiding: Set(next.model.layers.map(\.name))) }
      guard !next.model.layers.contains(where: { $0.name == name }) else {
        throw CommandError("a layer named \(name!) exists already; give another name=")
      }
      guard (index ?? 0) <= next.model.layers.count else {
        throw CommandError("insert: position \(index!) is past the end (the model has \(next.model.layers.count) layers)")
      }
      next.model.layers.insert(LayerSpec(name: name!, kind: kind), at: index ?? next.model.layers.count)
      message = "\(index == nil ? "added" : "inserted") \(name!) (\(kind.typeName))"
    case .remove(let reference):
      let i = try layerIndex(reference)
      message = "removed \(next.model.layers[i].name)"
      next.model.layers.remove(at: i)
    case .set(let reference, let fields):
      let i = try layerIndex(reference)
      let layer = next.model.layers[i]
      guard case .object(var object) = layer.json.kind, let changes = fields.objectValue else {
        throw CommandError("set: nothing to change")
      }
      for member in changes.members {
        if let j = object.members.firstIndex(where: { $0.key == member.key }) {
          object.members[j].value = member.value
        } else {
          object.members.append(member)
        }
      }
      let (name, kind) = try parts { () throws(SpecError) in
        try SpecParts.layer(JSONValue(.object(object)), at: JSONPath("model.layers") + i)
      }
      let newName = name ?? layer.name
      if newName != layer.name, next.model.layers.contains(where: { $0.name == newName }) {
        throw CommandError("a layer named \(newName) exists already; layer names are unique in a model, give another name=")
      }
      next.model.layers[i] = LayerSpec(name: newName, kind: kind)
      message = "changed \(layer.name)" + (newName != layer.name ? " (now named \(newName))" : "")
    case .loss(let json):
      next.loss = try parts { () throws(SpecError) in try SpecParts.loss(json) }
      message = "loss: \(next.loss.name)"
    case .optimizer(let json):
      var object = json
      if json.objectValue?["type"] == nil, case .object(var current) = spec.optimizer.json.kind, let changes = json.objectValue {
        for member in changes.members {
          if let j = current.members.firstIndex(where: { $0.key == member.key }) {
            current.members[j].value = member.value
          } else {
            current.members.append(member)
          }
        }
        object = JSONValue(.object(current))
      }
      next.optimizer = try parts { () throws(SpecError) in try SpecParts.optimizer(object) }
      message = "optimizer: \(next.optimizer.summary)"
    case .schedule(let json):
      next.schedule = try parts { () throws(SpecError) in try SpecParts.schedule(json) }
      message = "schedule: \(next.schedule.summary)"
    case .stopRules(let rules):
      next.training.stop = try rules.enumerated().map { (i, json) throws(CommandError) in
        try parts { () throws(SpecError) in try SpecParts.stopRule(json, at: JSONPath("training.stop") + i) }
      }
      message = "stop at the first of: " + next.training.stop.map(\.summary).joined(separator: "; ")
    case .batch(let size):
      next.training.batchSize = size
      message = "batch size \(size)"
    case .seed(let seed):
      next.training.seed = seed
      message = "seed \(seed)" + (state == nil ? "" : " (the trained state is kept; new tensors will use it)")
    }

    // Sizes that cannot fit (or overflow) are refused before anything is allocated for them.
    let tooLarge = next.resourceProblems() + next.model.oversizedTensors()
    if !tooLarge.isEmpty { throw CommandError(tooLarge.map(\.description).joined(separator: "\n")) }

    // Keep what the trained state can keep.
    if let current = nextState, worker == nil {
      do {
        if next.model != spec.model {
          let mapped = try StateMapping.architectureChange(to: next, state: current)
          nextState = mapped.0
          pendingEvents.append(
            EngineEvent(.model,
              "kept \(mapped.kept.isEmpty ? "nothing" : mapped.kept.joined(separator: ", ")); fresh \(mapped.fresh.isEmpty ? "nothing" : mapped.fresh.joined(separator: ", "))"
            ))
        } else if next.optimizer != spec.optimizer {
          let mapped = try StateMapping.optimizerChange(from: spec, to: next, state: current)
          nextState = mapped.0
          pendingEvents.append(EngineEvent(.optimizer, mapped.detail))
          next.history.events.append(HistoryEvent(step: current.step, kind: "optimizer", detail: mapped.detail))
        }
      } catch {
        // The new model's shapes do not chain yet (a layer is still missing): keep no state
        // until they do, the tensors start from the seed.
        nextState = nil
        pendingEvents.append(
          EngineEvent(.model, "the model's shapes do not chain (\(error.issues.first?.message ?? "\(error)")); the trained state was set aside"))
      }
    }
    if let worker { worker.request(.change(next, backend: next.backend)) }
    if case .new = command {
      next.journal = [line]
      tensorHistory = ([:], [:])
    } else {
      next.journal = spec.journal + [line]
    }
    undoStack.append(
      UndoEntry(
        spec: before.spec, state: before.state, stepAfter: nextState?.step ?? 0,
        replacesSession: { if case .new = command { true } else { false } }()))
    redoStack.removeAll()
    // A data file the user names here is theirs to read, wherever it is (a session file's
    // paths are limited to its folder; see DataAccess): allowed once the change is made.
    if case .data = command {
      for file in next.data.source.files { DataAccess.allow(PathText.folder(file.hasPrefix("/") ? file : PathText.join(folder, file))) }
    }
    spec = next
    state = nextState
    hasUnsavedChanges = true
    return .done(message)
  }

  /// Runs a SpecKit reader, turning its problems into a command error.
  func parts<T>(_ body: () throws(SpecError) -> T) throws(CommandError) -> T {
    do { return try body() } catch {
      throw CommandError(error.issues.map(\.description).joined(separator: "\n").nonEmpty ?? error.description)
    }
  }

  /// A layer by name or 0-based position.
  func layerIndex(_ reference: String) throws(CommandError) -> Int {
    if let i = spec.model.layers.firstIndex(where: { $0.name == reference }) { return i }
    if let i = Int(reference), spec.model.layers.indices.contains(i) { return i }
    let names = spec.model.layers.map(\.name)
    throw CommandError(
      "no layer \"\(reference)\"; layers: \(names.isEmpty ? "none yet" : names.joined(separator: ", "))"
        + (Suggestion.nearest(to: reference, in: names).map { " — did you mean \"\($0)\"?" } ?? ""))
  }
}

/// What `undo` (or `redo`) goes back to: the spec and state before a change, the training step
/// right after it, and whether it switched to another session (`new`, `load`).
struct UndoEntry {
  var spec: SessionSpec
  var state: TrainingState?
  var stepAfter: Int
  var replacesSession: Bool
}

extension SessionEngine {
  /// Goes back to `entry` and returns the entry that comes back here. With no training since
  /// the change (or for a whole other session), the spec and state are restored exactly;
  /// otherwise the spec change is reverted on the current state — training is not undone, and
  /// tensors are kept as any edit keeps them.
  func restore(_ entry: UndoEntry) -> UndoEntry {
    let (oldSpec, oldState) = (spec, state)
    let trainedSince = (state?.step ?? 0) != entry.stepAfter
    if entry.replacesSession || !trainedSince {
      let history = spec.history
      (spec, state) = (entry.spec, entry.state)
      if !entry.replacesSession { spec.history = history }
    } else {
      var target = entry.spec
      target.history = spec.history
      if let current = state {
        if target.model != spec.model {
          state = (try? StateMapping.architectureChange(to: target, state: current))?.0
        } else if target.optimizer != spec.optimizer {
          state = (try? StateMapping.optimizerChange(from: spec, to: target, state: current))?.0
        }
      }
      spec = target
    }
    return UndoEntry(spec: oldSpec, state: oldState, stepAfter: state?.step ?? 0, replacesSession: entry.replacesSession)
  }
}

extension String {
  var nonEmpty: String? { isEmpty ? nil : self }
}
