import CReadline
import Foundation
import Session
import SpecKit
import Synchronization
import TermPlot

#if canImport(Glibc)
  import Glibc
#endif

/// Set by signal handlers; read by the REPL's loop on its one thread.
let interruptFlag = Atomic<Bool>(false)
let terminateFlag = Atomic<Bool>(false)

/// The REPL the readline callbacks talk to. Readline's callbacks are C functions without
/// context, so they reach the REPL through this global; only the main thread, inside
/// `rl_callback_read_char`, touches it.
nonisolated(unsafe) var activeRepl: InteractiveRepl?
/// Completion candidates of the current completion, for readline's generator function.
nonisolated(unsafe) var completionCandidates: [String] = []

/// The interactive front end over GNU readline's callback interface: a prompt that shows the
/// session, backend and training state; completion; a history file; events printed above the
/// line being typed.
public final class InteractiveRepl {
  /// The workbench's runs; commands go to it, and everything else reads its current run.
  let bench: Workbench
  var engine: SessionEngine { bench.current }
  var finished = false
  var quitWarned = false
  var lastPrompt = ""
  var signalSources: [any DispatchSourceSignal] = []
  /// Opens the dashboard on the engine and returns when it is closed, with lines to print then.
  /// The executable provides it (the REPL does not link curses); nil: `dashboard` says it is
  /// not available.
  public var openDashboard: ((_ bench: Workbench, _ shouldStop: () -> Bool) -> [String])?
  /// Set by the `dashboard` command; the loop opens it once readline's callback has returned.
  var dashboardRequested = false

  public init(workbench: Workbench) { bench = workbench }

  /// Whether a SIGTERM or SIGHUP asked the REPL to end.
  static func terminating() -> Bool { terminateFlag.load(ordering: .relaxed) }

  /// Runs until quit; returns the exit status. With `startInDashboard`, the dashboard opens
  /// first, and `q` comes to the prompt.
  public func run(startInDashboard: Bool = false) -> Int32 {
    dashboardRequested = startInDashboard
    activeRepl = self
    installSignalHandlers()
    let history = HistoryFile()
    history.load()
    specbench_rl_set_readline_name("specbench")
    specbench_rl_set_catch_signals(0)
    specbench_rl_set_change_environment(0)
    specbench_rl_set_completion(completeLine)
    let opened =
      bench.runs.count > 1
      ? "workspace \(bench.folder ?? "") with \(bench.runs.count) runs, current \(bench.currentName)"
      : "session \(engine.spec.name) (\(engine.spec.model.layers.count) layers)"
    Terminal.write("SpecBench — \(opened). Type help for the commands, Tab to complete, Ctrl-D to quit.\n")
    lastPrompt = prompt()
    rl_callback_handler_install(lastPrompt, acceptLine)
    while !finished {
      var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
      let ready = poll(&descriptor, 1, 100)
      // A Ctrl-C comes before any key typed after it: act on it before reading input.
      if interruptFlag.exchange(false, ordering: .relaxed) { cancelLine() }
      // The terminal went away (hang-up, closed): nobody is left to answer, so end.
      if ready > 0 && descriptor.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { break }
      if ready > 0 { rl_callback_read_char() }
      if terminateFlag.load(ordering: .relaxed) { break }
      if dashboardRequested { showDashboard() }
      showEvents()
    }
    rl_callback_handler_remove()
    // Readline redraws the prompt after each line, `quit` too, and SIGTERM or SIGHUP leave it
    // there: erase it, so that what the shell prints next starts on a clean line (on a terminal
    // that is gone, the write fails harmlessly).
    Terminal.writeRaw("\r\u{1B}[K")
    bench.stopAll()
    // Ended by SIGTERM or SIGHUP (or a terminal that went away) with unsaved work: keep it.
    if !finished {
      for line in bench.saveRecoveryCopies() { Terminal.writeError(line + "\n") }
    }
    history.save()
    activeRepl = nil
    return 0
  }

  /// `spirals [reference idle]> `
  func prompt() -> String {
    let status = engine.trainingStatus.rawValue
    let runs = bench.runsSummary.map { " · " + $0 } ?? ""
    let text = "\(engine.spec.name) [\(engine.spec.backend) \(status)\(engine.hasUnsavedChanges ? " *" : "")\(runs)]> "
    return TerminalText.sanitized(text, keepLayout: false)
  }

