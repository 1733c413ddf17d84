import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@Suite("The REPL on a terminal", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct ReplTerminalTests {
  @Test func buildTrainHotSwapPlotSaveQuitAndReload() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(from: folder, width: 200, height: 50)
    // The built-in session trains on fast, the default where it can run.
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    // Build a model by typing, completing an activation with Tab; train on reference.
    try terminal.send("new mine --input 2", "Enter")
    try terminal.send("backend reference", "Enter")
    try terminal.send("data spirals samples=300 classes=3 noise=0.1 seed=5", "Enter")
    try terminal.send("add dense 32 re", "Tab")
    // (capture-pane trims trailing spaces, so the space Tab adds after "relu" is not seen.)
    var screen = try terminal.waitFor { $0.contains("add dense 32 relu") }
    #expect(screen.contains("mine [reference idle *]> add dense 32 relu"), "tab completed the activation: \(screen)")
    for line in ["", "add dense 3", "optimizer adam lr=0.01", "stop max_steps 1000000", "train"] { try terminal.send(line, "Enter") }
    screen = try terminal.waitFor { $0.contains("[started] training on reference") && $0.contains("mine [reference running *]>") }
    #expect(screen.contains("mine [reference running *]>"), "\(screen)")
    // status while it trains
    // (The first steps may not be recorded yet: ask again until a loss shows.)
    // Each figure labelled: the last batch's loss, the recent batches' accuracy, the last
    // validation (once an epoch has ended). The line is longer than the terminal: it wraps (and
    // capture-pane trims a space at a row's end), so it is matched without newlines and spaces.
    let statusLine =
      #"running at step \d+/1000000, epoch \d+, backend reference, batch loss [0-9.e-]+, accuracy [0-9.]+% over the last \d+ batches(, validation (loss|accuracy) [0-9.e%-]+)*, lr 0.01"#
    func hasStatus(_ screen: String) -> Bool {
      screen.filter { $0 != "\n" && $0 != " " }.range(of: statusLine.filter { $0 != " " }, options: .regularExpression) != nil
    }
    for _ in 0..<20 {
      try terminal.send("status", "Enter")
      screen = try terminal.waitFor(seconds: 1, required: false, hasStatus)
      if hasStatus(screen) { break }
    }
    #expect(hasStatus(screen), "\(screen)")
    // hot-swap the optimizer
    try terminal.send("optimizer sgd lr=0.05 momentum=0.9", "Enter")
    screen = try terminal.waitFor { $0.contains("[optimizer] optimizer at step ") }
    #expect(screen.contains("adam -> sgd: fresh optimizer state (momentum_buffer), counting from update 1"))
    // plot the loss: braille appears
    try terminal.send("plot loss", "Enter")
    screen = try terminal.waitFor { $0.contains("loss  ━ train") }
    #expect(screen.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, "braille dots in \(screen)")
    // the batches' accuracy, and the rates used (the optimizer change marked) and planned
    try terminal.type("plot accuracy --smooth 0.6", until: "accuracy (%)  ━ batch")
    try terminal.type("plot lr", until: "learning rate (constant)  ━ used  ━ planned")
    try terminal.send("stop", "Enter")
    try terminal.waitFor { $0.contains("[stopped] stopped by interrupted at step ") }
    try terminal.send("save mine", "Enter")
    screen = try terminal.waitFor { $0.contains("[saved] saved mine.json with its state at step ") }
    #expect(screen.contains("[saved] saved mine.json with its state at step "), "\(screen)")
    try terminal.send("quit", "Enter")
    screen = try terminal.waitFor { $0.contains("EXIT=") }
    #expect(screen.contains("EXIT=0"))

    // Reload: the session is there, with its state and history.
    let saved = try SessionFile.load(folder + "/mine.json")
    #expect(saved.spec.name == "mine")
    #expect(saved.spec.model.layers.map(\.name) == ["dense1", "dense2"])
    #expect(saved.spec.optimizer == .sgd(.init(lr: 0.05, momentum: 0.9)))
    #expect(saved.spec.journal.first == "new mine --input 2")
    #expect(saved.spec.history.events.contains { $0.kind == "optimizer" })
    let step = try #require(saved.spec.state?.step)
    let reopened = try TmuxSession.specbench("mine.json", from: folder, width: 110, height: 45)
    try reopened.waitFor { $0.contains("mine [reference idle]>") }
    try reopened.send("status", "Enter")
    screen = try reopened.waitFor { $0.contains("idle at step \(step)") }
    #expect(screen.contains("idle at step \(step)"))
    // The history file kept what was typed.
    let history = try String(contentsOfFile: folder + "/state/specbench/history", encoding: .utf8)
    #expect(history.contains("optimizer sgd lr=0.05 momentum=0.9"))
  }

  /// A practitioner's session on their own CSV, typed: what `new` chose edited (`set input`),
  /// the overview, training with progress, `evaluate`, `predict` on raw rows, the labelled
  /// status, `undo` saying what it undid.
  @Test func aCSVSessionFromNewToPredict() throws {
    let folder = temporaryFolder()
    var csv = "a,b,kind\n"
    for i in 0..<40 { csv += "\(Double(i) * 0.25),\(i % 7),\(Double(i) * 0.25 < 5 ? "small" : "big")\n" }
    try csv.write(toFile: folder + "/flowers.csv", atomically: true, encoding: .utf8)
    let terminal = try TmuxSession.specbench(from: folder, width: 160, height: 50)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    try terminal.send("new flowers --input 3", "Enter")
    try terminal.type(
      "data csv path=flowers.csv target=kind task=classification normalize=true validation_fraction=0.25", until: "(40 samples)")
    try terminal.type("set input 2", until: "input [2] (was [3])")
    for line in ["add dense 8 relu", "add dense 2", "loss softmax_cross_entropy"] { try terminal.send(line, "Enter") }
    var screen = try terminal.type("show", until: "Journal:    6 commands")
    #expect(screen.contains("Model: input [2]") && screen.contains("Data:       csv path=\"flowers.csv\""), "\(screen)")
    try terminal.type("train 300 --wait", until: "[stopped] stopped by steps at step 300")
    screen = try terminal.type("evaluate validation", until: "class  precision  recall  F1")
    #expect(screen.contains("validation: 10 samples, loss ") && screen.contains("true \\ predicted  big  small"), "\(screen)")
    // Raw rows, standardised as training saw them, answered with the csv's class names.
    screen = try terminal.type("predict 9,1 1,1", until: "1,1 → ")
    #expect(screen.contains("9,1 → big (big ") && screen.contains("1,1 → small (big "), "\(screen)")
    screen = try terminal.type("status", until: "idle at step 300")
    #expect(screen.contains("batch loss ") && screen.contains("over the last 50 batches, validation loss "), "\(screen)")
    #expect(screen.contains("validation accuracy "), "\(screen)")
    // Undo takes back the edit and keeps the training done since.
    try terminal.type("undo", until: "undid loss softmax_cross_entropy (the state trained since, at step 300, is kept)")
  }

  /// "Adam first, L-BFGS to finish" typed at the prompt: Adam trains, `optimizer lbfgs …` swaps
  /// (an event naming the fresh state), training on warns about small batches only when they
  /// are, status says what L-BFGS did, a swap to jax is refused, and the saved file holds it.
  @Test func adamThenLBFGSAtThePrompt() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(from: folder, width: 160, height: 40)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    try terminal.type("batch 600", until: "batch size 600")
    try terminal.type("train 30 --wait", until: "[stopped] stopped by steps at step 30")
    var screen = try terminal.type("optimizer lbfgs line_search=strong_wolfe max_iter=5", until: "adam -> lbfgs: fresh optimizer state")
    #expect(screen.contains("[optimizer] adam -> lbfgs: fresh optimizer state (model/d, model/t"), "\(screen)")
    screen = try terminal.type("train 5 --wait", until: "[stopped] stopped by steps at step 35")
    #expect(!screen.contains("lbfgs assumes one fixed objective"), "a full batch is not warned about: \(screen)")
    screen = try terminal.type("status", until: "L-BFGS iterations")
    #expect(screen.contains(#/so far: \d+ L-BFGS iterations, \d+ evaluations, last t /#), "\(screen)")
    screen = try terminal.type("backend jax", until: "error: the jax backend cannot train this session")
    #expect(screen.contains("optimizer.type: optimizer \"lbfgs\" is not supported by this backend"), "\(screen)")
    screen = try terminal.type("batch 32", until: "batch size 32")
    screen = try terminal.type("train 1 --wait", until: "[stopped] stopped by steps at step 36")
    #expect(screen.contains("warning: lbfgs assumes one fixed objective, but batch_size 32 is smaller than the "), "\(screen)")
    try terminal.type("save lb", until: "saved lb.json")
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
    let saved = try SessionFile.load(folder + "/lb.json")
    #expect(saved.spec.optimizer.name == "lbfgs" && saved.tensors?["opt/model/n_iter"]?.integers?.first ?? 0 > 0)
  }

  /// `backend jax devices=2` while training, in the REPL and then in the dashboard: the swap
  /// is an event above the prompt, status and the status bar name the backend, and the
  /// dashboard's `:backend fast` swaps back.
  @Test(.enabled(if: JaxPython.isAvailable, "skipped: jax cannot be imported (scripts/setup.sh installs it)"))
  func swappingOntoJaxWhileTraining() throws {
    let terminal = try TmuxSession.specbench(from: temporaryFolder(), width: 160, height: 40)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    for line in ["backend reference", "stop max_steps 100000000", "train"] { try terminal.send(line, "Enter") }
    try terminal.waitFor { $0.contains("spirals [reference running *]>") }
    try terminal.send("backend jax devices=2", "Enter")
    var screen = try terminal.waitFor(seconds: 60) { $0.contains("reference -> jax devices=2, state carried across") }
    #expect(screen.contains("[backend] backend at step "), "\(screen)")
    screen = try terminal.type("status", until: "backend jax, batch loss")
    #expect(screen.contains("running at step "), "\(screen)")
    let swapStep = try #require(
      screen.firstMatch(of: /backend at step (\d+): reference -> jax/).flatMap { Int($0.1) })
    try terminal.send("dashboard", "Enter")
    try terminal.waitFor { $0.contains("│ jax │") && $0.contains("│ running │") }
    // The histograms come from the jax trainer's exports: a step after the swap.
    // (The title groups the digits: "@ step 118,834".)
    func histogramStep(_ screen: String) -> Int? {
      screen.firstMatch(of: /histogram · \S+ @ step ([\d,]+)/).flatMap { Int($0.1.filter(\.isNumber)) }
    }
    screen = try terminal.waitFor(seconds: 30) { (histogramStep($0) ?? 0) > swapStep }
    #expect((histogramStep(screen) ?? 0) > swapStep, "\(screen)")
    // The model pane's gradient norm and update ratio, measured over one update of the engine.
    screen = try terminal.waitFor(seconds: 30) { $0.contains(/dense1 dense relu \[64\] +192 +[0-9][0-9.e+-]* +[0-9][0-9.e+-]*/) }
    #expect(screen.contains(/dense1 dense relu \[64\] +192 +[0-9]/), "\(screen)")
    try terminal.send(":")
    try terminal.send("-l", "backend fast")
    try terminal.send("Enter")
    screen = try terminal.waitFor(seconds: 60) { $0.contains("jax devices=2 -> fast, state carried across") && $0.contains("│ fast │") }
    try terminal.send("q")
    try terminal.waitFor { $0.contains("spirals [fast running *]>") }
    try terminal.send("stop", "Enter")
    try terminal.waitFor { $0.contains("[stopped] stopped by interrupted at step ") }
    // (Unsaved changes: the second quit discards them.)
    try terminal.send("quit", "Enter")
    try terminal.waitFor { $0.contains("quit (or Ctrl-D) again discards them") }
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
  }

  @Test func eventsArriveAboveTheLineBeingTyped() throws {
    let folder = temporaryFolder()
    let terminal = try TmuxSession.specbench(from: folder, width: 110, height: 30)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    try terminal.send("backend reference", "Enter")
    try terminal.send("train 300", "Enter")
    try terminal.send("half typed")
    // The event is printed, then readline redraws the prompt and the half-typed line below it:
    // wait for both (a capture can fall between the two writes).
    func redrawnBelowTheEvent(_ screen: String) -> Bool {
      let lines = screen.split(separator: "\n").map(String.init)
      guard let stopped = lines.firstIndex(where: { $0.hasPrefix("[stopped] stopped by steps at step 300") }) else { return false }
      return lines[(stopped + 1)...].contains { $0.hasSuffix("> half typed") }
    }
    let screen = try terminal.waitFor(redrawnBelowTheEvent)
    let lines = screen.split(separator: "\n").map(String.init)
    let stopped = try #require(lines.firstIndex { $0.hasPrefix("[stopped]") })
    #expect(lines[(stopped + 1)...].contains { $0.hasSuffix("> half typed") }, "the typed text is redrawn below the event: \(screen)")
    // Ctrl-C drops the line, not the REPL.
    try terminal.send("C-c")
    try terminal.send("status", "Enter")
    #expect(try terminal.waitFor { $0.contains("idle at step 300") }.contains("^C"))
    // Ctrl-C stops a train --wait, and the REPL goes on.
    try terminal.send("train 100000000 --wait", "Enter")
    try terminal.waitFor { $0.contains("(Ctrl-C stops it)") }
    // While it waits, a progress line: the step of the planned one, the loss, the rate.
    let progress = try terminal.waitFor { screen in
      screen.split(separator: "\n").contains {
        $0.hasPrefix("step ") && $0.contains("/100000300  batch loss ") && $0.contains(" steps/s  ETA ")
      }
    }
    #expect(progress.contains("/100000300  batch loss "), "\(progress)")
    try terminal.send("C-c")
    var after = try terminal.waitFor { $0.contains("[stopped] stopped by interrupted at step ") }
    #expect(after.contains("[stopped] stopped by interrupted at step "))
    try terminal.send("status", "Enter")
    after = try terminal.waitFor { $0.components(separatedBy: "idle at step").count >= 3 }
    #expect(after.components(separatedBy: "idle at step").count >= 3, "a second status answered: \(after)")
    // Ctrl-R searches the history.
    try terminal.send("C-r", "train 1")
    after = try terminal.waitFor { $0.contains("(reverse-i-search)`train 1': train 100000000 --wait") }
    #expect(after.contains("(reverse-i-search)`train 1': train 100000000 --wait"))
    try terminal.send("C-g")
  }
}

