import Foundation
import Session
import TermPlot

#if canImport(Glibc)
  import Glibc
#endif

/// Facts about the terminal the REPL writes to.
enum Terminal {
  /// Columns of standard output's terminal, or `COLUMNS`, or 80.
  static var width: Int {
    var size = winsize()
    if isatty(STDOUT_FILENO) == 1, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
  }

  /// Colour only on a terminal, and never when NO_COLOR is set.
  static var usesColour: Bool {
    isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
  }

  /// The text of a command's result, with colours when the terminal takes them.
  static func render(_ grid: Grid) -> String { usesColour ? grid.ansiText() : grid.plainText }

  /// Writes to standard output at once (unbuffered), control characters made visible.
  static func write(_ text: String) { Console.write(text) }

  /// Writes text SpecBench made itself (cursor movement, a grid's colours) as it is.
  static func writeRaw(_ text: String) { Console.write(text, raw: true) }

  static func writeError(_ text: String) { Console.write(text, to: .error) }
}

/// What a front end prints for an event: `[step 1200] optimizer: adam settings changed: …`.
