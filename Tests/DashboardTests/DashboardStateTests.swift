import Session
import Testing

@testable import Dashboard

@Suite("Dashboard keys")
struct DashboardStateTests {
  static func context(_ status: TrainingStatus = .running, backend: String = "reference") -> DashboardState.Context {
    DashboardState.Context(
      status: status, backend: backend, backends: ["reference", "fast"], themeCount: 5,
      layerTensors: [["dense1.weight", "dense1.bias"], [], ["dense2.weight", "dense2.bias", "bn.running_mean"]],
      optimizerCommand: "optimizer adam lr=0.01",
      complete: { line in ["adam", "adamw", "adagrad"].filter { $0.hasPrefix(line.split(separator: " ").last.map(String.init) ?? "") } })
  }

  /// In the events pane, Up scrolls back to older entries and Down towards the newest.
  @Test func upAndDownScrollTheEventsPane() {
    var state = DashboardState()
    state.focus = .events
    state.appendLog(["[started] one", "[optimizer] two", "[stopped] three"])
    #expect(state.logScroll == 0)
    _ = state.handle(.up, context: Self.context())
    #expect(state.logScroll == 1, "Up shows older entries")
    _ = state.handle(.up, context: Self.context())
    _ = state.handle(.up, context: Self.context())
    _ = state.handle(.up, context: Self.context())
    #expect(state.logScroll == 2, "no further back than the oldest")
    _ = state.handle(.down, context: Self.context())
    #expect(state.logScroll == 1, "Down comes back towards the newest")
    _ = state.handle(.down, context: Self.context())
    _ = state.handle(.down, context: Self.context())
    #expect(state.logScroll == 0)
  }

  @Test func spaceStartsPausesAndResumes() {
    var state = DashboardState()
    #expect(state.handle(.character(" "), context: Self.context(.running)) == [.perform(.training(.pause))])
    #expect(state.handle(.character(" "), context: Self.context(.paused)) == [.perform(.training(.resume))])
    #expect(state.handle(.character(" "), context: Self.context(.idle)) == [.perform(.training(.train(steps: nil, wait: false)))])
  }

  /// `m` cycles the chart through the metrics recorded; with the loss alone it says so.
  @Test func mCyclesTheChartsRecorded() {
    var state = DashboardState()
    var context = Self.context()
    _ = state.handle(.character("m"), context: context)
    #expect(state.chart == .loss && state.message == "only the loss is recorded so far")
    context.charts = [.loss, .mae, .r2]
    for expected in [HistoryPlots.Metrics.mae, .r2, .loss] {
      _ = state.handle(.character("m"), context: context)
      #expect(state.chart == expected && state.message == "chart: \(expected.rawValue)")
    }
    // The pane draws the chosen metric, titled by it.
    state.chart = .accuracy
    #expect(DashboardView.paneTitle(.loss, Fixture.input, state).hasPrefix("accuracy · smoothing"))
  }

  @Test func bCyclesTheBackends() {
    var state = DashboardState()
    #expect(state.handle(.character("b"), context: Self.context(backend: "reference")) == [.perform(.training(.backend("fast")))])
    #expect(state.handle(.character("b"), context: Self.context(backend: "fast")) == [.perform(.training(.backend("reference")))])
  }

  /// `o` opens the optimizer as a command with the cursor after the learning rate's value.
  @Test func oOpensTheCommandLineOnTheOptimizer() {
    var state = DashboardState()
    let context = Self.context()
    #expect(state.handle(.character("o"), context: context).isEmpty)
    #expect(state.commandLine == "optimizer adam lr=0.01 ")
    #expect(state.commandCursor == "optimizer adam lr=0.01".count)
    _ = state.handle(.backspace, context: context)
    _ = state.handle(.character("3"), context: context)
    _ = state.handle(.end, context: context)
    for character in "momentum=0.9" { _ = state.handle(.character(character), context: context) }
    #expect(state.handle(.enter, context: context) == [.execute("optimizer adam lr=0.03 momentum=0.9")])
    #expect(state.commandLine == nil)
  }

  /// Opens the command line and types `text` on it.
  static func type(_ text: String, into state: inout DashboardState, _ context: DashboardState.Context) {
    _ = state.handle(.character(":"), context: context)
    for character in text { _ = state.handle(.character(character), context: context) }
  }

