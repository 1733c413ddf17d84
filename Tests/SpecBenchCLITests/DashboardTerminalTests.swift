import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// The real dashboard in tmux: opened from the REPL while training runs, steered with keys and
/// `:` commands, resized, and left for a REPL that still works.
@Suite("The dashboard on a terminal", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct DashboardTerminalTests {
  /// The lines of a screen.
  static func lines(_ screen: String) -> [String] { screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

  /// The rows of the pane whose title starts with `title`, from its top border to its bottom
  /// border, cut to the pane's columns.
  static func pane(_ title: String, in screen: String) -> [String] {
    let rows = lines(screen).map { Array($0) }
    let marker = Array("┌─ " + title)
    for (top, row) in rows.enumerated() {
      guard let left = (0..<max(0, row.count - marker.count + 1)).first(where: { Array(row[$0..<$0 + marker.count]) == marker }) else {
        continue
      }
      var right = left + 1
      while right < row.count && row[right] != "┐" { right += 1 }
      var out: [String] = []
      for next in rows[top...] {
        guard next.count > left else { break }
        out.append(String(next[left..<min(next.count, right + 1)]))
        if next[left] == "└" { break }
      }
      return out
    }
    return []
  }

  static let titles = ["model ·", "loss ·", "histogram ·", "optimizer ·", "events"]

  /// Whether every pane is on the screen (a frame caught half-drawn is not).
  static func allPanes(_ screen: String) -> Bool { titles.allSatisfy { !pane($0, in: screen).isEmpty } }

  /// The step in the status bar (`step 1,234/…`).
  static func statusStep(_ screen: String) -> Int? {
    guard let first = lines(screen).first, let range = first.range(of: #"step [0-9,]+"#, options: .regularExpression) else { return nil }
    return Int(first[range].dropFirst(5).replacingOccurrences(of: ",", with: ""))
  }

  @Test func openFromTheReplWatchPauseSwapChangeOptimizerResizeAndGoBack() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(from: folder)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    // A long run on the slower backend, so that there is time to watch it.
    try terminal.send("backend reference", "Enter")
    try terminal.send("stop max_steps 100000000", "Enter")
    try terminal.send("train", "Enter")
    try terminal.waitFor { $0.contains("[started] training on reference") }
    try terminal.send("dashboard", "Enter")

    // The dashboard shows every pane and the loss chart moves while training runs.
    var screen = try terminal.waitFor {
      $0.contains("─ loss · smoothing") && $0.contains("│ running │") && $0.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }
        && Self.allPanes($0)
    }
    for title in Self.titles {
      #expect(!Self.pane(title, in: screen).isEmpty, "the \(title) pane is drawn: \(screen)")
    }
    #expect(screen.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, "braille in the loss chart: \(screen)")
    let firstChart = Self.pane("loss ·", in: screen)
    let firstStep = try #require(Self.statusStep(screen))
    screen = try terminal.waitFor { Self.pane("loss ·", in: $0) != firstChart && (Self.statusStep($0) ?? 0) > firstStep + 500 }
    #expect(Self.pane("loss ·", in: screen) != firstChart, "the loss chart moved")
    #expect((Self.statusStep(screen) ?? 0) > firstStep)

    // Space pauses: the status says so, the event log too, and the step stays.
    try terminal.send("Space")
    screen = try terminal.waitFor { $0.contains("│ paused │") && $0.contains("[paused] paused at step ") }
    #expect(screen.contains("│ paused │"), "\(screen)")
    let pausedStep = try #require(Self.statusStep(screen))
    Thread.sleep(forTimeInterval: 0.5)
    #expect(Self.statusStep(try terminal.capture()) == pausedStep)

    // Space again resumes, then b swaps the backend while it runs: the event, the status bar,
    // and a marker in the loss chart at the swap.
    try terminal.send("Space")
    try terminal.waitFor { $0.contains("│ running │") }
    let markersBefore = Self.pane("loss ·", in: try terminal.capture()).joined().filter { $0 == "┴" }.count
    try terminal.send("b")
    screen = try terminal.waitFor { $0.contains("reference -> fast, state carried across") && $0.contains("│ fast │") }
    #expect(screen.contains("[backend] backend at step "), "\(screen)")
    screen = try terminal.waitFor { Self.pane("loss ·", in: $0).joined().filter { $0 == "┴" }.count > markersBefore }
    #expect(Self.pane("loss ·", in: screen).joined().filter { $0 == "┴" }.count > markersBefore, "a marker at the swap: \(screen)")
    #expect(Self.pane("loss ·", in: screen).joined().contains("┊"))

    // A `:` command changes the optimizer while training runs; the line edits as readline does
    // (Home, End, Ctrl-W, Backspace fix a missing letter and a stray word).
    try terminal.send(":")
    try terminal.send("-l", "ptimizer sgd lr=0.1 junk")
    try terminal.waitFor { $0.contains(":ptimizer sgd lr=0.1 junk") }
    try terminal.send("Home")
    try terminal.send("o")
    try terminal.send("End")
    try terminal.send("C-w")
    try terminal.send("BSpace")
    screen = try terminal.waitFor { Self.lines($0).last { !$0.isEmpty }?.hasPrefix(":optimizer sgd lr=0.1█") == true }
    #expect(Self.lines(screen).last { !$0.isEmpty }?.hasPrefix(":optimizer sgd lr=0.1") == true, "the command line at the bottom")
    try terminal.send("Enter")
    screen = try terminal.waitFor {
      $0.contains("[optimizer] optimizer at step ") && Self.pane("optimizer · sgd", in: $0).joined().contains("sgd lr=0.1")
    }
    #expect(screen.contains("adam -> sgd"), "\(screen)")
    #expect(Self.pane("optimizer · sgd", in: screen).joined().contains("sgd lr=0.1"))

    // Resizing lays the panes out again for the new size.
    try terminal.resize(width: 100, height: 30)
    screen = try terminal.waitFor { screen in
      let rows = Self.lines(screen)
      return rows.count >= 30 && rows[28].hasPrefix("└") && rows[28].hasSuffix("┘") && Array(rows[28]).count == 100 && Self.allPanes(screen)
    }
    var rows = Self.lines(screen)
    #expect(Array(rows[28]).count == 100 && rows[28].hasSuffix("┘"), "the event pane's bottom border spans the new width: \(screen)")
    #expect(Array(rows[0]).count <= 100 && rows[0].contains("│ running │"))
    for title in Self.titles {
      #expect(!Self.pane(title, in: screen).isEmpty, "the \(title) pane at 100×30")
    }
    // Too small: a message instead of panes; larger again: the panes come back.
    try terminal.resize(width: 60, height: 20)
    screen = try terminal.waitFor { $0.contains("terminal too small for the dashboard") }
    #expect(screen.contains("needs 80×24, has 60×20"), "\(screen)")
    #expect(!screen.contains("┌─"))
    try terminal.resize(width: 120, height: 40)
    screen = try terminal.waitFor { Self.allPanes($0) && Self.lines($0).count >= 40 && Self.lines($0)[38].hasPrefix("└") }
    rows = Self.lines(screen)
    #expect(rows[38].hasPrefix("└") && Array(rows[38]).count == 120, "\(screen)")

    // q: back to the REPL, training still running, the prompt answers.
    try terminal.send("q")
    screen = try terminal.waitFor { $0.contains("spirals [fast running *]>") }
    #expect(screen.contains("spirals [fast running *]>"), "\(screen)")
    // What happened in the dashboard is printed in the REPL on return.
    #expect(screen.contains("[backend] backend at step ") && screen.contains("reference -> fast, state carried across"), "\(screen)")
    try terminal.send("status", "Enter")
    screen = try terminal.waitFor {
      $0.range(of: #"running at step \d+/100000000, epoch \d+, backend fast"#, options: .regularExpression) != nil
    }
    #expect(screen.range(of: #"running at step \d+/100000000, epoch \d+, backend fast"#, options: .regularExpression) != nil, "\(screen)")
    try terminal.send("stop", "Enter")
    screen = try terminal.waitFor { $0.contains("[stopped] stopped by interrupted at step ") }
    #expect(screen.contains("[stopped] stopped by interrupted at step "), "\(screen)")
    try terminal.send("save run", "Enter")
    screen = try terminal.waitFor { $0.contains("[saved] saved run.json with its state at step ") }
    #expect(screen.contains("[saved] saved run.json with its state at step "), "\(screen)")
    try terminal.send("quit", "Enter")
    screen = try terminal.waitFor { $0.contains("EXIT=") }
    #expect(screen.contains("EXIT=0"))
    // The saved history has the swap and the optimizer change the dashboard made.
    let saved = try SessionFile.load(folder + "/run.json")
    #expect(saved.spec.history.events.contains { $0.kind == "backend" && $0.detail == "reference -> fast" })
    #expect(saved.spec.history.events.contains { $0.kind == "optimizer" && $0.detail.hasPrefix("adam -> sgd") })
    #expect(saved.spec.optimizer == .sgd(.init(lr: 0.1)))
    #expect(saved.spec.backend == "fast")
  }

  @Test func keysHelpThemesAndNoColor() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(
      "dashboard sessions/iris.json", from: repositoryRoot.path, history: folder, environment: "NO_COLOR=1")
    var screen = try terminal.waitFor { $0.contains("theme default-dark") && Self.allPanes($0) && $0.contains("› batch_norm1.weight") }
    #expect(screen.hasPrefix(" iris │ reference │ idle │ step 0"), "\(screen)")
    // NO_COLOR: no colour in the escape sequences, but the status bar still stands out.
    let coloured = try terminal.waitFor(capture: terminal.captureWithColours) { $0.contains("\u{1B}[7m") && $0.contains("events") }
    #expect(coloured.range(of: #"\x1B\[([0-9;]*;)?(3[0-7]|9[0-7]|38;[25];[0-9;]+)m"#, options: .regularExpression) == nil, "no colour")
    #expect(coloured.contains("\u{1B}[7m"), "the status bar in reverse video")

    // ? lists every key; any key closes it.
    try terminal.send("?")
    // The overlay is drawn over several frames' worth of cells: wait for its last line too.
    screen = try terminal.waitFor { $0.contains("─ keys ─") && $0.contains("back to the REPL") }
    for key in ["space", "Tab / Shift-Tab", "s / S", "Ctrl-L", "back to the REPL"] { #expect(screen.contains(key), "help lists \(key)") }
    try terminal.send("Escape")
    screen = try terminal.waitFor { !$0.contains("─ keys ─") }
    #expect(!screen.contains("─ keys ─"))

    // t cycles the themes; l and s change the loss chart's title.
    try terminal.send("t")
    screen = try terminal.waitFor { $0.contains("theme high-contrast") && Self.allPanes($0) }
    #expect(screen.contains("theme high-contrast"), "\(screen)")
    try terminal.send("l")
    try terminal.send("S")
    screen = try terminal.waitFor {
      $0.contains("─ loss · smoothing 0.8 · log") && Self.allPanes($0) && $0.contains("› batch_norm1.weight")
    }
    #expect(screen.contains("─ loss · smoothing 0.8 · log"), "\(screen)")

    // Focus on the model pane (loss → histogram → model), then ↓ chooses the next layer and →
    // the next tensor of that layer.
    #expect(screen.contains("› batch_norm1.weight [4]"), "the first layer's first tensor: \(screen)")
    try terminal.send("Tab", "Tab", "Down")
    screen = try terminal.waitFor { $0.contains("› dense1.weight [16, 4]") && $0.contains("─ histogram · dense1.weight @ step 0") }
    #expect(screen.contains("› dense1.weight [16, 4]"), "\(screen)")
    #expect(screen.contains("─ histogram · dense1.weight @ step 0"))
    try terminal.send("Right")
    screen = try terminal.waitFor { $0.contains("› dense1.bias [16]") && $0.contains("─ histogram · dense1.bias @ step 0") }
    #expect(screen.contains("─ histogram · dense1.bias @ step 0"), "\(screen)")

    // A bad command says why at the bottom and changes nothing.
    try terminal.send(":")
    try terminal.send("-l", "optimzer sgd")
    try terminal.send("Enter")
    screen = try terminal.waitFor { $0.contains("error: unknown command \"optimzer\"") && Self.allPanes($0) }
    #expect(screen.contains("did you mean \"optimizer\""), "\(screen)")
    #expect(screen.contains("─ optimizer · adam"))

    // q leaves for the REPL on the same session; `dashboard` opens it again as it was left.
    try terminal.send("q")
    screen = try terminal.waitFor { $0.contains("iris [reference idle]>") }
    #expect(screen.contains("iris [reference idle]>"), "\(screen)")
    try terminal.send("dashboard", "Enter")
    screen = try terminal.waitFor { $0.contains("─ loss · smoothing 0.8 · log") && Self.allPanes($0) && $0.contains("› dense1.bias") }
    #expect(screen.contains("theme high-contrast") && screen.contains("› dense1.bias [16]"), "\(screen)")
    #expect(Self.pane("events", in: screen).joined().contains("optimzer sgd"), "the event log is kept: \(screen)")
    try terminal.send("q")
    try terminal.waitFor { $0.contains("iris [reference idle]>") }
    try terminal.send("quit", "Enter")
    screen = try terminal.waitFor { $0.contains("EXIT=") }
    #expect(screen.contains("EXIT=0"))
  }

  /// The colours follow what the terminal's description says it shows: 256 colours, 8, or none
  /// (then attributes alone, the status bar in reverse video).
  @Test(arguments: [("xterm-256color", "256"), ("xterm", "8"), ("xterm-mono", "none")])
  func coloursFollowTheTerminal(term: String, depth: String) throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(
      "dashboard sessions/xor.json", from: repositoryRoot.path, history: folder, environment: "TERM=\(term)", width: 100, height: 30)
    try terminal.waitFor { $0.contains("─ events") }
    let coloured = try terminal.waitFor(capture: terminal.captureWithColours) { $0.contains("events") && $0.contains("\u{1B}[") }
    let palette = coloured.contains("38;5;") || coloured.contains("48;5;")
    let basic = coloured.range(of: #"\x1B\[([0-9;]*;)?(3[0-7]|9[0-7])m"#, options: .regularExpression) != nil
    switch depth {
    case "256": #expect(palette, "xterm-256color uses the 256-colour palette: \(coloured.prefix(400).debugDescription)")
    case "8": #expect(!palette && basic, "xterm uses the 8 basic colours")
    default:
      #expect(!palette && !basic, "no colours on a monochrome terminal")
      #expect(coloured.contains("\u{1B}[7m"), "the status bar in reverse video")
    }
  }

  /// SIGTERM while the dashboard is open and training runs: the terminal comes back as it was
  /// (normal screen, line editing on) and the process ends.
  /// "Adam first, L-BFGS to finish" in the dashboard: `:optimizer lbfgs …` while training, the
  /// optimizer pane then shows what each step did, and `:optimizer adam …` goes back.
  @Test func lbfgsSwappedInAndOutWhileTraining() throws {
    let folder = temporaryFolder()
    try FileManager.default.copyItem(atPath: repositoryPath("sessions/sine-lbfgs.json"), toPath: folder + "/fit.json")
    let terminal = try TmuxSession.specbench("dashboard fit.json", from: folder)
    try terminal.waitFor { Self.allPanes($0) && $0.contains("─ optimizer · adam") }
    try terminal.send(":")
    try terminal.send("-l", "stop max_steps 100000000")
    try terminal.send("Enter")
    try terminal.send("Space")
    try terminal.waitFor { $0.contains("│ running │") }
    try terminal.send(":")
    try terminal.send("-l", "optimizer lbfgs line_search=strong_wolfe max_iter=5")
    try terminal.send("Enter")
    var screen = try terminal.waitFor { Self.pane("optimizer · lbfgs", in: $0).joined().contains("last step: ") }
    #expect(screen.contains("adam -> lbfgs: fresh optimizer state"), "\(screen)")
    let pane = Self.pane("optimizer · lbfgs", in: screen).joined(separator: "\n")
    #expect(pane.range(of: #"last step: [1-5] iterations?, \d+ evaluations? \(\d+ line"#, options: .regularExpression) != nil, "\(pane)")
    try terminal.send(":")
    try terminal.send("-l", "optimizer adam lr=0.001")
    try terminal.send("Enter")
    screen = try terminal.waitFor { $0.contains("lbfgs -> adam: fresh optimizer state") && $0.contains("─ optimizer · adam") }
    try terminal.waitFor { !Self.pane("optimizer · adam", in: $0).joined().contains("last step: ") }
    // q: the REPL on the same session, which still trains with Adam.
    try terminal.send("q")
    screen = try terminal.waitFor { $0.contains("sine-lbfgs [reference running *]>") }
    #expect(screen.contains("[optimizer] optimizer at step "), "\(screen)")
  }

  @Test func sigtermRestoresTheTerminal() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(repositoryPath("sessions/xor.json"), from: folder, afterwards: "echo EXIT=$?; stty -a")
    try terminal.waitFor { $0.contains("xor [reference idle]>") }
    try terminal.send("train 100000000", "Enter")
    try terminal.waitFor { $0.contains("[started]") }
    try terminal.send("dashboard", "Enter")
    var screen = try terminal.waitFor { $0.contains("─ events") && $0.contains("│ running │") }
    let pids = ReplHangupTests.specbenchProcesses(opening: repositoryPath("sessions/xor.json"))
    #expect(pids.count == 1)
    for pid in pids { kill(pid, SIGTERM) }
    screen = try terminal.waitFor { $0.contains("EXIT=") && $0.contains("icanon") }
    #expect(screen.contains("EXIT=0"), "\(screen)")
    #expect(!screen.contains("┌─"), "the dashboard's screen is gone: \(screen)")
    #expect(screen.contains("xor [reference running]> dashboard"), "the REPL's lines are back: \(screen)")
    #expect(screen.contains(" icanon") && screen.contains(" echo"), "line editing and echo restored: \(screen)")
  }

  @Test func aBrokenThemeFileIsReportedAndTheOthersStillWork() throws {
    let folder = temporaryFolder()
    try ##"{"specbench_theme": 1, "name": "broken", "roles": {"text": {"fg": "#12345"}}}"##.write(
      toFile: folder + "/broken.json", atomically: true, encoding: .utf8)
    let terminal = try TmuxSession.specbench("dashboard", from: folder, environment: "SPECBENCH_THEMES=\(folder)")
    var screen = try terminal.waitFor {
      Self.pane("events", in: $0).joined().contains("broken.json") && $0.contains("a theme file could not be used")
    }
    #expect(screen.contains("a theme file could not be used"), "\(screen)")
    #expect(Self.pane("events", in: screen).joined().contains("broken.json"), "\(screen)")
    #expect(screen.contains("theme default-dark"))
    try terminal.send("q")
    screen = try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    // The REPL repeats the problem once the dashboard has gone, so it is not lost.
    #expect(screen.contains("broken.json"), "\(screen)")
    try terminal.send("quit", "Enter")
    try terminal.waitFor { $0.contains("EXIT=") }
  }
}
