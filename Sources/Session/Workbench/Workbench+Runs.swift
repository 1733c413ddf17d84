import Backends
import Foundation
import SpecKit

extension Workbench {
  // MARK: fork

  /// `fork NAME [--from-step K]`: a new run with the current run's spec and state (at its next
  /// step boundary while it trains), made current. With `K` before the run's step, the state of
  /// step K is made again: the run's spec trained K steps from its seeded initial state, kept
  /// only when the replay's recorded losses up to K equal the run's own, bit for bit (else the
  /// run changed on the way — an edit, a swap, a load — and the fork is refused with the first
  /// step that differs).
  func fork(_ name: String, fromStep: Int?) throws(CommandError) -> String {
    guard run(named: name) == nil else { throw CommandError("fork: a run named \(name) exists; runs lists them") }
    guard runs.count < WorkspaceIndex.runLimit else {
      throw CommandError("fork: the workbench holds \(runs.count) runs, as many as a workspace holds; drop some first")
    }
    let sourceEngine = current
    var bundle = try sourceEngine.currentBundle(for: "fork")
    let step = bundle.spec.state?.step ?? 0
    var note = ""
    if let k = fromStep, k != step {
      guard k < step else {
        throw CommandError("fork: \(currentName) is at step \(step); --from-step takes a step from 0 to \(step)")
      }
      let began = clock.now
      bundle = try replay(bundle, to: k, folder: sourceEngine.folder)
      note = " (replayed from step 0 in \(ProgressLine.duration((clock.now - began) / .seconds(1))); its recorded losses matched)"
    }
    let at = bundle.spec.state?.step ?? 0
    bundle.spec.name = name
    bundle.spec.history.events.append(HistoryEvent(step: at, kind: "fork", detail: "forked from \(currentName) at step \(at)"))
    bundle.spec.data.source = bundle.spec.data.source.rebased(
      from: PathText.absolute(sourceEngine.folder, from: FileManager.default.currentDirectoryPath),
      to: FileManager.default.currentDirectoryPath)
    let engine = try makeEngine(bundle)
    let previous = currentName
    // The fork's history is the source's up to `at`, and so is its training time.
    let source = runs[currentIndex]
    var timeline = source.timeline.filter { $0.step < at }
    if let seconds = source.timeline.seconds(at: at) { timeline.append(TimelinePoint(step: at, seconds: seconds)) }
    runs.append(Run(name: name, engine: engine, timeline: timeline))
    currentIndex = runs.count - 1
    return "forked \(previous) at step \(at) into \(name), now the current run\(note); switch \(previous) goes back"
  }

  /// An engine on a session that lives only in memory (no file yet): the state held by the
  /// document, the spec's state record left to the first save (a state exported from a worker
  /// has no file names yet).
  func makeEngine(_ bundle: SessionBundle) throws(CommandError) -> SessionEngine {
    var spec = bundle.spec
    var state: TrainingState?
    if spec.state != nil {
      do { state = try bundle.trainingState() } catch { throw CommandError("\(error)") }
    }
    spec.state = nil
    let engine = SessionEngine(bundle: SessionBundle(spec: spec), backends: backends)
    engine.document.state = state
    engine.document.hasUnsavedChanges = true
    return engine
  }

  /// The session at step `k`, made again: trained from the seeded initial state with the spec
  /// the run had then — the current one, or one undo holds from before a change (newest first,
  /// at most 8) — and kept only when the replay's recorded losses up to `k` equal the run's
  /// own, bit for bit. A candidate stops at its first differing loss, so a wrong one costs
  /// little. The fork gets the spec that matched, its history up to `k`.
  func replay(_ bundle: SessionBundle, to k: Int, folder: String) throws(CommandError) -> SessionBundle {
    let recorded = bundle.spec.history
    guard k == 0 || recorded.trainLoss.contains(where: { $0.step <= k }) else {
      throw CommandError(
        "fork: \(currentName) has no recorded losses up to step \(k) to check a replay against; fork from its current step")
    }
    func settings(_ spec: SessionSpec) -> String {
      var spec = spec
      (spec.name, spec.state, spec.history, spec.journal, spec.posterior) = ("", nil, HistorySpec(), [], nil)
      return spec.canonicalText
    }
    var candidates = [bundle.spec]
    for entry in current.document.undoStack.reversed() where !entry.replacesSession && candidates.count < 8 {
      if !candidates.contains(where: { settings($0) == settings(entry.spec) }) { candidates.append(entry.spec) }
    }
    var latest = 0
    for (index, candidate) in candidates.enumerated() {
      // An older spec that cannot train at all (one from while the model was being built) is
      // not the one the run trained with; the current spec's problem is said.
      let outcome: Result<TrainingState, Differs>
      do { outcome = try replayOnce(candidate, to: k, against: recorded, folder: folder) } catch {
        if index == 0 { throw error }
        continue
      }
      switch outcome {
      case .success(let state):
        var spec = candidate
        (spec.name, spec.history, spec.posterior, spec.state) = (bundle.spec.name, recorded, nil, nil)
        spec.history.truncate(after: k)
        spec.history.events.removeAll { $0.step > k }
        return SessionBundle(spec: spec, state: state)
      case .failure(let differs): latest = max(latest, differs.step)
      }
    }
    throw CommandError(
      "fork: \(currentName)'s history cannot be replayed exactly to step \(k): with every spec the run had, the losses differ from step \(latest) on (it changed there in a way a replay cannot repeat: a backend swap, a load, a change made while training); fork from step \(max(0, latest - 1)) or before, or from its current step"
    )
  }

