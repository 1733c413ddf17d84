import Datasets
import Foundation
import SpecKit

/// The session as a document: the spec (with its journal and history), the training state when
/// no worker holds it, where it lives, and undo/redo. Edits are applied here with their state
/// mapping. A value: no training, no threads — `TrainingController` trains it and
/// `SessionEngine` puts the two together.
public struct SessionDocument: Sendable {
  public internal(set) var spec: SessionSpec
  /// The training state (nil: the seeded initial state).
  public internal(set) var state: TrainingState?
  /// Where the session was loaded from or last saved.
  public internal(set) var path: String?
  public internal(set) var hasUnsavedChanges = false
  var undoStack: [UndoEntry] = []
  var redoStack: [UndoEntry] = []

  public init(bundle: SessionBundle, path: String? = nil) {
    spec = bundle.spec
    state = bundle.spec.state == nil ? nil : try? bundle.trainingState()
    self.path = path
  }

  /// The session with its state, as a file holds it.
  public var bundle: SessionBundle { state.map { SessionBundle(spec: spec, state: $0) } ?? SessionBundle(spec: spec) }

  /// Another session in this one's place (`load`): undo goes back to this one.
  mutating func replace(with bundle: SessionBundle, path: String) {
    undoStack.append(
      UndoEntry(spec: spec, state: state, stepAfter: bundle.spec.state?.step ?? 0, replacesSession: true, path: self.path, loaded: true))
    redoStack.removeAll()
    spec = bundle.spec
    state = bundle.spec.state == nil ? nil : try? bundle.trainingState()
    self.path = path
    hasUnsavedChanges = false
  }

  /// Takes in what a training run ended with: its history and state.
  mutating func takeResult(of run: SessionBundle) {
    spec.history = run.spec.history
    state = try? run.trainingState()
    hasUnsavedChanges = true
  }

  /// Undoes (or redoes) the last change; the message says what the session is now.
  mutating func step(back isUndo: Bool) throws(CommandError) -> String {
    guard let entry = isUndo ? undoStack.popLast() : redoStack.popLast() else {
      throw CommandError("nothing to \(isUndo ? "undo" : "redo")")
    }
    // What is undone: the last command of the journal, or the load that brought this session.
    let undone = entry.loaded ? "load \(path ?? spec.name)" : spec.journal.last
    // Training since the change is kept (mapped onto the spec undone to); say so.
    let trained = entry.replacesSession ? nil : state.map(\.step).flatMap { $0 != entry.stepAfter ? $0 : nil }
    let back = restore(entry)
    if isUndo { redoStack.append(back) } else { undoStack.append(back) }
    hasUnsavedChanges = true
    let kept = trained.map { " (the state trained since, at step \($0), is kept)" } ?? ""
    if isUndo {
      return "undid \(undone ?? "the last change")\(kept); "
        + (spec.journal.last.map { "the last change is now \($0)" } ?? "no changes are left")
    }
    return "redid " + (entry.loaded ? "load \(path ?? spec.name)" : spec.journal.last ?? "the change")
  }

  /// Renames layers (and their state's tensors) so that SpecBench's own names follow the
  /// layers' order after an insert or a remove; says which, apart from `skipping` (the layer
  /// just inserted, whose message names it already).
  static func rename(_ spec: inout SessionSpec, _ state: inout TrainingState?, _ renames: [String: String], skipping: String? = nil)
    -> String
  {
    guard !renames.isEmpty else { return "" }
    for i in spec.model.layers.indices {
      if let new = renames[spec.model.layers[i].name] { spec.model.layers[i].name = new }
    }
    state = state?.renamingLayers(renames)
    let said = spec.model.layers.compactMap { layer in
      renames.first { $0.value == layer.name && $0.key != skipping }.map { "\($0.key) → \($0.value)" }
    }
    return said.isEmpty ? "" : "; renamed \(said.joined(separator: ", ")) to follow the order"
  }

  /// Applies one edit typed as in the workbench (`optimizer lbfgs line_search=strong_wolfe`),
  /// journaled, with the trained state mapped as the workbench maps it: what `specbench run
  /// --optimizer` does before it trains.
  public mutating func edit(_ line: String, folder: String) throws(CommandError) -> (message: String, events: [EngineEvent]) {
    guard case .edit(let edit, let typed)? = try CommandParser.parse(line) else {
      throw CommandError("\(TextExcerpt.short(line, limit: 60)) is not an edit of the spec")
    }
    return try apply(edit, line: typed, folder: folder, training: false, step: state?.step ?? 0)
  }

