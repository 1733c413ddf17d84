import ArgumentParser
import Backends
import Datasets
import Foundation
import Session
import SpecKit
import Synchronization
import TermPlot

/// The signal (SIGINT, SIGTERM or SIGHUP) that asked the run to stop, or 0; the run stops at
/// the next step boundary and saves, whichever it was.
let stopSignal = Atomic<Int32>(0)

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a session (from its state, if it has one) until a stop rule fires.",
    discussion: """
      With --json, standard output is one JSON object per line: {"event":"step",...} for every \
      recorded step (the batch loss before the update), {"event":"eval",...} after each epoch when \
      the data has a validation split, and last {"event":"done","step":N,"reason":...}. Ctrl-C \
      stops at the next step boundary (and still saves with --save). Exit status 1 when training \
      diverged (the state saved is the last finite one). SIGTERM and SIGHUP (what timeout, kill \
      and job schedulers send) act as Ctrl-C does. When standard output fails (closed, full, or a \
      reader such as head that went away), the run stops at the next step boundary, saves with \
      --save, says why on standard error and exits with status 1.
      """
  )

  @Argument(help: "The session file (NAME.json).")
  var file: String

  @Option(
    parsing: .unconditional, help: "Train exactly this many more steps, in place of the max_steps and max_epochs rules.",
    transform: { try parseStepCount($0, option: "--steps") })
  var steps: Int?

  @Option(help: "The backend to train on (default: the session's backend).")
  var backend: String?

  @OptionGroup var settings: BackendSettings

  @Option(
    help: ArgumentHelp(
      "Train with this optimizer, as the workbench's optimizer command takes it (\"lbfgs line_search=strong_wolfe\", \"adam lr=0.001\"); the trained state is mapped as there (docs/training.md).",
      valueName: "OPTIMIZER"))
  var optimizer: String?

  @Flag(help: "Print one JSON object per line instead of progress.")
  var json = false

  @Option(
    help: "Save the session here when training ends (PATH.json, its state PATH.safetensors and its metrics PATH.history.safetensors).")
  var save: String?

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    access.apply()
    var bundle: SessionBundle
    do { bundle = try SessionFile.load(file) } catch { throw fail(error) }
    if let optimizer {
      var document = SessionDocument(bundle: bundle, path: file)
      do {
        let (message, events) = try document.edit("optimizer " + optimizer, folder: PathText.folder(file))
        Console.error(([message] + events.map(\.line)).joined(separator: "\n"))
      } catch {
        throw failWith("--optimizer: \(error.description)")
      }
      bundle = document.bundle
    }
    if let steps, let problem = StateSpec.tooManySteps(steps, from: bundle.spec.state?.step ?? 0) {
      throw failWith("--steps \(steps): \(problem)")
    }
    if let save { try checkSaveTarget(save) }
    let training: TrainingRun
    // Ctrl-C, SIGTERM and SIGHUP stop a long load too (nothing is changed); a terminal sees how
    // far it has got.
    installStopHandlers()
    let loading = LoadProgress(live: isatty(STDERR_FILENO) == 1)
    DataLoadMonitor.shared.install(
      progress: { path, done, total in loading.show(path: path, done: done, total: total) },
      isCancelled: { stopSignal.load(ordering: .relaxed) != 0 })
    defer { DataLoadMonitor.shared.install(progress: nil) }
    do {
      let engine = try BackendRegistry.builtIn.named(backend ?? bundle.spec.backend).configured(settings.options)
      training = try TrainingRun(bundle: bundle, folder: PathText.folder(file), backend: engine)
      loading.finish()
    } catch let error as BackendError {
      loading.finish()
      throw failWith(error.description)
    } catch let error as SessionError {
      loading.finish()
      if case .data(.interrupted) = error {
        Console.error(error.description)
        throw ExitCode(130)
      }
      throw failWith(error.description)
    }
    for warning in training.startWarnings {
      Console.error("warning: " + warning)
    }
    var reporter = RunReporter(
      json: json, planned: TrainingRun.plannedStep(spec: bundle.spec, from: training.trainer.step, extraSteps: steps))
    let summary = training.run(
      extraSteps: steps, shouldStop: { stopSignal.load(ordering: .relaxed) != 0 || Console.outputFailed },
      onEvent: { reporter.report($0) })
    let signalNumber = stopSignal.load(ordering: .relaxed)
    if signalNumber != 0 && signalNumber != SIGINT {
      Console.error("\(signalNumber == SIGTERM ? "SIGTERM" : "SIGHUP"): stopped at step \(summary.step), a step boundary")
    }
    if let save {
      do {
        try SessionFile.save(training.bundle, to: save)
        if !json { say("saved \(SessionFile.paths(for: save).json) at step \(summary.step)") }
        if Console.outputFailure != nil { Console.error("saved \(SessionFile.paths(for: save).json) at step \(summary.step)") }
      } catch {
        throw fail(error)
      }
    }
    if summary.reason == .diverged || summary.reason == .engineFailed || summary.reason == .dataChanged {
      Console.error(summary.message)
      throw ExitCode(1)
    }
    if let failure = Console.outputFailure {
      Console.error("stopped at step \(summary.step) because \(failure)" + (save == nil ? "; nothing was saved (--save PATH saves)" : ""))
      throw ExitCode(1)
    }
  }

  /// SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop the run at the next step boundary. A plain
  /// handler, installed before this returns: a dispatch signal source was registered with the
  /// kernel later, on libdispatch's own thread, and a signal sent in between (right after the
  /// first output, under load) met SIG_IGN and was lost — the run then never stopped. Storing to
  /// the lock-free atomic is async-signal-safe.
  private func installStopHandlers() {
    _ = stopSignal.load(ordering: .relaxed)  // the global initialised before a handler can run
    for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
      signal(signalNumber) { caught in _ = stopSignal.compareExchange(expected: 0, desired: caught, ordering: .relaxed) }
    }
  }
}