  struct Differs: Error { var step: Int }

  /// One replay of `spec` to step `k`: its state, or the first step whose recorded value
  /// differs from `recorded`.
  func replayOnce(_ spec: SessionSpec, to k: Int, against recorded: HistorySpec, folder: String) throws(CommandError) -> Result<
    TrainingState, Differs
  > {
    var start = spec
    (start.state, start.history, start.posterior) = (nil, HistorySpec(), nil)
    let backend: any Backend
    do { backend = try backends.named(start.backend) } catch { throw CommandError("fork: \(error)") }
    let replay: TrainingRun
    do { replay = try TrainingRun(bundle: SessionBundle(spec: start), folder: folder, backend: backend, recordLoad: false) } catch {
      throw CommandError("fork: cannot replay \(currentName): \(error)")
    }
    let losses = Dictionary(recorded.trainLoss.map { ($0.step, $0.value.bitPattern) }, uniquingKeysWith: { $1 })
    var differs: Int?
    if k > 0 {
      let summary = replay.run(
        extraSteps: k, shouldStop: { differs != nil },
        onEvent: { event in
          if case .step(let result) = event, differs == nil, let value = losses[result.step], value != result.loss.bitPattern {
            differs = result.step
          }
        })
      if let differs { return .failure(Differs(step: differs)) }
      guard summary.reason == .steps, summary.step == k else { return .failure(Differs(step: summary.step)) }
    }
    let replayed = replay.spec.history
    for metric in Metric.allCases {
      let keep = { (point: MetricPoint) in point.step < k || (point.step == k && metric == .trainLoss) }
      let (mine, again) = (recorded[metric].filter(keep), replayed[metric].filter(keep))
      if mine != again {
        return .failure(Differs(step: zip(mine, again).first { $0 != $1 }.map { $0.0.step } ?? min(mine.count, again.count)))
      }
    }
    do { return .success(try replay.bundle.trainingState()) } catch { throw CommandError("fork: \(error)") }
  }

  // MARK: sweep

  /// `sweep FIELD=V1,V2,… …`: one run a combination of the values, each from the seeded
  /// initial weights of the current spec with those fields set (so that the runs compare
  /// fairly), named after its values, all started at once. Every combination is read and
  /// validated by the format's own reader first: one bad value and no run is made.
  func sweep(_ axes: [SweepAxis], force: Bool) throws(CommandError) -> String {
    // Saturating: a grid whose count overflows is refused below, never enumerated.
    let count = axes.reduce(1) { product, axis in
      let (next, overflow) = product.multipliedReportingOverflow(by: axis.values.count)
      return overflow ? Int.max : next
    }
    guard count <= WorkspaceIndex.runLimit - runs.count else {
      throw CommandError(
        "sweep: \(count == Int.max ? "more than 2^63" : String(count)) runs beside the \(runs.count) there are is more than a workbench holds (\(WorkspaceIndex.runLimit), what a workspace saves); sweep fewer values or drop runs"
      )
    }
    guard count <= Self.sweepLimit || force else {
      throw CommandError(
        "sweep: \(count) runs is more than \(Self.sweepLimit) at once; add --force to train them all, or sweep fewer values")
    }
    let source = current
    var base = source.spec
    (base.state, base.history, base.posterior) = (nil, HistorySpec(), nil)
    let root = base.json
    let keys = Self.sweepKeys(axes)
    var made: [(name: String, spec: SessionSpec)] = []
    var names = Set(runs.map(\.name))
    for combination in Self.combinations(axes.map { $0.values.count }) {
      var json = root
      for (axis, choice) in zip(axes, combination) {
        json = try Self.setting(axis.values[choice], at: axis, in: json)
      }
      var spec: SessionSpec
      let label = zip(axes, combination).map { "\($0.field)=\($0.texts[$1])" }.joined(separator: " ")
      do { spec = try SessionSpec.decode(json, defaultName: base.name) } catch {
        throw CommandError("sweep: \(label): \(error.description)")
      }
      if let issue = spec.validate().first { throw CommandError("sweep: \(label): \(issue)") }
      if let backend = try? backends.named(spec.backend), let unsupported = backend.capabilities.unsupported(in: spec).first {
        throw CommandError("sweep: \(label): the \(backend.name) backend cannot train \(unsupported)")
      }
      let name = Self.unused(
        Self.runName(from: zip(keys, zip(axes, combination)).map { "\($0)=\($1.0.texts[$1.1])" }.joined(separator: ",")), among: names)
      names.insert(name)
      spec.name = name
      spec.journal.append("# sweep of \(currentName): \(label)")
      spec.history.events.append(HistoryEvent(step: 0, kind: "sweep", detail: "swept from \(currentName): \(label)"))
      spec.data.source = spec.data.source.rebased(
        from: PathText.absolute(source.folder, from: FileManager.default.currentDirectoryPath), to: FileManager.default.currentDirectoryPath
      )
      made.append((name, spec))
    }
    var lines = ["sweep of \(currentName): \(made.count) run\(made.count == 1 ? "" : "s"), each from its seeded initial weights"]
    for (name, spec) in made {
      let engine = try makeEngine(SessionBundle(spec: spec))
      runs.append(Run(name: name, engine: engine))
      switch engine.perform(.training(.train(steps: nil, wait: false))) {
      case .failed(let why): lines.append("  \(name): not started: \(why)")
      default: lines.append("  \(name): training")
      }
    }
    lines.append("runs lists them, compare overlays their losses, switch NAME makes one current")
    return lines.joined(separator: "\n")
  }

