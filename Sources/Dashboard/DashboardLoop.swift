import Foundation
import Session
import SpecKit
import Synchronization
import TermPlot

/// The dashboard's redraw loop: reads keys, runs their commands through the engine, and draws
/// the latest snapshot about 15 times a second (less often when a frame takes long to draw), on
/// the calling thread (the only one that touches curses). Training runs on the engine's worker
/// throughout and is never waited for.
public enum DashboardLoop {
  /// Time between frames.
  static let frameInterval = Duration.milliseconds(66)
  /// A frame may take at most this share of the time between frames: a run with millions of
  /// recorded steps, whose chart takes longer to draw, is drawn less often, so the dashboard's
  /// thread never takes more than about an eighth of a core from training.
  static let frameBudget = 8

  /// Runs until `q` (or `shouldStop` says so, for a hang-up or SIGTERM); the terminal is restored
  /// before it returns. `state` is where the dashboard starts (a fresh `DashboardState` the first
  /// time) and holds, when it returns, where it was left — focus, selection, smoothing, theme,
  /// log — for the next opening. Returns lines for the REPL to print afterwards: problems with
  /// themes, and every event that happened while the dashboard was open.
  public static func run(
    bench: Workbench, themes: ThemeLibrary, themeName: String? = nil, state: inout DashboardState,
    shouldStop: () -> Bool = { false }
  ) -> [String] {
    let firstOpening = state.log.isEmpty && state.commandHistory.isEmpty
    state.themeIndex = min(state.themeIndex, themes.themes.count - 1)
    state.commandLine = nil
    state.showsHelp = false
    if let themeName, let index = themes.themes.firstIndex(where: { $0.name == themeName }) { state.themeIndex = index }
    var afterwards: [String] = []
    if let themeName, themes.named(themeName) == nil {
      let names = themes.themes.map(\.name)
      let line = "[theme] no theme named \"\(themeName)\"; themes: \(names.joined(separator: ", "))"
      state.appendLog([line])
      afterwards.append(line)
    }
    for problem in themes.problems where firstOpening {
      state.appendLog(problem.split(separator: "\n").map { "[error] " + $0 })
      state.message = "a theme file could not be used (see events); using the others"
      state.messageIsError = true
      afterwards.append(problem)
    }
    let screen: CursesScreen
    do { screen = try CursesScreen(theme: themes.themes[state.themeIndex]) } catch {
      return afterwards + ["error: \(error.description)"]
    }
    // Gradient statistics are measured for the run on screen (the current one) only.
    var measured = bench.current
    measured.measuresTensorStatistics = true
    defer {
      screen.close()
      measured.measuresTensorStatistics = false
    }
    let clock = ContinuousClock()
    var lastFrame = clock.now - frameInterval
    var interval = frameInterval
    var themeIndex = state.themeIndex
    // The last frame drawn: a command reading a large file draws its progress over it.
    var frame: Grid?
    loop: while !shouldStop() {
      var keyed = false
      // Every key waiting, then a frame when one is due (or a key changed something).
      while case let input = screen.read(), !isNone(input) {
        switch input {
        case .resize:
          screen.invalidate()
          keyed = true
        case .key(let key):
          keyed = true
          for action in state.handle(key, context: context(bench, themes)) {
            switch action {
            case .close: break loop
            case .repaint: screen.invalidate()
            case .execute(let line): show(running({ bench.execute(line) }, on: screen, over: frame), for: line, state: &state)
            case .perform(let command):
              show(running({ bench.perform(command) }, on: screen, over: frame), for: command.text, state: &state)
            case .performOnRun(let name, let command):
              show(
                running({ bench.perform(command, onRun: name) }, on: screen, over: frame), for: "\(name): \(command.text)", state: &state)
            }
          }
          if measured !== bench.current {
            measured.measuresTensorStatistics = false
            measured = bench.current
            measured.measuresTensorStatistics = true
          }
        case .none: break
        }
        if case .key = input { continue }
        break
      }
      if state.themeIndex != themeIndex {
        themeIndex = state.themeIndex
        screen.apply(themes.themes[themeIndex])
      }
      guard keyed || clock.now - lastFrame >= interval else { continue }
      lastFrame = clock.now
      // Events go to the log here and, on return, to the REPL, which prints them above its prompt.
      let events = bench.takeEvents().map(\.line)
      state.appendLog(events)
      afterwards += events
      let size = screen.size
      let engine = bench.current
      var input = DashboardInput(
        spec: engine.spec, snapshot: engine.snapshot, hasUnsavedChanges: engine.hasUnsavedChanges, themeName: themes.themes[themeIndex].name
      )
      input.runs = bench.runs.count > 1 ? bench.rows : []
      state.overlaid.removeAll { bench.run(named: $0) == nil || $0 == bench.currentName }
      input.overlay = state.overlaid.compactMap { name in
        bench.lossSeries(of: name).map { series in
          var series = series
          series.colour = 1 + (bench.runs.firstIndex { $0.name == name } ?? 0)
          return series
        }
      }
      frame = DashboardView.render(input, state: state, width: size.width, height: size.height, charset: screen.charset)
      screen.draw(frame!)
      interval = max(frameInterval, (clock.now - lastFrame) * frameBudget)
    }
    let last = bench.takeEvents().map(\.line)
    state.appendLog(last)
    return afterwards + last
  }

