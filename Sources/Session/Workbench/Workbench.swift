import Backends
import Foundation
import SpecKit
import TermPlot

/// Several runs in one workbench: each a `SessionEngine` with its own training worker, one of
/// them current. Front ends hold a workbench and send every command line here: the commands
/// over runs (`fork`, `runs`, `switch`, `drop`, `sweep`, `compare`) are answered here, a `save`
/// of several runs writes a workspace folder (`saveWorkspace`, `WorkspaceIndex`), and every
/// other command goes to the current run's engine. Used from one thread (the front end's), as an engine is.
///
/// Runs train at once, each on its own worker thread. With more training runs than cores, the
/// system's scheduler shares the cores between the workers equally, and each trainer keeps to
/// one core meanwhile (`TrainingLoad`): no second-core helper and OpenBLAS on one thread, so
/// that no run's helper spins on a core another run's worker needs.
public final class Workbench {
  /// One run: its name (also the stem of its file in a workspace folder) and its engine.
  public final class Run {
    public let name: String
    public let engine: SessionEngine

    init(name: String, engine: SessionEngine, timeline: [TimelinePoint] = []) {
      (self.name, self.engine) = (name, engine)
      if !timeline.isEmpty { (engine.training.timeline, engine.training.trainedSeconds) = (timeline, timeline.last!.seconds) }
    }

    /// Its steps against the seconds it has trained (here, and in the workbench that saved it),
    /// for `compare --by time`.
    public var timeline: [TimelinePoint] { engine.training.timeline }
  }

  public internal(set) var runs: [Run]
  public internal(set) var currentIndex = 0
  /// The workspace folder the runs were opened from or last saved to.
  public internal(set) var folder: String?
  let backends: BackendRegistry
  let clock = ContinuousClock()
  var pendingEvents: [EngineEvent] = []
  /// Each resting run's loss as a chart series, with the history's length and last point it
  /// was made from (`lossSeries`).
  var seriesCache: [String: (count: Int, last: MetricPoint, series: LineChart.Series)] = [:]

  /// The largest sweep run without `--force`; with it, the runs a workbench holds at most (what
  /// a workspace index holds, `WorkspaceIndex.runLimit`) bound it.
  public static let sweepLimit = 16

  /// A workbench holding one run.
  public init(_ engine: SessionEngine, name: String? = nil) {
    runs = [Run(name: name ?? Self.runName(from: engine.spec.name), engine: engine)]
    backends = engine.backends
  }

  init(runs: [Run], current: Int, folder: String?, backends: BackendRegistry) {
    (self.runs, self.currentIndex, self.folder, self.backends) = (runs, current, folder, backends)
  }

  /// The built-in default session in a workbench of one run.
  public static func withDefaultSession(backends: BackendRegistry = .builtIn) -> Workbench {
    Workbench(SessionEngine.withDefaultSession(backends: backends))
  }

  public var current: SessionEngine { runs[currentIndex].engine }
  public var currentName: String { runs[currentIndex].name }

  public func run(named name: String) -> Run? { runs.first { $0.name == name } }

  /// How many runs are training now.
  public var trainingCount: Int { runs.filter { $0.engine.isTraining }.count }
  /// Whether any run is still training.
  public var isTraining: Bool { runs.contains { $0.engine.isTraining } }
  /// Whether any run has work not saved.
  public var hasUnsavedChanges: Bool { runs.contains { $0.engine.hasUnsavedChanges } }
  /// The runs with work not saved.
  public var unsavedRuns: [String] { runs.filter { $0.engine.hasUnsavedChanges }.map(\.name) }

  /// A run name made from a session's name: the characters a run name may not hold become `_`.
  static func runName(from text: String) -> String {
    var name = String(
      text.unicodeScalars.prefix(WorkspaceIndex.nameLimit).map { WorkspaceIndex.isRunNameCharacter($0) ? Character($0) : "_" })
    while name.hasPrefix(".") || name.hasPrefix("-") { name.removeFirst() }
    return name.isEmpty ? "run" : name
  }

  /// `name`, or `name-2`, `name-3`, … : the first not in `taken`.
  static func unused(_ name: String, among taken: Set<String>) -> String {
    guard taken.contains(name) else { return name }
    let stem = String(name.prefix(WorkspaceIndex.nameLimit - 4))
    var n = 2
    while taken.contains(stem + "-\(n)") { n += 1 }
    return stem + "-\(n)"
  }

  // MARK: commands

  /// Parses and runs one command line; a failed command leaves every run as it was.
  public func execute(_ line: String) -> CommandOutcome { CommandParser.run(line, perform: perform, blank: refresh) }