  /// Hands the terminal to the dashboard: readline lets go of it first and takes it back after.
  func showDashboard() {
    dashboardRequested = false
    guard let openDashboard else { return }
    rl_callback_handler_remove()
    let lines = openDashboard(bench, Self.terminating)
    // The prompt readline drew after the `dashboard` line is still on the screen when the
    // dashboard could not start: write over it.
    if !lines.isEmpty { Terminal.writeRaw("\r\u{1B}[K") }
    for line in lines { Terminal.write(line + "\n") }
    showEventsWithoutPrompt()
    lastPrompt = prompt()
    rl_callback_handler_install(lastPrompt, acceptLine)
  }

  /// Prints text above the line being typed, then redraws the prompt and the line.
  func printAbove(_ text: String) {
    // Erase the prompt's row ourselves: readline's own clearing misses a prompt it drew after
    // the line handler returned. Then readline redraws the prompt and the half-typed line.
    Terminal.writeRaw("\r\u{1B}[K")
    Terminal.write(text.hasSuffix("\n") ? text : text + "\n")
    rl_on_new_line()
    rl_forced_update_display()
  }

  func showEvents() {
    let events = bench.takeEvents()
    for event in events { printAbove(event.line) }
    let next = prompt()
    if next != lastPrompt {
      lastPrompt = next
      rl_set_prompt(next)
      rl_redisplay()
    }
  }

  /// Ctrl-C at the prompt drops the line being typed.
  func cancelLine() {
    rl_replace_line("", 0)
    Terminal.write("^C\n")
    rl_on_new_line()
    rl_redisplay()
  }

  /// A whole line was entered (nil: Ctrl-D on an empty line).
  func handle(_ line: String?) {
    guard let line else {
      Terminal.write("\n")
      requestQuit()
      return
    }
    if !line.trimmingCharacters(in: .whitespaces).isEmpty { add_history(line) }
    // A command that reads a large data file (`data …`) shows how far it has got, and Ctrl-C
    // stops the read; the command then fails and the session is as it was.
    let loading = LoadProgress(live: true)
    interruptFlag.store(false, ordering: .relaxed)
    let outcome = LoadProgress.watching(
      report: { path, done, total in loading.show(path: path, done: done, total: total) },
      isCancelled: { interruptFlag.load(ordering: .relaxed) }, during: { bench.execute(line) })
    loading.finish()
    if case .quit = outcome {
      requestQuit()
      return
    }
    quitWarned = false
    switch outcome {
    case .done(let text): if !text.isEmpty { Terminal.write(text + "\n") }
    case .drawing(let drawing): Terminal.writeRaw(Terminal.render(drawing.render(width: Terminal.width)) + "\n")
    case .failed(let message): Terminal.writeError("error: " + message + "\n")
    case .waiting(let text):
      Terminal.write(text + " (Ctrl-C stops it)\n")
      waitForTraining()
    case .dashboard:
      if openDashboard == nil { Terminal.writeError("error: the dashboard is not available in this program\n") }
      dashboardRequested = true
    case .quit: break
    }
    showEventsWithoutPrompt()
    lastPrompt = prompt()
    rl_set_prompt(lastPrompt)
  }

  /// `train --wait`: prints events until training ends, with a progress line (step, loss, rate,
  /// ETA) redrawn in place a few times a second; Ctrl-C stops training, not the REPL.
  func waitForTraining() {
    var stopping = false
    var lastProgress = ContinuousClock.now
    while engine.isTraining {
      let terminating = terminateFlag.load(ordering: .relaxed)
      if interruptFlag.exchange(false, ordering: .relaxed) || terminating, !stopping {
        _ = engine.perform(.training(.stop))
        stopping = true
      }
      showEventsWithoutPrompt()
      if ContinuousClock.now - lastProgress >= .milliseconds(250) {
        lastProgress = ContinuousClock.now
        let s = engine.snapshot
        if let loss = s.lastLoss, let rate = s.learningRate {
          progressShown = true
          Terminal.writeRaw(
            "\r\u{1B}[K"
              + ProgressLine.format(step: s.step, planned: s.plannedStep, loss: loss, learningRate: rate, stepsPerSecond: s.stepsPerSecond))
        }
      }
      Thread.sleep(forTimeInterval: 0.02)
    }
    showEventsWithoutPrompt()
    if progressShown {
      Terminal.writeRaw("\r\u{1B}[K")
      progressShown = false
    }
  }

  /// Whether a progress line is on the screen, to be cleared before the next line is printed.
  var progressShown = false

