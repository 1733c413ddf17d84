import Foundation
import Session
import SpecKit
import TermPlot

/// What one frame shows of the session: the spec, the worker's latest snapshot, and a few facts
/// the status bar needs.
public struct DashboardInput: Sendable {
  public var spec: SessionSpec
  public var snapshot: Snapshot
  public var hasUnsavedChanges: Bool
  public var themeName: String
  /// The workbench's runs: with two or more, a runs pane lists them.
  public var runs: [RunRow] = []
  /// Other runs' batch losses the loss pane draws over the current run's (named by run).
  public var overlay: [LineChart.Series] = []

  public init(spec: SessionSpec, snapshot: Snapshot, hasUnsavedChanges: Bool = false, themeName: String = "default-dark") {
    (self.spec, self.snapshot, self.hasUnsavedChanges, self.themeName) = (spec, snapshot, hasUnsavedChanges, themeName)
  }

  /// A layer's tensor names with each variational ρ followed by its σ (`dense2.weight_sigma`,
  /// which the snapshot publishes), so that the histograms show μ and σ.
  public static func withSigmas(_ names: [String]) -> [String] {
    names.flatMap { name in [name] + (VariationalSpec.sigmaName(ofRho: name).map { [$0] } ?? []) }
  }

  /// Each layer's tensors (parameters, then buffers), by layer index; empty when the model does
  /// not chain yet.
  public var layerTensors: [[String]] {
    ((try? spec.model.layerShapes()) ?? []).map { DashboardInput.withSigmas($0.tensors.map(\.name)) }
  }
}

/// The dashboard's layout and panes: a pure function from a session's snapshot, the dashboard's
/// state and a size to a grid of cells. The curses adapter only copies the grid to the screen,
/// so every frame can be tested as text.
public enum DashboardView {
  /// The smallest terminal the layout fits.
  public static let minimumSize = (width: 80, height: 24)

  /// One frame of `width`×`height` cells.
  public static func render(_ input: DashboardInput, state: DashboardState, width: Int, height: Int, charset: Charset = .unicode) -> Grid {
    var grid = Grid(width: width, height: height)
    guard width >= minimumSize.width, height >= minimumSize.height else {
      tooSmall(&grid)
      return grid
    }
    let layout = Layout(width: width, height: height, runs: input.runs.count > 1 ? input.runs.count : 0)
    statusBar(&grid, input, width: width)
    for (pane, frame) in layout.frames {
      let focused = state.focus == pane
      let title = paneTitle(pane, input, state)
      grid.box(
        x: frame.x, y: frame.y, width: frame.width, height: frame.height, title: title, role: focused ? .focus : .border, charset: charset)
      let inner = Frame(x: frame.x + 1, y: frame.y + 1, width: frame.width - 2, height: frame.height - 2)
      let content: Grid
      switch pane {
      case .loss: content = lossPane(input, state, inner, charset)
      case .histogram: content = histogramPane(input, state, inner, charset)
      case .model: content = modelPane(input, state, inner, focused: focused)
      case .optimizer: content = optimizerPane(input, inner, charset)
      case .events: content = eventsPane(state, inner)
      case .runs: content = runsPane(input, state, inner, focused: focused)
      }
      grid.paste(content, x: inner.x, y: inner.y)
    }
    bottomLine(&grid, state, width: width, y: height - 1)
    if state.showsHelp { helpOverlay(&grid, charset: charset) }
    return charset == .ascii ? asciified(grid) : grid
  }

  /// ASCII stand-ins for the few non-ASCII characters the panes' text uses (the plots draw
  /// ASCII themselves when asked).
  static let asciiStandIns: [Character: Character] = [
    "│": "|", "›": ">", "‖": "|", "·": "-", "—": "-", "…": "~", "█": "#", "×": "x", "↑": "^", "↓": "v", "←": "<", "→": ">",
    "━": "=", "─": "-", "┤": "|", "β": "b",
  ]

  static func asciified(_ grid: Grid) -> Grid {
    var out = grid
    for y in 0..<grid.height {
      for x in 0..<grid.width where !grid[x, y].character.isASCII {
        out[x, y] = Cell(asciiStandIns[grid[x, y].character] ?? "?", grid[x, y].role)
      }
    }
    return out
  }

  // MARK: layout

  struct Frame: Hashable {
    var x: Int
    var y: Int
    var width: Int
    var height: Int
  }

  /// Where the panes go: a status bar on top, the command line at the bottom, the event log
  /// above it; between them the model and optimizer on the left, the loss chart and the
  /// histograms on the right.
  struct Layout {
    var frames: [(DashboardPane, Frame)]

