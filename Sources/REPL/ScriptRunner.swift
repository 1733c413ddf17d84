import Foundation
import Session

/// Runs commands read line by line from a stream that is not a terminal (`specbench <
/// script.txt`): prints each result, waits for training that a command starts (a script goes on
/// only once its `train` has finished), reports errors with their line numbers, and exits
/// non-zero when any command failed.
public enum ScriptRunner {
  public static func run(_ engine: SessionEngine, input: FileHandle = .standardInput) -> Int32 {
    var failures = 0
    var number = 0
    let text = String(decoding: input.readDataToEndOfFile(), as: UTF8.self)
    lines: for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
      number += 1
      let outcome = engine.execute(line)
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
      waitWhileTraining(engine)
    }
    waitWhileTraining(engine)
    printEvents(engine)
    if failures > 0 { Terminal.writeError("\(failures) command\(failures == 1 ? "" : "s") failed\n") }
    if let failure = Console.outputFailure {
      Terminal.writeError("the script ran to its end, but its output was lost: \(failure)\n")
      return 1
    }
    return failures == 0 ? 0 : 1
  }

  static func waitWhileTraining(_ engine: SessionEngine) {
    while engine.isTraining {
      printEvents(engine)
      Thread.sleep(forTimeInterval: 0.02)
    }
    printEvents(engine)
  }

  static func printEvents(_ engine: SessionEngine) {
    for event in engine.takeEvents() { Terminal.write(event.line + "\n") }
  }
}