  func showEventsWithoutPrompt() {
    let events = bench.takeEvents()
    if progressShown && !events.isEmpty {
      Terminal.writeRaw("\r\u{1B}[K")
      progressShown = false
    }
    for event in events { Terminal.write(event.line + "\n") }
  }

  /// Quits, or first warns once about unsaved changes.
  func requestQuit() {
    if bench.hasUnsavedChanges && !quitWarned {
      quitWarned = true
      let unsaved = bench.unsavedRuns
      let which = bench.runs.count > 1 ? "the runs " + unsaved.joined(separator: ", ") : engine.spec.name
      let how = bench.runs.count > 1 ? "save FOLDER keeps them all" : "save PATH keeps them"
      Terminal.write("unsaved changes in \(which): \(how); quit (or Ctrl-D) again discards them\n")
      return
    }
    finished = true
  }

  /// Ctrl-C through `sigaction`, so the flag is set the moment the signal arrives (and `poll`
  /// returns); SIGTERM and SIGHUP end the loop so the terminal and history are restored.
  func installSignalHandlers() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in interruptFlag.store(true, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(SIGINT, &action, nil)
    // A parent may have started us with SIGINT blocked (the mask is inherited): unblock it on
    // this thread, the one in poll, so Ctrl-C interrupts the wait for input.
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    for signalNumber in [SIGTERM, SIGHUP] {
      signal(signalNumber, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
      source.setEventHandler { terminateFlag.store(true, ordering: .relaxed) }
      source.resume()
      signalSources.append(source)
    }
  }
}

/// readline's line handler.
private let acceptLine: @convention(c) (UnsafeMutablePointer<CChar>?) -> Void = { pointer in
  let line = pointer.map { String(cString: $0) }
  free(pointer)
  activeRepl?.handle(line)
}

/// readline's completion hook: candidates for the word at the cursor, or nil for file names.
private let completeLine: @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = {
  text, start, _ in
  guard let repl = activeRepl, let buffer = specbench_rl_line_buffer() else { return nil }
  let before = String(String(cString: buffer).utf8.prefix(Int(start))) ?? ""
  let word = text.map { String(cString: $0) } ?? ""
  guard
    let candidates = Completion.candidates(
      before: before + word, spec: repl.engine.spec, backends: repl.engine.backendNames, runs: repl.bench.runs.map(\.name))
  else {
    specbench_rl_set_completion_over(0)
    return nil
  }
  specbench_rl_set_completion_over(1)
  specbench_rl_set_append_character(candidates.count == 1 && candidates[0].hasSuffix("=") ? 0 : 32)
  completionCandidates = candidates
  return rl_completion_matches(text, nextCandidate)
}

/// readline's generator: the state-th candidate, as a string readline frees.
private let nextCandidate: @convention(c) (UnsafePointer<CChar>?, Int32) -> UnsafeMutablePointer<CChar>? = { _, state in
  let index = Int(state)
  return index < completionCandidates.count ? strdup(completionCandidates[index]) : nil
}

/// The persistent history: `$XDG_STATE_HOME/specbench/history` (or
/// `~/.local/state/specbench/history`), read at start and written at exit, 1000 lines kept.
/// A file that cannot be read or written gives a warning and never stops the REPL.
struct HistoryFile {
  let path: String

  init() {
    let environment = ProcessInfo.processInfo.environment
    let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/state")
    path = base + "/specbench/history"
  }

  /// Whether the history file is a regular file (or absent): a FIFO, device or folder there is
  /// never read or written (readline would block on a FIFO, or read a device without end).
  func usable(warn: Bool = true) -> Bool {
    guard let kind = FileAccess.resolvedKind(of: path), kind != .regular else { return true }
    if warn {
      Terminal.writeError("warning: the history file \(path) is \(kind.phrase), not a regular file; history is not read or saved\n")
    }
    return false
  }

  func load() {
    guard FileManager.default.fileExists(atPath: path), usable() else { return }
    let status = read_history(path)
    if status != 0 { Terminal.writeError("warning: cannot read the history file \(path): \(String(cString: strerror(status)))\n") }
  }

  func save() {
    guard usable(warn: false) else { return }
    do {
      try FileManager.default.createDirectory(atPath: PathText.folder(path), withIntermediateDirectories: true)
    } catch {
      Terminal.writeError("warning: cannot create the folder of \(path); history not saved\n")
      return
    }
    let status = write_history(path)
    if status != 0 {
      Terminal.writeError("warning: cannot write the history file \(path): \(String(cString: strerror(status)))\n")
    } else {
      _ = history_truncate_file(path, 1000)
    }
  }
}
