import Foundation

/// Everything SpecKit can refuse, each case with the context a user needs to act.
public enum SpecError: Error, Sendable, CustomStringConvertible {
  /// The text is not JSON; `file` is the path when it came from one.
  case syntax(file: String?, JSONSyntaxError)
  /// The JSON is a session but breaks the format's rules: every problem found, in file order.
  case invalid(file: String?, [SpecIssue])
  /// The file was written by a newer SpecBench.
  case newerVersion(file: String?, found: Int, supported: Int)
  /// A file could not be read.
  case unreadable(path: String, reason: String)
  /// A file could not be written; nothing was replaced.
  case unwritable(path: String, reason: String)
  /// A safetensors file is malformed.
  case safetensors(path: String?, SafeTensorsProblem)
  /// A session's state tensors do not belong to its spec (hash, names or shapes).
  case stateMismatch(path: String, problems: [String])
  /// The metrics file does not match the spec's `history.metrics` (names, dtypes, counts, steps, values).
  case historyMismatch(path: String, problems: [String])

  public var description: String {
    switch self {
    case .syntax(let file, let error):
      return "\(file.map { $0 + ":" } ?? "")\(error.location.line):\(error.location.column): not valid JSON: \(error.message)"
    case .invalid(let file, let issues):
      // A hostile file can hold hundreds of thousands of problems: the first hundred say enough.
      var lines = issues.prefix(Self.shownProblems).map { "  " + $0.formatted(file: file) }
      if issues.count > Self.shownProblems {
        lines.append("  … and \(issues.count - Self.shownProblems) more (validate --json lists every one)")
      }
      let count = issues.count == 1 ? "1 problem" : "\(issues.count) problems"
      return "\(file ?? "the session") has \(count):\n" + lines.joined(separator: "\n")
    case .newerVersion(let file, let found, let supported):
      return "\(file.map { $0 + ": " } ?? "")version: this file is format version \(found), "
        + "but this SpecBench reads versions up to \(supported); open it with a newer SpecBench"
    case .unreadable(let path, let reason):
      return "cannot read \(path): \(reason)"
    case .unwritable(let path, let reason):
      return "cannot write \(path): \(reason)" + (reason.contains("still holds") ? "" : "; nothing was replaced")
    case .safetensors(let path, let problem):
      return "\(path.map { $0 + ": " } ?? "")not a valid safetensors file: \(problem)"
    case .stateMismatch(let path, let problems):
      return "\(path): the state does not match the session:\n"
        + problems.map { "  " + $0 }.joined(separator: "\n")
    case .historyMismatch(let path, let problems):
      return "\(path): the recorded metrics do not match the session:\n"
        + problems.map { "  " + $0 }.joined(separator: "\n")
    }
  }

  /// How many problems a message lists before it says how many more there are.
  public static let shownProblems = 100

  /// Why a file could not be read or written (nil for other cases).
  public var reason: String? {
    switch self {
    case .unreadable(_, let reason), .unwritable(_, let reason): reason
    default: nil
    }
  }

  /// The issues of an `.invalid` error (empty for other cases); convenient in tests.
  public var issues: [SpecIssue] {
    if case .invalid(_, let issues) = self { return issues }
    return []
  }
}