  /// The command line edits as readline does: arrows, Home/End, Delete, Ctrl-U, Ctrl-W.
  @Test func theCommandLineEditsLikeReadline() {
    var state = DashboardState()
    let context = Self.context()
    Self.type("train 100 --wait", into: &state, context)
    // Home, then over "train ": insert a digit into the number.
    _ = state.handle(.home, context: context)
    #expect(state.commandCursor == 0)
    for _ in 0..<7 { _ = state.handle(.right, context: context) }
    _ = state.handle(.character("5"), context: context)
    #expect(state.commandLine == "train 1500 --wait" && state.commandCursor == 8)
    _ = state.handle(.left, context: context)
    _ = state.handle(.delete, context: context)
    #expect(state.commandLine == "train 100 --wait")
    // Ctrl-W deletes the word before the cursor; at the end, the last word.
    _ = state.handle(.end, context: context)
    _ = state.handle(.killWord, context: context)
    #expect(state.commandLine == "train 100 " && state.commandCursor == 10)
    // Ctrl-U deletes from the start to the cursor.
    _ = state.handle(.left, context: context)
    _ = state.handle(.killLine, context: context)
    #expect(state.commandLine == " " && state.commandCursor == 0)
    // Left and Right stop at the ends; history puts the cursor at the end.
    for _ in 0..<3 { _ = state.handle(.left, context: context) }
    #expect(state.commandCursor == 0)
    _ = state.handle(.escape, context: context)
    Self.type("status", into: &state, context)
    _ = state.handle(.enter, context: context)
    _ = state.handle(.character(":"), context: context)
    _ = state.handle(.up, context: context)
    #expect(state.commandLine == "status" && state.commandCursor == 6)
  }

  @Test func theCommandLineEditsCompletesAndRemembers() {
    var state = DashboardState()
    let context = Self.context()
    Self.type("optimizer ad", into: &state, context)
    // Tab extends the word to what the candidates share and lists them; one candidate completes.
    _ = state.handle(.tab, context: context)
    #expect(state.commandLine == "optimizer ada")
    #expect(state.message == "adam  adamw  adagrad")
    _ = state.handle(.character("g"), context: context)
    _ = state.handle(.tab, context: context)
    #expect(state.commandLine == "optimizer adagrad ")
    _ = state.handle(.backspace, context: context)
    #expect(state.commandLine == "optimizer adagrad")
    _ = state.handle(.escape, context: context)
    #expect(state.commandLine == nil)
    _ = state.handle(.character(":"), context: context)
    for character in "status" { _ = state.handle(.character(character), context: context) }
    #expect(state.handle(.enter, context: context) == [.execute("status")])
    _ = state.handle(.character(":"), context: context)
    _ = state.handle(.up, context: context)
    #expect(state.commandLine == "status")
    _ = state.handle(.down, context: context)
    #expect(state.commandLine == "")
    // Backspace on an empty line closes it; :q goes back to the REPL.
    _ = state.handle(.backspace, context: context)
    #expect(state.commandLine == nil)
    _ = state.handle(.character(":"), context: context)
    _ = state.handle(.character("q"), context: context)
    #expect(state.handle(.enter, context: context) == [.close])
  }

  @Test func chartKeysThemesHelpAndQuit() {
    var state = DashboardState()
    let context = Self.context()
    _ = state.handle(.character("S"), context: context)
    #expect(state.smoothing == 0.8)
    _ = state.handle(.character("s"), context: context)
    _ = state.handle(.character("s"), context: context)
    #expect(state.smoothing == 0.3)
    _ = state.handle(.character("l"), context: context)
    #expect(state.logScale)
    for _ in 0..<5 { _ = state.handle(.character("t"), context: context) }
    #expect(state.themeIndex == 0)
    _ = state.handle(.character("t"), context: context)
    #expect(state.themeIndex == 1)
    _ = state.handle(.character("?"), context: context)
    #expect(state.showsHelp)
    // Any key closes the help without doing its job; q closes it and leaves.
    #expect(state.handle(.character("b"), context: context).isEmpty && !state.showsHelp)
    _ = state.handle(.character("?"), context: context)
    #expect(state.handle(.character("q"), context: context) == [.close])
    #expect(state.handle(.interrupt, context: context) == [.close])
    #expect(state.handle(.redraw, context: context) == [.repaint])
  }

  @Test func tabMovesTheFocusAndArrowsChooseLayersAndTensors() {
    var state = DashboardState()
    let context = Self.context()
    #expect(state.focus == .loss)
    _ = state.handle(.tab, context: context)
    #expect(state.focus == .histogram)
    _ = state.handle(.backTab, context: context)
    _ = state.handle(.backTab, context: context)
    #expect(state.focus == .events)
    state.focus = .model
    _ = state.handle(.down, context: context)
    #expect(state.selectedLayer == 1 && state.selectedTensorName(in: context.layerTensors) == nil)
    state.focus = .histogram
    // The histogram pane skips layers without tensors.
    _ = state.handle(.down, context: context)
    #expect(state.selectedLayer == 2)
    _ = state.handle(.left, context: context)
    #expect(state.selectedTensorName(in: context.layerTensors) == "bn.running_mean")
    _ = state.handle(.up, context: context)
    #expect(state.selectedLayer == 0 && state.selectedTensor == 0)
    state.focus = .loss
    _ = state.handle(.up, context: context)
    #expect(state.smoothing == 0.8)
  }
}
