import Foundation
import Session
import SpecKit

/// A key as the dashboard understands it; the curses adapter translates curses' codes.
public enum DashboardKey: Hashable, Sendable {
  case character(Character)
  case up, down, left, right
  case tab, backTab
  case enter, backspace, escape
  /// Home (or Ctrl-A), End (or Ctrl-E), Delete.
  case home, end, delete
  /// Ctrl-U: delete from the line's start to the cursor. Ctrl-W: delete the word before it.
  case killLine, killWord
  /// Ctrl-C.
  case interrupt
  /// Ctrl-L: draw everything again.
  case redraw
}

/// What a key asks the dashboard's loop to do beyond changing the state.
public enum DashboardAction: Equatable, Sendable {
  /// Run a command line typed on the `:` line (the same language as the REPL).
  case execute(String)
  /// Run a typed command (what a key does: pause, resume, train, a backend).
  case perform(Command)
  /// Run a typed command on the named run rather than the current one (the runs pane).
  case performOnRun(String, Command)
  /// Back to the REPL.
  case close
  /// Repaint the whole screen.
  case repaint
}

/// The panes, in the order Tab moves the focus through them.
public enum DashboardPane: String, CaseIterable, Sendable {
  case loss, histogram, model, optimizer, events
  /// The workbench's runs: shown, and in the Tab order, only while it holds more than one.
  case runs
}

/// Everything the dashboard shows besides the session itself: focus, selection, chart settings,
/// theme, the help overlay, the command line, the event log. A value; keys change it through
/// `handle(_:context:)`, which is pure, so the key map is tested without a terminal.
public struct DashboardState: Sendable {
  public var focus = DashboardPane.loss
  /// The selected layer (index into the model's layers) and which of its tensors.
  public var selectedLayer = 0
  public var selectedTensor = 0
  /// TensorBoard smoothing of the loss chart.
  public var smoothing = 0.6
  public var logScale = false
  /// What the chart pane shows: the loss, or the accuracy, MAE or R² (`m` cycles).
  public var chart = HistoryPlots.Metrics.loss
  public var themeIndex = 0
  public var showsHelp = false
  /// The `:` command line while it is open (nil when closed). Setting it puts the cursor at its
  /// end; the keys that edit it place the cursor after.
  public var commandLine: String? {
    didSet { commandCursor = commandLine?.count ?? 0 }
  }
  /// Where the cursor is on the command line, in characters from its start.
  public var commandCursor = 0
  /// Commands entered on the command line, oldest first, and the position while browsing them.
  public var commandHistory: [String] = []
  var historyPosition: Int?
  /// The last command's result or a key's message, and whether it is an error.
  public var message: String?
  public var messageIsError = false
  /// Engine events and command results, oldest first (the last 500).
  public var log: [String] = []
  /// Lines scrolled back from the newest in the event pane.
  public var logScroll = 0
  /// The run selected in the runs pane (an index into the workbench's runs).
  public var selectedRun = 0
  /// The runs whose batch loss the loss pane overlays on the current run's (`v` in the runs
  /// pane), by name.
  public var overlaid: [String] = []