  static func isNone(_ input: CursesScreen.Input) -> Bool { if case .none = input { true } else { false } }

  /// Runs a command. A large data file it reads shows how far it has got on the bottom line of
  /// `frame`, and Ctrl-C or Esc stops the read: the command then fails and the session is as it
  /// was. (Other keys typed during the read are dropped.)
  static func running(_ command: () -> CommandOutcome, on screen: CursesScreen, over frame: Grid?) -> CommandOutcome {
    let watch = LoadWatch(screen: screen, frame: frame)
    return LoadProgress.watching(report: watch.report, isCancelled: watch.isCancelled, during: command)
  }

  /// What the key map needs to know of the session now.
  static func context(_ bench: Workbench, _ themes: ThemeLibrary) -> DashboardState.Context {
    let engine = bench.current
    let spec = engine.spec
    let runNames = bench.runs.map(\.name)
    let backends = engine.availableBackendNames
    let logs = engine.snapshot.logs
    var context = DashboardState.Context(
      status: engine.trainingStatus, backend: spec.backend, backends: backends, themeCount: themes.themes.count,
      layerTensors: ((try? spec.model.layerShapes()) ?? []).map { DashboardInput.withSigmas($0.tensors.map(\.name)) },
      optimizerCommand: "optimizer " + spec.optimizer.summary,
      complete: { line in Completion.candidates(before: line, spec: spec, backends: backends, runs: runNames) ?? [] })
    context.runs = bench.runs.count > 1 ? bench.rows : []
    context.charts = HistoryPlots.Metrics.allCases.filter { $0 == .loss || $0.metrics.contains { (logs[$0]?.count ?? 0) > 0 } }
    return context
  }

  /// Shows a command's outcome in the message line and the log, as the REPL would print it.
  static func show(_ outcome: CommandOutcome, for command: String, state: inout DashboardState) {
    var lines = ["› " + command]
    switch outcome {
    case .done(let text):
      let result = text.split(separator: "\n").map(String.init)
      lines += result.prefix(40)
      state.message = result.first.map { result.count > 1 ? $0 + "  (more in the event pane)" : $0 } ?? command
      state.messageIsError = false
    case .failed(let text):
      let result = text.split(separator: "\n").map(String.init)
      lines += result.map { "error: " + $0 }
      state.message = "error: " + (result.first ?? text)
      state.messageIsError = true
    case .drawing:
      state.message = "plot, hist and filters draw in the REPL; here the loss and histogram panes show them"
      state.messageIsError = false
    case .waiting(let text):
      state.message = text
      state.messageIsError = false
    case .dashboard:
      state.message = "this is the dashboard"
      state.messageIsError = false
    case .quit:
      state.message = "q goes back to the REPL, where quit leaves SpecBench"
      state.messageIsError = false
    }
    state.appendLog(lines)
    state.logScroll = 0
  }
}

/// A data load seen from the dashboard: the load's threads store how far it has got; curses is
/// touched only on the dashboard's own thread, which takes part in every load (it runs the
/// command), so the bottom line is redrawn and the keys read whenever that thread reports.
final class LoadWatch: @unchecked Sendable {
  private let thread = pthread_self()
  private let screen: CursesScreen
  private let frame: Grid?
  private let latest = Mutex<(path: String, done: Int, total: Int)?>(nil)
  private let cancelled = Atomic<Bool>(false)
  /// When the bottom line was last drawn (the dashboard's thread only).
  private var drawn = ContinuousClock.now - .seconds(1)

  init(screen: CursesScreen, frame: Grid?) { (self.screen, self.frame) = (screen, frame) }

  private var onDashboardThread: Bool { pthread_equal(pthread_self(), thread) != 0 }

  func report(path: String, done: Int, total: Int) {
    latest.withLock { $0 = (path, done, total) }
    if onDashboardThread { draw() }
  }

  func isCancelled() -> Bool {
    if onDashboardThread {
      while case .key(let key) = screen.readNow() {
        if key == .interrupt || key == .escape { cancelled.store(true, ordering: .relaxed) }
      }
      draw()
    }
    return cancelled.load(ordering: .relaxed)
  }

  /// The last frame with the load's line at the bottom, at most ten times a second.
  private func draw() {
    guard ContinuousClock.now - drawn >= .milliseconds(100), var grid = frame, grid.height > 0,
      let (path, done, total) = latest.withLock({ $0 })
    else { return }
    drawn = ContinuousClock.now
    let text =
      cancelled.load(ordering: .relaxed)
      ? "stopping the read…" : LoadProgress.text(path: path, done: done, total: total) + "; Ctrl-C or Esc stops it"
    grid.write(text.padding(toLength: max(grid.width, text.count), withPad: " ", startingAt: 0), x: 0, y: grid.height - 1, role: .status)
    screen.draw(grid)
  }
}