@Suite("The REPL when its terminal goes away", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct ReplHangupTests {
  /// Closing the terminal (tmux kills the pane: SIGHUP, then a hung-up tty) ends the REPL, also
  /// in the middle of `train --wait`, with unsaved changes, or with the dashboard open while
  /// training runs: no process is left training.
  @Test(arguments: ["train 100000000 --wait", "train 100000000", "batch 8", "dashboard"])
  func theProcessEndsWhenItsTerminalCloses(command: String) throws {
    let folder = temporaryFolder("specbench-hangup")
    try FileManager.default.copyItem(atPath: repositoryPath("sessions/xor.json"), toPath: folder + "/marker.json")
    var terminal: TmuxSession? = try TmuxSession(
      "cd \(folder) && XDG_STATE_HOME=\(folder)/state \(specbenchExecutable) \(folder)/marker.json", width: 100, height: 30)
    try terminal!.waitFor { $0.contains("xor [reference idle]>") }
    if command == "dashboard" {
      try terminal!.send("train 100000000", "Enter")
      try terminal!.waitFor { $0.contains("[started]") }
      try terminal!.send("dashboard", "Enter")
      let screen = try terminal!.waitFor { $0.contains("─ events") && $0.contains("│ running │") }
      #expect(screen.contains("│ running │"), "the dashboard is open while training runs: \(screen)")
    } else {
      try terminal!.send(command, "Enter")
      try terminal!.waitFor { $0.contains(command.hasPrefix("train") ? "[started]" : "batch size 8") }
    }
    terminal = nil  // kills the session
    let deadline = Date().addingTimeInterval(10)
    var running = Self.specbenchProcesses(opening: folder + "/marker.json")
    while !running.isEmpty && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.05)
      running = Self.specbenchProcesses(opening: folder + "/marker.json")
    }
    #expect(running.isEmpty, "specbench still runs after its terminal closed")
    for pid in running { kill(pid, SIGKILL) }
  }

  /// Processes whose program is the specbench binary and whose first argument is `file`. (Not
  /// `pgrep -f`: a tmux server keeps the command line of the client that started it, which
  /// names the file too.)
  static func specbenchProcesses(opening file: String) -> [pid_t] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> pid_t? in
      guard let pid = pid_t(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
      let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
      return arguments.count >= 2 && arguments[0] == specbenchExecutable && arguments[1] == file ? pid : nil
    }
  }
}