  /// The smoothing stops `s` and `S` move between.
  public static let smoothingStops = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99]

  public init() {}

  /// What a key handler needs to know about the session.
  public struct Context: Sendable {
    public var status: TrainingStatus
    public var backend: String
    public var backends: [String]
    public var themeCount: Int
    /// Tensors per layer, by layer index (`dense1.weight`, `dense1.bias`).
    public var layerTensors: [[String]]
    /// The optimizer as a command (`optimizer adam lr=0.001 …`), for `o`.
    public var optimizerCommand: String
    /// The charts with points to show (the loss always), for `m`.
    public var charts: [HistoryPlots.Metrics] = [.loss]
    /// Completion of a partial command line: the candidates for its last word.
    public var complete: @Sendable (String) -> [String]
    /// The workbench's runs (the runs pane shows when there are two or more), with what each
    /// is doing.
    public var runs: [RunRow] = []

    public init(
      status: TrainingStatus, backend: String, backends: [String], themeCount: Int, layerTensors: [[String]], optimizerCommand: String,
      complete: @escaping @Sendable (String) -> [String] = { _ in [] }
    ) {
      (self.status, self.backend, self.backends, self.themeCount, self.layerTensors, self.optimizerCommand, self.complete) = (
        status, backend, backends, themeCount, layerTensors, optimizerCommand, complete
      )
    }
  }

  /// The selected tensor's name, if the model has one there.
  public func selectedTensorName(in layerTensors: [[String]]) -> String? {
    guard layerTensors.indices.contains(selectedLayer) else { return nil }
    let tensors = layerTensors[selectedLayer]
    return tensors.isEmpty ? nil : tensors[min(selectedTensor, tensors.count - 1)]
  }

  /// Adds lines to the event log, keeping the last 500.
  public mutating func appendLog(_ lines: [String]) {
    log.append(contentsOf: lines)
    if log.count > 500 { log.removeFirst(log.count - 500) }
  }

  /// Applies a key; returns what the loop must do.
  public mutating func handle(_ key: DashboardKey, context: Context) -> [DashboardAction] {
    if commandLine != nil { return handleCommandLine(key, context: context) }
    if showsHelp {
      // Any key closes the help; q and Ctrl-C go on to do their own job.
      showsHelp = false
      if key != .character("q") && key != .interrupt { return [] }
    }
    message = nil
    messageIsError = false
    switch key {
    case .character(" ") where focus == .runs && context.runs.indices.contains(selectedRun):
      let run = context.runs[selectedRun]
      switch run.status {
      case .running: return [.performOnRun(run.name, .training(.pause))]
      case .paused: return [.performOnRun(run.name, .training(.resume))]
      case .idle: return [.performOnRun(run.name, .training(.train(steps: nil, wait: false)))]
      }
    case .enter where focus == .runs && context.runs.indices.contains(selectedRun):
      return [.perform(.runs(.switchTo(context.runs[selectedRun].name)))]
    case .character("v") where focus == .runs && context.runs.indices.contains(selectedRun):
      let name = context.runs[selectedRun].name
      if context.runs[selectedRun].isCurrent {
        message = "\(name) is the current run: the chart draws it already"
      } else if let index = overlaid.firstIndex(of: name) {
        overlaid.remove(at: index)
        message = "\(name) no longer overlaid on the loss"
      } else {
        overlaid.append(name)
        message = "\(name) overlaid on the loss (v again removes it)"
      }
    case .character(" "):
      switch context.status {
      case .running: return [.perform(.training(.pause))]
      case .paused: return [.perform(.training(.resume))]
      case .idle: return [.perform(.training(.train(steps: nil, wait: false)))]
      }
    case .character("b"):
      guard let index = context.backends.firstIndex(of: context.backend), context.backends.count > 1 else {
        message = "only one backend: \(context.backend)"
        return []
      }
      return [.perform(.training(.backend(context.backends[(index + 1) % context.backends.count])))]
    case .character("o"):
      // The optimizer as a command, the cursor after the learning rate's value: what a user edits.
      let line = context.optimizerCommand + " "
      commandLine = line
      if let lr = line.range(of: " lr=") {
        let valueEnd = line[lr.upperBound...].firstIndex(of: " ") ?? line.endIndex
        commandCursor = line.distance(from: line.startIndex, to: valueEnd)
      } else {
        commandCursor = line.count
      }
      historyPosition = nil
      return []
    case .character(":"):
      commandLine = ""
      commandCursor = 0
      historyPosition = nil
      return []
    case .character("s"), .character("S"):
      let stops = Self.smoothingStops
      let current = stops.firstIndex { $0 >= smoothing - 1e-9 } ?? stops.count - 1
      smoothing = stops[key == .character("s") ? max(0, current - 1) : min(stops.count - 1, current + 1)]
      message = "smoothing \(smoothing)"
    case .character("m"):
      let charts = context.charts.isEmpty ? [.loss] : context.charts
      chart = charts[((charts.firstIndex(of: chart) ?? -1) + 1) % charts.count]
      message = chart == .loss && charts.count == 1 ? "only the loss is recorded so far" : "chart: \(chart.rawValue)"
    case .character("l"):
      logScale.toggle()
      message = logScale ? "log scale" : "linear scale"
    case .character("t"):
      themeIndex = (themeIndex + 1) % max(1, context.themeCount)
    case .character("?"):
      showsHelp = true
    case .character("q"), .interrupt:
      return [.close]
    case .redraw:
      return [.repaint]
    case .tab, .backTab:
      let panes = DashboardPane.allCases.filter { $0 != .runs || context.runs.count > 1 }
      let index = panes.firstIndex(of: focus) ?? 0
      focus = panes[(index + (key == .tab ? 1 : panes.count - 1)) % panes.count]
    case .up, .down, .left, .right:
      move(key, context: context)
    default:
      break
    }
    return []
  }

  /// Arrow keys act on the focused pane.
  mutating func move(_ key: DashboardKey, context: Context) {
    let layers = context.layerTensors
    switch focus {
    case .model, .histogram:
      // Up and down choose the layer (among those with tensors, in the histogram pane), left and
      // right the tensor within it.
      let candidates = focus == .histogram ? layers.indices.filter { !layers[$0].isEmpty } : Array(layers.indices)
      guard !candidates.isEmpty else { return }
      switch key {
      case .up, .down:
        let position = candidates.firstIndex(of: selectedLayer) ?? 0
        let next = key == .up ? max(0, position - 1) : min(candidates.count - 1, position + 1)
        selectedLayer = candidates[next]
        selectedTensor = 0
      default:
        let count = layers.indices.contains(selectedLayer) ? layers[selectedLayer].count : 0
        guard count > 0 else { return }
        selectedTensor = (selectedTensor + (key == .right ? 1 : count - 1)) % count
      }
    case .loss:
      let stops = Self.smoothingStops
      let current = stops.firstIndex { $0 >= smoothing - 1e-9 } ?? stops.count - 1
      if key == .up || key == .right { smoothing = stops[min(stops.count - 1, current + 1)] }
      if key == .down || key == .left { smoothing = stops[max(0, current - 1)] }
    case .events:
      if key == .up { logScroll = min(max(0, log.count - 1), logScroll + 1) }
      if key == .down { logScroll = max(0, logScroll - 1) }
    case .runs:
      guard !context.runs.isEmpty else { return }
      if key == .up { selectedRun = max(0, min(selectedRun, context.runs.count - 1) - 1) }
      if key == .down { selectedRun = min(context.runs.count - 1, selectedRun + 1) }
    case .optimizer:
      break
    }
  }

  /// Keys while the command line is open: edit as readline does (←/→, Home/End or Ctrl-A/E,
  /// Backspace, Delete, Ctrl-U, Ctrl-W), complete, browse history, run or cancel.
  mutating func handleCommandLine(_ key: DashboardKey, context: Context) -> [DashboardAction] {
    var line = Array(commandLine ?? "")
    var cursor = min(commandCursor, line.count)
    switch key {
    case .enter:
      commandLine = nil
      let command = String(line).trimmingCharacters(in: .whitespaces)
      guard !command.isEmpty else { return [] }
      if commandHistory.last != command { commandHistory.append(command) }
      historyPosition = nil
      if ["q", "quit", "exit"].contains(command) { return [.close] }
      return [.execute(command)]
    case .escape, .interrupt:
      commandLine = nil
      historyPosition = nil
      return []
    case .backspace:
      if line.isEmpty {
        commandLine = nil
        return []
      }
      if cursor > 0 {
        line.remove(at: cursor - 1)
        cursor -= 1
      }
    case .delete:
      if cursor < line.count { line.remove(at: cursor) }
    case .left: cursor = max(0, cursor - 1)
    case .right: cursor = min(line.count, cursor + 1)
    case .home: cursor = 0
    case .end: cursor = line.count
    case .killLine:
      line.removeSubrange(0..<cursor)
      cursor = 0
    case .killWord:
      var start = cursor
      while start > 0 && line[start - 1] == " " { start -= 1 }
      while start > 0 && line[start - 1] != " " { start -= 1 }
      line.removeSubrange(start..<cursor)
      cursor = start
    case .tab:
      // Completion works on what is before the cursor, at the line's end.
      guard cursor == line.count else { return [] }
      let text = String(line)
      let candidates = context.complete(text)
      let word = String(text.reversed().prefix { $0 != " " }.reversed())
      if candidates.count == 1 {
        line = Array(String(text.dropLast(word.count)) + candidates[0] + " ")
      } else if candidates.count > 1 {
        let common = candidates.dropFirst().reduce(candidates[0]) { String(zip($0, $1).prefix { $0.0 == $0.1 }.map(\.0)) }
        if common.count > word.count { line = Array(String(text.dropLast(word.count)) + common) }
        message = candidates.prefix(12).joined(separator: "  ") + (candidates.count > 12 ? "  …" : "")
        messageIsError = false
      }
      cursor = line.count
    case .up, .down:
      guard !commandHistory.isEmpty else { return [] }
      var position = historyPosition ?? commandHistory.count
      position = key == .up ? max(0, position - 1) : min(commandHistory.count, position + 1)
      historyPosition = position
      line = Array(position < commandHistory.count ? commandHistory[position] : "")
      cursor = line.count
    case .character(let character):
      line.insert(character, at: cursor)
      cursor += 1
    default:
      break
    }
    commandLine = String(line)
    commandCursor = cursor
    return []
  }
}