  /// Applies an edit: undo point, journal, state mapping. While training runs (`training`),
  /// only the edits that apply at a step boundary are allowed, and the worker maps the state.
  ///
  /// - Returns: what to tell the user, and the events of the state mapping.
  ///
  /// A schedule set on a session that has trained starts at its current step (`step`, the
  /// worker's while it trains), as a PyTorch scheduler counts from when it is created, unless
  /// the command gives `start=`.
  mutating func apply(_ command: Edit, line: String, folder: String, training: Bool, step: Int = 0) throws(CommandError) -> (
    message: String, events: [EngineEvent]
  ) {
    var events: [EngineEvent] = []
    if training && !command.appliesWhileTraining {
      throw CommandError("training is running; pause it (pause) or stop it (stop) before changing the model, data or loss")
    }
    let before = (spec: spec, state: state)
    var next = spec
    var nextState = state
    var message = ""
    switch command {
    case .new(let name, let input):
      next = SessionEngine.emptySpec(name: name, input: input ?? [2])
      nextState = nil
      message = "new session \(name) with input \(input ?? [2]); add layers, then train"
    case .input(let sizes):
      next.model.input = sizes
      message = "input \(sizes) (was \(spec.model.input))"
    case .variational(let json?):
      let variational = try parts { () throws(SpecError) in try SpecParts.variational(json) }
      next.model.variational = variational
      let problems = next.model.variationalIssues()
      if !problems.isEmpty { throw CommandError(problems.map(\.description).joined(separator: "\n")) }
      message =
        "variational \(variational.layers.joined(separator: ", ")): \(variational.summary)"
        + (spec.model.variational == nil && state != nil ? "; the trained weights are the means" : "")
    case .variational(nil):
      guard let old = spec.model.variational else { throw CommandError("variational off: the model has no variational layers") }
      next.model.variational = nil
      message = "variational off: \(old.layers.joined(separator: ", ")) keep their means as weights; the ρ's are dropped"
    case .data(let json):
      next.data = try parts { () throws(SpecError) in try SpecParts.data(json) }
      message = "data: \(next.data.source.summary)"
      // A data file is read when it is named, so a wrong path or a bad file is said now, not
      // at the next train.
      let files = next.data.source.files
      if !files.isEmpty {
        let dataSpec = next.data
        let folders = files.map { PathText.folder($0.hasPrefix("/") ? $0 : PathText.join(folder, $0)) }
        do {
          let samples = try DataAccess.allowing(folders) { () throws(DataError) in try DatasetLoader.load(dataSpec, relativeTo: folder) }
          message += " (\(samples.count) samples)"
        } catch {
          throw CommandError("data: \(error)")
        }
      }
      // Regression data with a classification loss cannot train: pick mse and say so.
      if case .csv(let csv) = next.data.source, csv.task == .regression,
        next.loss == .softmaxCrossEntropy || next.loss == .sigmoidBinaryCrossEntropy
      {
        next.loss = .mse
        message += "; loss mse for regression (was \(spec.loss.name); loss … chooses another)"
      }
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
      let renames = next.model.namesInOrder()
      message = "\(index == nil ? "added" : "inserted") \(renames[name!] ?? name!) (\(kind.typeName))"
      message += Self.rename(&next, &nextState, renames, skipping: name!)
    case .remove(let reference):
      let i = try layerIndex(reference)
      message = "removed \(next.model.layers[i].name)"
      next.model.layers.remove(at: i)
      message += Self.rename(&next, &nextState, next.model.namesInOrder())
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
      if json.objectValue?["start"] == nil { next.schedule.start = step }
      message =
        "schedule: \(next.schedule.summary)" + (step > 0 && json.objectValue?["start"] == nil ? " (counting from step \(step), now)" : "")
        + next.schedule.warnings(runFrom: step + 1, base: next.optimizer.learningRate).map { "\nwarning: " + $0 }.joined()
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

    // A posterior belongs to the model, loss, data and weights it was fitted to.
    if let posterior = next.posterior,
      next.model != spec.model || next.loss != spec.loss || next.data != spec.data || next.training.seed != spec.training.seed
    {
      next.posterior = nil
      if let kept = nextState?.tensors.filter({ StateKey(name: $0.key)?.isPosterior != true }) { nextState?.tensors = kept }
      let detail = "removed the \(posterior.subset.rawValue) Laplace posterior: it was fitted to the session before \(line)"
      events.append(EngineEvent(.posterior, detail))
      next.history.events.append(HistoryEvent(step: nextState?.step ?? 0, kind: "posterior", detail: detail))
    }
    // Sizes that cannot fit (or overflow) are refused before anything is allocated for them.
    let tooLarge = next.resourceProblems() + next.model.oversizedTensors()
    if !tooLarge.isEmpty { throw CommandError(tooLarge.map(\.description).joined(separator: "\n")) }

    // Keep what the trained state can keep.
    if let current = nextState, !training {
      do {
        if next.model != spec.model {
          let mapped = try StateMapping.architectureChange(to: next, state: current)
          nextState = mapped.0
          let detail =
            "kept \(mapped.kept.isEmpty ? "nothing" : mapped.kept.joined(separator: ", ")); fresh \(mapped.fresh.isEmpty ? "nothing" : mapped.fresh.joined(separator: ", "))"
          events.append(EngineEvent(.model, detail))
          // An edit of a trained model is history: marked on the loss chart and saved.
          next.history.events.append(HistoryEvent(step: current.step, kind: "model", detail: "\(line): \(detail)"))
        } else if next.optimizer != spec.optimizer {
          let mapped = try StateMapping.optimizerChange(from: spec, to: next, state: current)
          nextState = mapped.0
          events.append(EngineEvent(.optimizer, mapped.detail))
          next.history.events.append(HistoryEvent(step: current.step, kind: "optimizer", detail: mapped.detail))
        }
      } catch {
        // The new model's shapes do not chain yet (a layer is still missing): keep no state
        // until they do, the tensors start from the seed.
        nextState = nil
        events.append(
          EngineEvent(
            .model, "the model's shapes do not chain (\(error.issues.first?.message ?? "\(error)")); the trained state was set aside"))
      }
    }
    if case .new = command {
      next.journal = [line]
    } else {
      next.journal = spec.journal + [line]
    }
    let replacesSession = if case .new = command { true } else { false }
    undoStack.append(
      UndoEntry(spec: before.spec, state: before.state, stepAfter: nextState?.step ?? 0, replacesSession: replacesSession, path: path))
    // A new session belongs to no file yet: `save` asks for a path rather than writing over
    // the previous session's.
    if replacesSession { path = nil }
    redoStack.removeAll()
    // A data file the user names here is theirs to read, wherever it is (a session file's
    // paths are limited to its folder; see DataAccess): allowed once the change is made.
    if case .data = command {
      for file in next.data.source.files { DataAccess.allow(PathText.folder(file.hasPrefix("/") ? file : PathText.join(folder, file))) }
    }
    spec = next
    state = nextState
    hasUnsavedChanges = true
    return (message, events)
  }

  /// Attaches the posterior `bundle` carries (its spec's `posterior` and its state's tensors).
  mutating func attachPosterior(from bundle: SessionBundle, detail: String) {
    spec.posterior = bundle.spec.posterior
    state = try? bundle.trainingState()
    spec.history.events.append(HistoryEvent(step: state?.step ?? 0, kind: "posterior", detail: detail))
    hasUnsavedChanges = true
  }

  /// Removes the posterior, saying why; nil when there is none.
  mutating func dropPosterior(reason: String) -> EngineEvent? {
    guard let posterior = spec.posterior else { return nil }
    spec.posterior = nil
    if let kept = state?.tensors.filter({ StateKey(name: $0.key)?.isPosterior != true }) { state?.tensors = kept }
    let detail = "removed the \(posterior.subset.rawValue) Laplace posterior: \(reason)"
    spec.history.events.append(HistoryEvent(step: state?.step ?? 0, kind: "posterior", detail: detail))
    hasUnsavedChanges = true
    return EngineEvent(.posterior, detail)
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
  /// Where that session lives, for an entry that replaces the session (`new`, `load`): undoing
  /// a load must not leave the old session pointed at the loaded file.
  var path: String? = nil
  /// Whether the entry is a `load` (rather than a `new`), for the message of undo and redo.
  var loaded = false
}

extension SessionDocument {
  /// Goes back to `entry` and returns the entry that comes back here. With no training since
  /// the change (or for a whole other session), the spec and state are restored exactly;
  /// otherwise the spec change is reverted on the current state — training is not undone, and
  /// tensors are kept as any edit keeps them.
  mutating func restore(_ entry: UndoEntry) -> UndoEntry {
    let (oldSpec, oldState, oldPath) = (spec, state, path)
    let trainedSince = (state?.step ?? 0) != entry.stepAfter
    if entry.replacesSession || !trainedSince {
      let history = spec.history
      (spec, state) = (entry.spec, entry.state)
      if entry.replacesSession { path = entry.path } else { spec.history = history }
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
    return UndoEntry(
      spec: oldSpec, state: oldState, stepAfter: state?.step ?? 0, replacesSession: entry.replacesSession, path: oldPath,
      loaded: entry.loaded)
  }
}