  /// Runs a typed command: the workbench's own, a save of several runs, or the current run's.
  public func perform(_ command: Command) -> CommandOutcome {
    refresh()
    do {
      switch command {
      case .runs(let runCommand): return try perform(runCommand)
      case .file(.save(let target)) where runs.count > 1 || folder != nil:
        return .done(try saveWorkspace(to: target))
      default: return current.perform(command)
      }
    } catch {
      return .failed(error.message)
    }
  }

  func perform(_ command: RunCommand) throws(CommandError) -> CommandOutcome {
    switch command {
    case .fork(let name, let step): return .done(try fork(name, fromStep: step))
    case .list: return .done(listText())
    case .switchTo(let name):
      guard let index = runs.firstIndex(where: { $0.name == name }) else { throw unknownRun(name, "switch") }
      let previous = currentName
      currentIndex = index
      return .done(index == runs.firstIndex { $0.name == previous } ? "\(name) is the current run" : "switched from \(previous) to \(name)")
    case .drop(let name, let force): return .done(try drop(name, force: force))
    case .sweep(let axes, let force): return .done(try sweep(axes, force: force))
    case .compare(let names, let axis):
      let chosen =
        try names.isEmpty
        ? runs
        : names.map { name throws(CommandError) -> Run in
          guard let run = run(named: name) else { throw unknownRun(name, "compare") }
          return run
        }
      return .drawing(.comparison(Comparison(chosen.map { compared($0) }, by: axis)))
    }
  }

  func unknownRun(_ name: String, _ command: String) -> CommandError {
    CommandError(
      "\(command): no run named \(TextExcerpt.quoted(name)); runs: \(runs.map(\.name).joined(separator: ", "))"
        + (Suggestion.nearest(to: name, in: runs.map(\.name)).map { " — did you mean \"\($0)\"?" } ?? ""))
  }

  /// A run as `compare` sees it: its live history while it trains.
  /// With `lastPointsOnly`, each metric's last point alone (what `runs` shows): a live history's
  /// whole copy would cost as much as the run is long.
  func compared(_ run: Run, lastPointsOnly: Bool = false) -> ComparedRun {
    let engine = run.engine
    let live = engine.training.liveSnapshot
    var spec = engine.spec
    if let live {
      if lastPointsOnly {
        spec.history = HistorySpec()
        for (metric, log) in live.logs { if let last = log.last { spec.history[metric] = [last] } }
      } else {
        spec.history = live.history
      }
    }
    return ComparedRun(
      name: run.name, spec: spec, status: engine.trainingStatus.rawValue, step: live?.step ?? engine.state?.step ?? 0,
      stepsPerSecond: live?.stepsPerSecond, timeline: run.timeline)
  }

  /// `runs`: a table of every run, the current one marked, and how the cores are shared.
  func listText() -> String {
    let rows = runs.enumerated().map { index, run -> [String] in
      let row = Comparison.metricRow(compared(run, lastPointsOnly: true))
      return [index == currentIndex ? "*" : " ", row[0], run.engine.spec.backend] + row.dropFirst()
    }
    let table = Table.render(
      header: ["", "run", "backend"] + Comparison.metricHeader.dropFirst(), rows: rows,
      alignments: [.left, .left, .left, .left] + Array(repeating: .right, count: 5)
    ).plainText
    let training = trainingCount
    let cores = ProcessInfo.processInfo.activeProcessorCount
    var lines = [table, "\(runs.count) run\(runs.count == 1 ? "" : "s"), \(training) training; * is the current run (switch NAME)"]
    if training > 1 {
      lines.append(
        "\(training) runs share \(cores) core\(cores == 1 ? "" : "s"): each run's trainer keeps to one core while others train, and the system shares the cores between their workers equally"
      )
    }
    return lines.joined(separator: "\n")
  }

  /// `drop NAME`: removes a run; one with unsaved work only with `--force`; the last run never.
  func drop(_ name: String, force: Bool) throws(CommandError) -> String {
    guard let index = runs.firstIndex(where: { $0.name == name }) else { throw unknownRun(name, "drop") }
    guard runs.count > 1 else { throw CommandError("drop: \(name) is the only run; a workbench keeps one (new or load replace it)") }
    let engine = runs[index].engine
    guard force || !engine.hasUnsavedChanges else {
      throw CommandError(
        "drop: \(name) has unsaved work\(engine.isTraining ? " and is training" : ""); switch \(name) then save PATH keeps it, or drop \(name) --force discards it"
      )
    }
    if engine.isTraining { _ = engine.perform(.training(.stop)) }
    runs.remove(at: index)
    seriesCache[name] = nil
    if currentIndex > index || currentIndex == runs.count { currentIndex -= 1 }
    return "dropped \(name); the current run is \(currentName)"
  }

