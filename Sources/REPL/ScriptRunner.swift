import Foundation
import Session

/// Runs commands read line by line from a stream that is not a terminal (`specbench <
/// script.txt`): prints each result, waits for training that a command starts (a script goes on
/// only once its `train`, or every run of its `sweep`, has finished), reports errors with their line numbers, and exits
/// non-zero when any command failed.
public enum ScriptRunner {
  public static func run(_ bench: Workbench, input: FileHandle = .standardInput) -> Int32 {
    var failures = 0
    var number = 0
    let text = String(decoding: input.readDataToEndOfFile(), as: UTF8.self)
    lines: for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
      number += 1
      let outcome = bench.execute(line)
      switch outcome {
      case .done(let text):
        if !text.isEmpty { Terminal.write(text + "\n") }
      case .drawing(let drawing):
        Terminal.writeRaw(Terminal.render(drawing.render(width: Terminal.width)) + "\n")
      case .failed(let message):
        failures += 1
        Terminal.writeError(
          "line \(number): \(line.trimmingCharacters(in: .whitespaces))\n  " + message.replacingOccurrences(of: "\n", with: "\n  ") + "\n")
      case .waiting(let text):
        Terminal.write(text + "\n")
      case .dashboard:
        Terminal.write("line \(number): the dashboard needs a terminal; a script goes on without it\n")
      case .quit:
        break lines
      }
      if case .failed = outcome { continue }
      waitWhileTraining(bench)
    }
    waitWhileTraining(bench)
    printEvents(bench)
    if failures > 0 { Terminal.writeError("\(failures) command\(failures == 1 ? "" : "s") failed\n") }
    if let failure = Console.outputFailure {
      Terminal.writeError("the script ran to its end, but its output was lost: \(failure)\n")
      return 1
    }
    return failures == 0 ? 0 : 1
  }

  /// Waits while any run trains (a sweep's runs too): the script's next line sees them done.
  static func waitWhileTraining(_ bench: Workbench) {
    while bench.isTraining {
      printEvents(bench)
      Thread.sleep(forTimeInterval: 0.02)
    }
    printEvents(bench)
  }

  static func printEvents(_ bench: Workbench) {
    for event in bench.takeEvents() { Terminal.write(event.line + "\n") }
  }
}