@Suite("The REPL reading a script")
struct ReplScriptTests {
  @Test func aScriptRunsAndABadLineSaysWhereAndFailsTheRun() throws {
    let folder = temporaryFolder()
    let script = """
      # a first session
      new demo --input 2
      data moons samples=200 noise=0.1 seed=1
      add dense 16 tanh
      add dense 2 rleu
      add dense 2
      loss softmax_cross_entropy
      optimizer adam lr=0.02
      stop max_steps 100
      train
      save \(folder)/demo
      """
    try script.write(toFile: folder + "/script.txt", atomically: true, encoding: .utf8)
    let result = try runProcess("/bin/sh", ["-c", "\(specbenchExecutable) < \(folder)/script.txt"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("line 5: add dense 2 rleu\n  layer.activation: unknown activation \"rleu\""))
    #expect(result.stderr.contains("(did you mean \"relu\"?)"))
    #expect(result.stderr.hasSuffix("1 command failed\n"))
    #expect(result.stdout.contains("[stopped] stopped by max_steps at step 100"))
    #expect(result.stdout.contains("saved \(folder)/demo.json with its state at step 100"))
    let saved = try SessionFile.load(folder + "/demo.json")
    #expect(saved.spec.model.layers.count == 2)
    #expect(!saved.spec.journal.contains("add dense 2 rleu"))
  }

  @Test func aCleanScriptExitsZero() throws {
    let result = try runProcess("/bin/sh", ["-c", "printf 'status\\nshow optimizer\\nhelp train\\n' | \(specbenchExecutable)"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("idle at step 0, epoch 0, backend fast"))
    #expect(result.stdout.contains("Optimizer:  adam lr=0.01"))
    #expect(result.stdout.contains("train [STEPS] [--wait]"))
  }
}
