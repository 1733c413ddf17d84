import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// Several runs in the real program under tmux: a sweep of three learning rates trained at
/// once, compared in the REPL and in the dashboard's runs pane, saved as a workspace, reopened.
@Suite("Runs side by side on a terminal", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct WorkbenchTerminalTests {
  /// Types `runs` until each named run has trained past `steps` (a loaded machine starts them
  /// slowly); a minute at most.
  static func waitUntilTrained(_ terminal: TmuxSession, _ names: [String], past steps: Int, runs: Int) throws {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
      try terminal.send("C-l")
      try terminal.send("runs", "Enter")
      let rows = try terminal.waitFor(required: false) { $0.contains("\(runs) runs, \(names.count) training") }.split(separator: "\n")
      let trained = names.map { name in
        rows.first { $0.contains(" \(name) ") }.flatMap { row in row.split(separator: " ").compactMap { Int($0) }.first } ?? 0
      }
      if trained.allSatisfy({ $0 > steps }) { return }
      Thread.sleep(forTimeInterval: 0.2)
    }
    throw TestFailure("\(names) did not train past step \(steps) within a minute")
  }

  @Test func aSweepTrainedAtOnceComparedSavedAndReopened() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(from: folder, width: 140, height: 44)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    // Long runs on the slower backend, so that all three are still training when looked at.
    try terminal.type("backend reference", until: "reference")
    try terminal.type("stop max_steps 100000000", until: "max_steps steps=100000000")
    try terminal.type("sweep optimizer.lr=0.001,0.003,0.01", until: "sweep of spirals: 3 runs")
    var screen = try terminal.waitFor { $0.contains("[started] lr=0.01: training on reference") }
    #expect(screen.contains("[started] lr=0.001: training on reference") && screen.contains("[started] lr=0.003: training"))
    // The prompt counts the runs training; runs lists them, each moving on.
    screen = try terminal.waitFor { $0.contains("spirals [reference idle * · run 1/4 · 3 training]>") }
    try terminal.send("C-l")
    screen = try terminal.type("runs", until: "4 runs, 3 training")
    for name in ["lr=0.001", "lr=0.003", "lr=0.01"] {
      let row = try #require(screen.split(separator: "\n").first { $0.contains(" \(name) ") }, "\(screen)")
      #expect(row.contains("reference") && row.contains("running"), "\(row)")
    }
    #expect(screen.contains("3 runs share 2 cores") || screen.contains("runs share"), "\(screen)")
    // Compared while they train: one chart with a legend entry a run, the differing field.
    try Self.waitUntilTrained(terminal, ["lr=0.001", "lr=0.003", "lr=0.01"], past: 5, runs: 4)
    try terminal.send("C-l")
    try terminal.send("compare lr=0.001 lr=0.003 lr=0.01", "Enter")
    // The differing field's row (the sweep's line above names the field too, until the screen clears).
    // (Waiting for the whole row: a capture can land while the terminal is still drawing it.)
    screen = try terminal.waitFor {
      $0.split(separator: "\n").contains {
        $0.hasPrefix("optimizer.lr") && $0.contains("0.001") && $0.contains("0.003") && $0.contains("0.01")
      }
    }
    #expect(screen.contains("━ lr=0.001") && screen.contains("━ lr=0.003") && screen.contains("━ lr=0.01"), "\(screen)")
    #expect(screen.contains("loss by step") && screen.contains("batch loss"), "\(screen)")
    let field = try #require(screen.split(separator: "\n").first { $0.hasPrefix("optimizer.lr") })
    #expect(field.contains("0.01") && field.contains("0.001") && field.contains("0.003"), "\(field)")
    // The dashboard's runs pane: Tab to it, choose lr=0.01, overlay it, make it current, pause it.
    try terminal.send("dashboard", "Enter")
    screen = try terminal.waitFor {
      $0.contains("runs · ↵ switch") && $0.contains("4 runs, 3 training")
        && DashboardTerminalTests.pane("runs ·", in: $0).filter { $0.contains("running") }.count == 3
    }
    let runsPane = DashboardTerminalTests.pane("runs ·", in: screen)
    #expect(runsPane.contains { $0.contains("*") && $0.contains("spirals") }, "\(runsPane)")
    #expect(runsPane.filter { $0.contains("running") }.count == 3, "\(runsPane)")
    for _ in 0..<5 { try terminal.send("Tab") }
    for _ in 0..<3 { try terminal.send("Down") }
    try terminal.send("v")
    screen = try terminal.waitFor { $0.contains("lr=0.01 overlaid on the loss") }
    screen = try terminal.waitFor { DashboardTerminalTests.pane("loss ·", in: $0).joined().contains("batch loss  ━ lr=0.01") }
    try terminal.send("Enter")
    screen = try terminal.waitFor { $0.contains("switched from spirals to lr=0.01") }
    try terminal.send(" ")
    screen = try terminal.waitFor {
      DashboardTerminalTests.pane("runs ·", in: $0).contains { $0.contains("lr=0.01") && $0.contains("paused") }
    }
    #expect(screen.contains("4 runs, 2 training"), "\(screen)")
    try terminal.send("q")
    try terminal.waitFor { $0.contains("lr=0.01 [reference paused") }
    // Stop the others, save the workspace, quit.
    // Each run's own prompt says when it has stopped (the screen may still hold another's event).
    for name in ["lr=0.001", "lr=0.003"] {
      try terminal.type("switch \(name)", until: "\(name) [reference running")
      try terminal.type("stop", until: "\(name) [reference idle", seconds: 60)
    }
    try terminal.type("save ws", until: "saved the workspace ws: 4 runs", seconds: 30)
    try terminal.send("quit", "Enter")
    try terminal.waitFor { $0.contains("EXIT=0") }
    let index = try WorkspaceIndex.decode(try FileAccess.read("\(folder)/ws/workspace.json"))
    #expect(index.runs.map(\.name) == ["spirals", "lr=0.001", "lr=0.003", "lr=0.01"] && index.current == "lr=0.003")
    let saved = try index.runs.dropFirst().map { try SessionFile.load("\(folder)/ws/\($0.file)") }
    #expect(saved.allSatisfy { ($0.spec.state?.step ?? 0) > 0 }, "every swept run trained")
    #expect(index.runs.dropFirst().allSatisfy { $0.timeline.count >= 2 }, "each run's training time is kept")

    // Reopened: every run, the current one current, their losses compared again.
    let reopened = try TmuxSession.specbench("repl ws", from: folder, width: 140, height: 44)
    screen = try reopened.waitFor { $0.contains("workspace ws with 4 runs, current lr=0.003") && $0.contains("· run 3/4 · 0 training]>") }
    screen = try reopened.type("runs", until: "4 runs, 0 training")
    for (entry, bundle) in zip(index.runs.dropFirst(), saved) {
      let row = try #require(screen.split(separator: "\n").first { $0.contains(" \(entry.name) ") })
      #expect(row.contains(" \(bundle.spec.state!.step) "), "\(row) at step \(bundle.spec.state!.step)")
    }
    try reopened.send("C-l")
    screen = try reopened.type("compare --by time", until: "not in the chart: spirals: no losses recorded yet")
    #expect(screen.contains("━ lr=0.001") && screen.contains("not in the chart: spirals: no losses recorded yet"), "\(screen)")
    try reopened.send("quit", "Enter")
    try reopened.waitFor { $0.contains("EXIT=0") }
  }

  /// SIGTERM while three runs train: every run stops at a step boundary and each run's unsaved
  /// work is kept in a recovery copy of its own.
  @Test func aSignalWhileRunsTrainKeepsEveryRun() throws {
    let folder = temporaryFolder("specbench-runs-term")
    try FileManager.default.copyItem(atPath: repositoryPath("sessions/xor.json"), toPath: folder + "/work.json")
    let terminal = try TmuxSession.specbench(folder + "/work.json", from: folder, history: folder, width: 120, height: 30)
    try terminal.waitFor { $0.contains("xor [reference idle]>") }
    try terminal.type("stop max_steps 100000000", until: "max_steps steps=100000000")
    try terminal.type("sweep optimizer.lr=0.01,0.1", until: "[started] lr=0.1: training")
    // Both runs have trained some steps before the signal (a loaded machine starts them slowly).
    try Self.waitUntilTrained(terminal, ["lr=0.01", "lr=0.1"], past: 0, runs: 3)
    let pids = ReplHangupTests.specbenchProcesses(opening: folder + "/work.json")
    #expect(pids.count == 1)
    for pid in pids { kill(pid, SIGTERM) }
    let screen = try terminal.waitFor(seconds: 30) { $0.contains("EXIT=") }.replacingOccurrences(of: "\n", with: "")
    for name in ["xor", "lr=0.01", "lr=0.1"] {
      #expect(screen.contains("unsaved changes in \(name) were saved to \(folder)/state/specbench/recovered/"), "\(name): \(screen)")
    }
    let recovered = try FileManager.default.contentsOfDirectory(atPath: folder + "/state/specbench/recovered").filter {
      $0.hasSuffix(".json")
    }
    #expect(recovered.count == 3, "\(recovered)")
    let trained = try recovered.filter { $0.hasPrefix("lr") }.map { try SessionFile.load(folder + "/state/specbench/recovered/" + $0) }
    #expect(trained.count == 2 && trained.allSatisfy { ($0.spec.state?.step ?? 0) > 0 }, "each swept run kept its training")
  }

  /// `specbench compare` on a workspace folder and on session files: the table, the differing
  /// fields, JSON; a bad argument is an error that says what to do.
  @Test func compareFromTheCommandLine() throws {
    let folder = temporaryFolder()
    let script = ["stop max_steps 60", "sweep optimizer.lr=0.001,0.02 batch=16", "save ws"].joined(separator: "\n")
    try Data((script + "\n").utf8).write(to: URL(fileURLWithPath: "\(folder)/bad.txt"))
    let made = try runShell("$SPECBENCH < bad.txt", in: folder)
    #expect(made.status == 1, "batch is not a spec field: \(made.stderr)")
    #expect(made.stderr.contains("sweep: batch: the spec has no field batch"), "\(made.stderr)")
    let fixed = script.replacingOccurrences(of: "batch=16", with: "training.batch_size=16,32")
    try Data((fixed + "\n").utf8).write(to: URL(fileURLWithPath: "\(folder)/good.txt"))
    let ok = try runShell("$SPECBENCH < good.txt", in: folder)
    #expect(ok.status == 0, "\(ok.stderr)")
    let text = try specbench("compare", "\(folder)/ws", "--width", "100")
    #expect(text.status == 0, "\(text.stderr)")
    #expect(text.stdout.contains("━ lr=0.001,batch_size=16") && text.stdout.contains("lr=0.02,batch_size=32"), "\(text.stdout)")
    let fields = text.stdout.split(separator: "\n").filter { $0.hasPrefix("optimizer.lr") || $0.hasPrefix("training.batch_size") }
    #expect(fields.count == 2, "\(text.stdout)")
    let json = try specbench("compare", "\(folder)/ws/lr=0.001,batch_size=16.json", "\(folder)/ws/lr=0.02,batch_size=16.json", "--json")
    let object = try #require(try JSONParser.parse(Array(json.stdout.utf8)).objectValue, "\(json.stdout)")
    let runs = try #require(object["runs"]?.arrayValue)
    #expect(runs.count == 2 && runs.allSatisfy { $0.objectValue?["step"]?.numberValue?.int == 60 })
    #expect(runs[0].objectValue?["train_loss_points"]?.arrayValue?.count == 60)
    #expect(object["differences"]?.arrayValue?.count == 1)
    // The dashboard opens the workspace too: its frame lists the runs.
    let frame = try specbench("dashboard", "\(folder)/ws", "--snapshot", "-", "--size", "120x40")
    #expect(frame.status == 0 && frame.stdout.contains("runs · ↵ switch"), "\(frame.stderr)")
    #expect(frame.stdout.contains("5 runs, 0 training"), "\(frame.stdout)")
    #expect(
      frame.stdout.split(separator: "\n").contains { $0.contains("lr=0.02,batch_size=32") && $0.contains("idle") && $0.contains("step 60") }
    )
    let bad = try specbench("compare", "\(folder)/nowhere")
    #expect(bad.status == 1 && bad.stderr.contains("nowhere"), "\(bad.stderr)")
    let axis = try specbench("compare", "\(folder)/ws", "--by", "epoch")
    #expect(axis.status != 0 && axis.stderr.contains("--by epoch: expected step or time"), "\(axis.stderr)")
  }
}