  // MARK: events and time

  /// Takes in what every run's worker published (a finished run's session, a point of each
  /// training run's timeline).
  public func refresh() {
    for run in runs {
      run.engine.training.sampleTimeline()
      run.engine.refresh()
    }
  }

  /// Events since the last call from every run, oldest first within a run: the current run's
  /// as they are, another run's with its name (`[stopped] lr=0.01: stopped by max_steps …`).
  public func takeEvents() -> [EngineEvent] {
    refresh()
    var events = pendingEvents
    pendingEvents.removeAll()
    for (index, run) in runs.enumerated() {
      let taken = run.engine.takeEvents()
      events += index == currentIndex ? taken : taken.map { EngineEvent($0.kind, "\(run.name): \($0.text)") }
    }
    return events
  }

  /// Stops every run's training and waits until each worker has ended (quitting).
  public func stopAll() {
    for run in runs where run.engine.isTraining { _ = run.engine.perform(.training(.stop)) }
    while isTraining { Thread.sleep(forTimeInterval: 0.01) }
    refresh()
  }

  /// Saves a recovery copy of every run with unsaved work (SIGTERM, SIGHUP); one line each.
  public func saveRecoveryCopies() -> [String] {
    runs.filter { $0.engine.hasUnsavedChanges }.map { run in
      switch run.engine.saveRecoveryCopy() {
      case .success(let path): "unsaved changes in \(run.name) were saved to \(path) (load \(path) brings them back)"
      case .failure(let error): "unsaved changes in \(run.name) could not be saved: \(error.message)"
      }
    }
  }

  /// The prompt's and status bar's account of the runs: `run 2/3 · 2 training`, or nil for a
  /// workbench of one run.
  public var runsSummary: String? {
    guard runs.count > 1 else { return nil }
    return "run \(currentIndex + 1)/\(runs.count) · \(trainingCount) training"
  }
}

/// A run as the dashboard's runs pane lists it: cheap to make at every frame.
public struct RunRow: Hashable, Sendable {
  public var name: String
  public var backend: String
  public var status: TrainingStatus
  public var step: Int
  public var loss: Float?
  public var isCurrent: Bool

  public init(name: String, backend: String, status: TrainingStatus, step: Int, loss: Float?, isCurrent: Bool) {
    (self.name, self.backend, self.status, self.step, self.loss, self.isCurrent) = (name, backend, status, step, loss, isCurrent)
  }
}

extension Workbench {
  /// Every run's row, in order.
  public var rows: [RunRow] {
    runs.enumerated().map { index, run in
      let engine = run.engine
      let live = engine.training.liveSnapshot
      return RunRow(
        name: run.name, backend: engine.spec.backend, status: live?.status ?? engine.trainingStatus,
        step: live?.step ?? engine.state?.step ?? 0, loss: live?.lastLoss ?? engine.spec.history.trainLoss.last?.value,
        isCurrent: index == currentIndex)
    }
  }

  /// A run's batch loss as a chart series named after the run: its live log while it trains
  /// (read by summaries, however long), its recorded points otherwise; nil without points.
  public func lossSeries(of name: String) -> LineChart.Series? {
    guard let run = run(named: name) else { return nil }
    if let log = run.engine.training.liveSnapshot?.logs[.trainLoss], log.count > 0 { return LineChart.Series(name: name, summarized: log) }
    let points = run.engine.spec.history.trainLoss
    guard let last = points.last else { return nil }
    // Built once for a run at rest (a frame asks 15 times a second), again when it changed.
    if let cached = seriesCache[name], cached.count == points.count, cached.last == last { return cached.series }
    let series = LineChart.Series(name: name, points: points.map { LineChart.Point(Double($0.step), Double($0.value)) })
    seriesCache[name] = (points.count, last, series)
    return series
  }

  /// Runs a typed command on the run named `name` rather than the current one (the dashboard's
  /// runs pane starts and pauses the run it has selected).
  public func perform(_ command: Command, onRun name: String) -> CommandOutcome {
    guard let run = run(named: name) else {
      return .failed(unknownRun(name, command.text.split(separator: " ").first.map(String.init) ?? "").message)
    }
    refresh()
    return run.engine.perform(command)
  }
}
