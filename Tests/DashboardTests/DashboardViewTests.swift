import Foundation
import Session
import SpecBenchTestSupport
import SpecKit
import TermPlot
import Testing

@testable import Dashboard

func expectFrame(_ text: String, _ name: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
  #expect(
    try matchesGolden(text, "Tests/DashboardTests/Golden/\(name).txt"),
    "\(name) differs from its golden frame; re-record with SPECBENCH_RECORD_GOLDEN=1 if intended", sourceLocation: sourceLocation)
}

@Suite("Dashboard frames")
struct DashboardViewTests {
  @Test(arguments: [(120, 40), (100, 30), (80, 24)])
  func framesAtSeveralSizes(width: Int, height: Int) throws {
    let grid = DashboardView.render(Fixture.input, state: Fixture.state, width: width, height: height)
    #expect(grid.width == width && grid.height == height)
    try expectFrame(grid.plainText, "frame-\(width)x\(height)")
    // Every pane is there, and the status bar says what training does.
    let text = grid.plainText
    for title in ["model", "loss", "histogram", "optimizer", "events"] {
      #expect(text.contains("─ \(title)"), "\(title) pane at \(width)×\(height)")
    }
    #expect(text.hasPrefix(" spirals* │ fast │ running │ step 600/2,000 │ "))
    #expect(text.contains("8,123 steps/s") && text.contains("ETA 0:01"))
    // A narrower bar drops the least needed parts first: the validation figures, then the epoch;
    // the batch loss, labelled as the last batch's, goes last of these.
    let bar = text.split(separator: "\n")[0]
    #expect(bar.contains("val loss 0.1254") == (width >= 120) && bar.contains("epoch 64") == (width >= 120))
    #expect(bar.contains("batch loss 0.1234") == (width >= 100))
  }

  /// An L-BFGS session's optimizer pane says what the last step did: iterations, evaluations,
  /// the line search's and the step size.
  @Test func theOptimizerPaneShowsLBFGSIterations() throws {
    var spec = Fixture.spec
    spec.optimizer = .lbfgs(.init(lineSearch: .strongWolfe))
    var snapshot = Fixture.snapshot
    snapshot.optimizerReport = "last step: 4 iterations, 7 evaluations (6 line search), t 0.8123"
    var state = Fixture.state
    state.focus = .optimizer
    let text = DashboardView.render(
      DashboardInput(spec: spec, snapshot: snapshot, hasUnsavedChanges: false), state: state, width: 120, height: 40
    )
    .plainText
    #expect(text.contains("lbfgs lr=1.0 max_iter=20"), "\(text)")
    #expect(text.contains("last step: 4 iterations, 7 evaluations (6"), "\(text)")
    let without = DashboardView.render(
      DashboardInput(spec: spec, snapshot: Fixture.snapshot, hasUnsavedChanges: false), state: state, width: 120, height: 40)
    #expect(!without.plainText.contains("last step:"))
  }

  @Test func asciiWhenTheLocaleIsNotUTF8() throws {
    let grid = DashboardView.render(Fixture.input, state: Fixture.state, width: 100, height: 30, charset: .ascii)
    try expectFrame(grid.plainText, "frame-100x30-ascii")
    #expect(!grid.cells.contains { $0.character.unicodeScalars.contains { $0.value >= 0x2500 && $0.value < 0x2900 } })
  }

  @Test(arguments: [(79, 24), (80, 23), (40, 10), (20, 3)])
  func aTerminalTooSmallSaysSo(width: Int, height: Int) throws {
    let text = DashboardView.render(Fixture.input, state: Fixture.state, width: width, height: height).plainText
    if width >= 40 {
      #expect(text.contains("terminal too small for the dashboard"))
      #expect(text.contains("needs 80×24, has \(width)×\(height)"))
    }
    #expect(!text.contains("┌"), "no pane is drawn at \(width)×\(height)")
    if (width, height) == (40, 10) { try expectFrame(text, "frame-40x10-too-small") }
  }