    /// `runs`: how many runs the runs pane lists (0: no pane), at the top of the left column.
    init(width: Int, height: Int, runs: Int = 0) {
      let eventsHeight = max(5, min(9, height / 5))
      let mainTop = 1
      let mainHeight = height - 2 - eventsHeight
      let leftWidth = max(38, min(64, width * 9 / 20))
      let rightWidth = width - leftWidth
      let optimizerHeight = max(8, min(12, mainHeight * 2 / 5))
      let lossHeight = max(9, mainHeight * 11 / 20)
      // The runs pane takes rows from the model pane: a row a run, at most a third of the column.
      let runsHeight = runs > 0 ? min(runs + 2, max(4, (mainHeight - optimizerHeight) / 2)) : 0
      frames = [
        (.loss, Frame(x: leftWidth, y: mainTop, width: rightWidth, height: lossHeight)),
        (.histogram, Frame(x: leftWidth, y: mainTop + lossHeight, width: rightWidth, height: mainHeight - lossHeight)),
        (.model, Frame(x: 0, y: mainTop + runsHeight, width: leftWidth, height: mainHeight - optimizerHeight - runsHeight)),
        (.optimizer, Frame(x: 0, y: mainTop + mainHeight - optimizerHeight, width: leftWidth, height: optimizerHeight)),
        (.events, Frame(x: 0, y: mainTop + mainHeight, width: width, height: eventsHeight)),
      ]
      if runsHeight > 0 { frames.append((.runs, Frame(x: 0, y: mainTop, width: leftWidth, height: runsHeight))) }
    }
  }

  static func tooSmall(_ grid: inout Grid) {
    let lines = [
      grid.width >= 36 ? "terminal too small for the dashboard" : "terminal too small",
      "needs \(minimumSize.width)×\(minimumSize.height), has \(grid.width)×\(grid.height)",
      grid.width >= 42 ? "enlarge the window, or press q to go back" : "enlarge it, or press q",
    ]
    let top = max(0, (grid.height - lines.count) / 2)
    for (row, line) in lines.enumerated() {
      let text = line.count <= grid.width ? line : String(line.prefix(grid.width))
      grid.write(text, x: max(0, (grid.width - text.count) / 2), y: top + row, role: row == 0 ? .warning : .label)
    }
  }

  // MARK: bars

  /// `spirals* │ fast │ running │ step 1,234/2,000 │ epoch 12 │ batch loss 0.031 │ val loss 0.089 │ val acc 96.7% │ 8,100 steps/s │ ETA 0:04`
  static func statusBar(_ grid: inout Grid, _ input: DashboardInput, width: Int) {
    let s = input.snapshot
    // (text, priority): when the bar is too narrow, the lowest priorities go first.
    var parts: [(String, Int)] = [
      (" " + input.spec.name + (input.hasUnsavedChanges ? "*" : ""), 0), (s.backend, 3), (s.status.rawValue, 0),
      ("step \(grouped(s.step))" + (s.plannedStep.map { "/\(grouped($0))" } ?? ""), 1), ("epoch \(s.epoch)", 5),
    ]
    // The batch loss before the validation figures, which go before the recent batches' mean.
    for reading in s.metricReadings(short: true) {
      let priority =
        switch reading.kind {
        case .lastBatch: 4
        case .validation: 6
        case .recentBatches: 7
        }
      parts.append((reading.text, priority))
    }
    if s.status == .running, let rate = s.stepsPerSecond {
      parts.append(("\(grouped(Int(rate.rounded()))) steps/s", 2))
    }
    if s.status != .idle, let elapsed = s.elapsedSeconds { parts.append((ProgressLine.duration(elapsed) + " elapsed", 7)) }
    if s.status == .running, let rate = s.stepsPerSecond, rate > 0, let planned = s.plannedStep, planned > s.step {
      parts.append(("ETA " + ProgressLine.duration(Double(planned - s.step) / rate), 2))
    }
    if input.runs.count > 1 {
      let training = input.runs.filter { $0.status == .running }.count
      parts.append(("\(input.runs.count) runs, \(training) training", 2))
    }
    parts.append(("theme \(input.themeName)", 8))
    while parts.map(\.0).joined(separator: " │ ").count > width, let lowest = parts.indices.max(by: { parts[$0].1 < parts[$1].1 }),
      parts[lowest].1 > 0
    {
      parts.remove(at: lowest)
    }
    let text = parts.map(\.0).joined(separator: " │ ")
    grid.write(text + String(repeating: " ", count: max(0, width - text.count)), x: 0, y: 0, role: .status)
  }

