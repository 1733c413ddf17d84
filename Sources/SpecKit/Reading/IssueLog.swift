/// Collects the problems found while reading one document, so that a user sees all of them at
/// once rather than one per attempt. Lives only for one read, on one thread.
final class IssueLog {
  private(set) var issues: [SpecIssue] = []

  func report(_ path: JSONPath, _ message: String, at location: SourceLocation?) {
    issues.append(SpecIssue(path: path, message: message, location: location))
  }

  var isEmpty: Bool { issues.isEmpty }

  /// True when no problem has been reported at `path` or inside it; used to skip checks that
  /// would only repeat an earlier problem (a shape check after a bad `units`).
  func isClean(under path: JSONPath) -> Bool {
    !issues.contains { $0.path.components.starts(with: path.components) }
  }

  /// The issues ordered as they appear in the text (unlocated ones last, in report order).
  static func sortedByLocation(_ issues: [SpecIssue]) -> [SpecIssue] {
    issues.enumerated().sorted { a, b in
      switch (a.element.location, b.element.location) {
      case (let la?, let lb?): (la.line, la.column, a.offset) < (lb.line, lb.column, b.offset)
      case (.some, .none): true
      case (.none, .some): false
      case (.none, .none): a.offset < b.offset
      }
    }.map(\.element)
  }
}