  @Test func helpOverlayListsEveryKey() throws {
    var state = Fixture.state
    state.showsHelp = true
    let text = DashboardView.render(Fixture.input, state: state, width: 100, height: 30).plainText
    try expectFrame(text, "frame-100x30-help")
    for (key, _) in DashboardView.keyHelp { #expect(text.contains(key), "help lists \(key)") }
  }

  /// A cursor inside the command line is the character under it drawn as selected; at the end,
  /// a block.
  @Test func theCommandLineShowsItsCursor() {
    var state = Fixture.state
    state.commandLine = "optimizer sgd lr=0.1"
    state.commandCursor = 4
    let grid = DashboardView.render(Fixture.input, state: state, width: 80, height: 24)
    #expect(grid.plainText.split(separator: "\n").last! == ":optimizer sgd lr=0.1")
    #expect(grid[5, 23].character == "m" && grid[5, 23].role == .selected)
    #expect(grid[4, 23].role == .status && grid[6, 23].role == .status)
    // A long line keeps the cursor in view.
    state.commandLine = String(repeating: "x", count: 200)
    state.commandCursor = 10
    let long = DashboardView.render(Fixture.input, state: state, width: 80, height: 24)
    #expect(long[11, 23].role == .selected)
  }

  @Test func theCommandLineAndMessagesShowAtTheBottom() throws {
    var state = Fixture.state
    state.commandLine = "optimizer sgd lr=0.1"
    let open = DashboardView.render(Fixture.input, state: state, width: 80, height: 24).plainText
    #expect(open.split(separator: "\n").last!.hasPrefix(":optimizer sgd lr=0.1█"))
    try expectFrame(open, "frame-80x24-command")
    state.commandLine = nil
    state.message = "error: unknown command \"optimiser\" (did you mean \"optimizer\"?)"
    state.messageIsError = true
    let grid = DashboardView.render(Fixture.input, state: state, width: 80, height: 24)
    #expect(grid[0, 23].role == .warning)
  }

  @Test(arguments: [
    ("default-dark", ColorDepth.palette256, "38;5;38m"), ("light", .basic, ";34m"), ("solarized", .direct, "38;2;38;139;210m"),
    ("high-contrast", .palette256, ";96m"), ("mono", .none, "[0;1m"),
  ])
  func themesColourTheFrame(name: String, depth: ColorDepth, seriesCode: String) throws {
    let library = ThemeLibrary.load(folders: [repositoryPath("themes")])
    let theme = try #require(library.named(name))
    var input = Fixture.input
    input.themeName = name
    let grid = DashboardView.render(input, state: Fixture.state, width: 100, height: 30)
    let ansi = grid.ansiText(palette: theme.ansiPalette(depth: depth))
    try expectFrame(ansi, "theme-\(name)")
    // The first series colour (or, without colours, the bold title) is in the text.
    #expect(ansi.contains(seriesCode), "\(name)")
    if depth == .none { #expect(!ansi.contains("38;") && ansi.range(of: #";(3|4|9|10)[0-7]m"#, options: .regularExpression) == nil) }
  }

  /// A long event wraps at spaces, its later lines indented, and the newest lines stay in view.
  @Test func longEventsWrapInTheEventPane() {
    var state = Fixture.state
    let long =
      "[stopped] stopped by max_steps at step 30000 (30000 steps in 3.579 s, 8383 steps/s) — train loss 0.005945, accuracy 99.7%"
    state.appendLog([long, "› status"])
    let lines = DashboardView.render(Fixture.input, state: state, width: 80, height: 24).plainText.split(separator: "\n").map(String.init)
    let wrapped = lines.firstIndex { $0.hasPrefix("│[stopped] stopped by max_steps at step 30000") }
    #expect(wrapped != nil)
    if let wrapped {
      #expect(lines[wrapped].hasSuffix("│") && !lines[wrapped].contains("accuracy"), "\(lines[wrapped])")
      #expect(lines[wrapped + 1].hasPrefix("│  ") && lines[wrapped + 1].contains("accuracy 99.7%"), "\(lines[wrapped + 1])")
      #expect(lines[wrapped + 2].hasPrefix("│› status"))
    }
    #expect(DashboardView.wrapLine(long, width: 40).allSatisfy { $0.count <= 40 })
    #expect(DashboardView.wrapLine(long, width: 40).joined(separator: " ").split(separator: " ") == long.split(separator: " "))
    #expect(
      DashboardView.wrapLine(String(repeating: "x", count: 50), width: 20) == [
        String(repeating: "x", count: 20), "  " + String(repeating: "x", count: 18), "  " + String(repeating: "x", count: 12),
      ])
  }

  @Test func selectionAndStatisticsFollowTheState() {
    var state = Fixture.state
    state.selectedLayer = 0
    let lines = DashboardView.render(Fixture.input, state: state, width: 120, height: 40).plainText.split(separator: "\n").map(String.init)
    let selectedLine = lines.first { $0.contains("› dense1.weight") } ?? "none"
    #expect(selectedLine.contains("› dense1.weight [64, 2]  ‖grad‖ 1.2e-2  upd/w 3.1e-3"), "\(selectedLine)")
    #expect(lines.contains { $0.contains("histogram · dense1.weight @ step 600") })
    state.selectedTensor = 1
    let bias = DashboardView.render(Fixture.input, state: state, width: 120, height: 40).plainText
    #expect(bias.contains("histogram · dense1.bias"))
    // The layer's gradient norm combines its tensors: sqrt(0.0123² + 0.004²) = 1.3e-2; its
    // update ratio is the weight's.
    let row = lines.first { $0.contains("│dense1 ") } ?? "none"
    #expect(row.contains("dense1 dense relu [64]      192 1.3e-2 3.1e-3"), "\(row)")
  }
}

@Suite("Dashboard runs pane")
struct DashboardRunsPaneTests {
  static let rows = [
    RunRow(name: "spirals", backend: "fast", status: .idle, step: 0, loss: nil, isCurrent: false),
    RunRow(name: "lr=0.001", backend: "fast", status: .running, step: 640, loss: 0.5, isCurrent: true),
    RunRow(name: "lr=0.01", backend: "fast", status: .paused, step: 1200, loss: 0.0312, isCurrent: false),
  ]