/// Prints a run's events: JSON lines, a live line on a terminal, or plain lines now and then.
struct RunReporter {
  let json: Bool
  let planned: Int?
  let live = isatty(STDOUT_FILENO) == 1
  let clock = ContinuousClock()
  var lastDraw: ContinuousClock.Instant?
  var rateMark: (instant: ContinuousClock.Instant, step: Int)?
  var stepsPerSecond: Double?
  var lastPlainStep = 0

  init(json: Bool, planned: Int?) {
    self.json = json
    self.planned = planned
  }

  /// Writes straight to standard output (unbuffered), so every JSON line reaches a reader at once.
  /// Once output has failed, nothing more is written (the run is stopping).
  private func write(_ text: String) {
    guard !Console.outputFailed else { return }
    Console.write(text, raw: true)
  }

  mutating func report(_ event: RunEvent) {
    switch event {
    case .step(let result):
      if json {
        var members: [JSONObject.Member] = [
          .init(key: "event", value: .string("step")), .init(key: "step", value: .int(result.step)),
          .init(key: "loss", value: number(result.loss)), .init(key: "lr", value: .double(result.learningRate)),
        ]
        if let accuracy = result.measures.accuracy { members.append(.init(key: "accuracy", value: number(accuracy))) }
        if let error = result.measures.meanAbsoluteError { members.append(.init(key: "mae", value: number(error))) }
        members += result.optimizer?.members ?? []
        write(JSONWriter.compact(.object(members)) + "\n")
        return
      }
      updateRate(result.step)
      // The line is formatted only when it is written (formatting costs more than a small step).
      func line() -> String {
        ProgressLine.format(
          step: result.step, planned: planned, loss: result.loss, learningRate: result.learningRate, stepsPerSecond: stepsPerSecond)
      }
      if live {
        let now = clock.now
        if lastDraw == nil || now - lastDraw! >= .milliseconds(100) {
          write("\r\u{1B}[K" + line())
          lastDraw = now
        }
      } else {
        let every = max(1, (planned.map { $0 / 10 }) ?? 100)
        if result.step - lastPlainStep >= every {
          write(line() + "\n")
          lastPlainStep = result.step
        }
      }
    case .evaluation(let step, let evaluation):
      if json {
        let members: [JSONObject.Member] =
          [.init(key: "event", value: .string("eval")), .init(key: "step", value: .int(step))] + evaluation.members(prefix: "val")
        write(JSONWriter.compact(.object(members)) + "\n")
      }
    case .done(let summary):
      if json {
        var members: [JSONObject.Member] = [
          .init(key: "event", value: .string("done")), .init(key: "step", value: .int(summary.step)),
          .init(key: "reason", value: .string(summary.reason.rawValue)),
          .init(key: "message", value: .string(summary.message)), .init(key: "steps_run", value: .int(summary.stepsRun)),
          .init(key: "seconds", value: .double(summary.seconds)),
        ]
        members += summary.train.members(prefix: "train")
        if let validation = summary.validation { members += validation.members(prefix: "val") }
        write(JSONWriter.compact(.object(members)) + "\n")
        return
      }
      if live && lastDraw != nil { write("\r\u{1B}[K") }
      var text = summary.message + (summary.rateText.isEmpty ? "" : " " + summary.rateText) + "\n"
      text += "train:      " + describe(summary.train) + "\n"
      if let validation = summary.validation { text += "validation: " + describe(validation) + "\n" }
      write(TerminalText.sanitized(text))
    }
  }

  private mutating func updateRate(_ step: Int) {
    let now = clock.now
    guard let mark = rateMark else {
      rateMark = (now, step)
      return
    }
    let seconds = (now - mark.instant) / .seconds(1)
    if seconds >= 0.5 {
      stepsPerSecond = Double(step - mark.step) / seconds
      rateMark = (now, step)
    }
  }

  private func describe(_ evaluation: Evaluation) -> String {
    "loss \(ProgressLine.significant(Double(evaluation.loss)))" + evaluation.measuresText
  }

  private func number(_ value: Float) -> JSONValue { value.isFinite ? .float(value) : .null }

}