  /// The command line when open; otherwise the last message, or the main keys.
  static func bottomLine(_ grid: inout Grid, _ state: DashboardState, width: Int, y: Int) {
    if let line = state.commandLine {
      let text = Array(":" + line)
      let cursor = min(state.commandCursor, line.count) + 1
      // Keep the cursor in view: the end of a long line, or the part around the cursor.
      let first = max(0, min(cursor - (width - 2), text.count - (width - 1)))
      let visible = String(text[first..<min(text.count, first + width - 1)])
      grid.write(visible, x: 0, y: y, role: .status)
      if cursor >= text.count {
        grid.write("█", x: visible.count, y: y, role: .status)
      } else {
        // The character under the cursor, drawn as selected.
        grid.write(String(text[cursor]), x: cursor - first, y: y, role: .selected)
      }
      let used = max(visible.count, cursor - first) + 1
      grid.write(String(repeating: " ", count: max(0, width - used)), x: used, y: y, role: .status)
    } else if let message = state.message {
      grid.write(String(message.prefix(width)), x: 0, y: y, role: state.messageIsError ? .warning : .text)
    } else {
      // As many of the main keys as fit, the help and the way out always.
      let keys = [
        "space run/pause", "b backend", "o optimizer", ": command", "Tab focus", "arrows select", "s/S smooth", "l log", "t theme",
      ]
      let last = ["? help", "q REPL"]
      var shown: [String] = []
      for key in keys where (shown + [key] + last).joined(separator: " · ").count <= width { shown.append(key) }
      grid.write(String((shown + last).joined(separator: " · ").prefix(width)), x: 0, y: y, role: .label)
    }
  }

  static let keyHelp: [(String, String)] = [
    ("space", "pause, resume, or start training (runs pane: the selected run)"),
    ("b", "next backend (state carried across)"),
    ("o", "edit the optimizer on the command line"),
    (":", "command line: any session command; Tab completes, ↑↓ history"),
    ("Tab / Shift-Tab", "move the focus between panes"),
    ("↑ ↓", "model, histograms: layer · loss: smoothing · events: scroll · runs: run"),
    ("↵ / v", "runs pane: make the run current / overlay its loss on the chart"),
    ("← →", "model, histograms: the layer's tensor · loss: smoothing"),
    ("s / S", "less / more smoothing of the loss chart"),
    ("l", "log scale on or off"),
    ("m", "chart: loss → accuracy, MAE, R² (those recorded)"),
    ("t", "next theme"),
    ("Ctrl-L", "draw the screen again"),
    ("?", "this help (any key closes it)"),
    ("q", "back to the REPL; training keeps running"),
  ]

  static func helpOverlay(_ grid: inout Grid, charset: Charset) {
    let keyWidth = keyHelp.map(\.0.count).max()!
    let textWidth = keyHelp.map(\.1.count).max()!
    let width = min(grid.width - 2, keyWidth + textWidth + 7)
    let height = min(grid.height - 2, keyHelp.count + 4)
    let x = (grid.width - width) / 2, y = (grid.height - height) / 2
    grid.write(String(repeating: " ", count: width), x: x, y: y, role: .text)
    for row in y..<y + height { grid.write(String(repeating: " ", count: width), x: x, y: row, role: .text) }
    grid.box(x: x, y: y, width: width, height: height, title: "keys", role: .focus, charset: charset)
    for (row, (key, text)) in keyHelp.prefix(height - 4).enumerated() {
      grid.write(key.padding(toLength: keyWidth, withPad: " ", startingAt: 0), x: x + 2, y: y + 2 + row, role: .title)
      grid.write(String(text.prefix(width - keyWidth - 6)), x: x + 4 + keyWidth, y: y + 2 + row, role: .text)
    }
  }

  // MARK: formatting

  /// `1,234,567`.
  static func grouped(_ value: Int) -> String {
    let digits = String(abs(value))
    var out = ""
    for (index, character) in digits.enumerated() {
      if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
      out.append(character)
    }
    return (value < 0 ? "-" : "") + out
  }

  /// `1.2e-3` style for statistics (two significant digits, a short exponent), or `–` when
  /// unknown.
  static func scientific(_ value: Float?) -> String {
    guard let value, value.isFinite else { return "–" }
    guard value != 0 else { return "0" }
    let text = String(format: "%.1e", Double(value))
    guard let e = text.firstIndex(of: "e"), let exponent = Int(text[text.index(after: e)...]) else { return text }
    return text[..<e] + "e\(exponent)"
  }
}