  /// With several runs, a runs pane above the model lists them — current `*`, overlaid `+`,
  /// the selection highlighted — the status bar counts them, and the loss pane overlays the
  /// chosen runs' losses by name; with one run the frame is as before.
  @Test func severalRunsGetAPaneAndTheLossOverlay() throws {
    var input = Fixture.input
    input.runs = Self.rows
    input.overlay = [
      {
        var series = LineChart.Series(name: "lr=0.01", points: (1...600).map { LineChart.Point(Double($0), 1 / Double($0)) })
        series.colour = 3
        return series
      }()
    ]
    var state = Fixture.state
    state.focus = .runs
    state.selectedRun = 2
    state.overlaid = ["lr=0.01"]
    let grid = DashboardView.render(input, state: state, width: 120, height: 40)
    let text = grid.plainText
    #expect(text.contains("runs · ↵ switch · v overlay · space start/pause"))
    #expect(text.contains("*  lr=0.001 running step 640  loss 0.5"), "\(text)")
    #expect(text.contains(" + lr=0.01  paused  step 1,200  loss 0.0312"), "\(text)")
    #expect(text.contains("3 runs, 1 training"))
    #expect(text.contains("batch loss") && text.contains("━ lr=0.001") && text.contains("━ lr=0.01"), "the loss pane overlays by run")
    let selectedRow = try #require(text.split(separator: "\n").firstIndex { $0.contains("+ lr=0.01") })
    #expect((0..<grid.width).contains { grid[$0, selectedRow].role == .selected }, "the selected run is highlighted")
    var one = Fixture.input
    one.runs = []
    #expect(!DashboardView.render(one, state: Fixture.state, width: 120, height: 40).plainText.contains("runs ·"))
  }

  @Test func theRunsPaneKeysSelectSwitchOverlayAndStart() {
    var context = DashboardStateTests.context(.idle)
    var state = DashboardState()
    // Tab reaches the runs pane only when there are runs to list.
    for _ in 0..<5 { _ = state.handle(.tab, context: context) }
    #expect(state.focus == .loss, "one run: five panes in the Tab order")
    context.runs = Self.rows
    for _ in 0..<5 { _ = state.handle(.tab, context: context) }
    #expect(state.focus == .runs)
    _ = state.handle(.down, context: context)
    _ = state.handle(.down, context: context)
    _ = state.handle(.down, context: context)
    #expect(state.selectedRun == 2, "Down stops at the last run")
    #expect(state.handle(.enter, context: context) == [.perform(.runs(.switchTo("lr=0.01")))])
    #expect(state.handle(.character(" "), context: context) == [.performOnRun("lr=0.01", .training(.resume))])
    _ = state.handle(.up, context: context)
    #expect(state.handle(.character(" "), context: context) == [.performOnRun("lr=0.001", .training(.pause))])
    _ = state.handle(.up, context: context)
    #expect(state.handle(.character(" "), context: context) == [.performOnRun("spirals", .training(.train(steps: nil, wait: false)))])
    _ = state.handle(.character("v"), context: context)
    #expect(state.overlaid == ["spirals"] && state.message == "spirals overlaid on the loss (v again removes it)")
    _ = state.handle(.character("v"), context: context)
    #expect(state.overlaid.isEmpty)
    _ = state.handle(.down, context: context)
    _ = state.handle(.character("v"), context: context)
    #expect(state.overlaid.isEmpty && state.message == "lr=0.001 is the current run: the chart draws it already")
  }
}