  /// The short name of each axis in a run's name: the field's last key (`lr`, `units`), or the
  /// whole field when two axes share it.
  static func sweepKeys(_ axes: [SweepAxis]) -> [String] {
    let last = axes.map { axis in
      axis.path.components.reversed().lazy.compactMap { if case .key(let key) = $0 { key } else { nil } }.first ?? axis.field
    }
    return zip(axes, last).map { axis, key in last.filter { $0 == key }.count > 1 ? axis.field : key }
  }

  /// Every combination of one choice per axis, the last axis fastest.
  static func combinations(_ counts: [Int]) -> [[Int]] {
    counts.reduce([[]]) { partial, count in partial.flatMap { prefix in (0..<count).map { prefix + [$0] } } }
  }

  /// `root` with `value` at the axis's path: from the spec's top level, or else under `model`.
  /// The path must name a field the spec has (every field is written, defaults too).
  static func setting(_ value: JSONValue, at axis: SweepAxis, in root: JSONValue) throws(CommandError) -> JSONValue {
    let components = axis.path.components
    let topKeys = root.objectValue?.keys ?? []
    let path: [JSONPath.Component]
    let modelKeys = root.objectValue?["model"]?.objectValue?.keys ?? []
    if case .key(let first)? = components.first, topKeys.contains(first) {
      path = components
    } else if case .key(let first)? = components.first, modelKeys.contains(first) {
      path = [.key("model")] + components
    } else {
      let settings = topKeys.filter { !Comparison.notSettings.contains($0) }
      throw CommandError(
        "sweep: \(axis.field): the spec has no field \(axis.field.prefix { $0 != "." && $0 != "[" }); a field starts with one of \(settings.joined(separator: ", ")), or a model field: \(modelKeys.joined(separator: ", "))"
          + (Suggestion.nearest(to: String(axis.field.prefix { $0 != "." && $0 != "[" }), in: settings + modelKeys).map {
            " — did you mean \"\($0)\"?"
          } ?? ""))
    }
    var missing: String?
    func set(_ node: JSONValue, _ rest: ArraySlice<JSONPath.Component>, _ at: String) -> JSONValue {
      guard let component = rest.first else { return value }
      switch (component, node.kind) {
      case (.key(let key), .object(var object)):
        guard let index = object.members.firstIndex(where: { $0.key == key }) else {
          missing = "\(at.isEmpty ? "the spec" : at) has no field \(key) (it has \(object.keys.joined(separator: ", ")))"
          return node
        }
        object.members[index].value = set(object.members[index].value, rest.dropFirst(), at.isEmpty ? key : at + "." + key)
        return JSONValue(.object(object))
      case (.index(let index), .array(var elements)):
        guard elements.indices.contains(index) else {
          missing = "\(at) has \(elements.count) entries; index \(index) is past them"
          return node
        }
        elements[index] = set(elements[index], rest.dropFirst(), at + "[\(index)]")
        return JSONValue(.array(elements))
      default:
        missing = "\(at.isEmpty ? "the spec" : at) is \(node.typeDescription), not \(component.isKey ? "an object" : "a list")"
        return node
      }
    }
    let result = set(root, path[...], "")
    if let missing { throw CommandError("sweep: \(axis.field): \(missing)") }
    return result
  }
}

extension JSONPath.Component {
  var isKey: Bool { if case .key = self { true } else { false } }
}
