/// One problem found in a session file: where it is and what is wrong.
///
/// Printed as `model.layers[2].units: must be a positive integer, got -3`, prefixed with
/// `FILE:LINE:COLUMN: ` when the file and position are known.
public struct SpecIssue: Hashable, Sendable, CustomStringConvertible {
  public var path: JSONPath
  public var message: String
  public var location: SourceLocation?

  public init(path: JSONPath, message: String, location: SourceLocation? = nil) {
    self.path = path
    self.message = message
    self.location = location
  }

  public var description: String { "\(path): \(message)" }

  /// The issue prefixed with `file:line:column:` (whichever parts are known), as compilers print.
  public func formatted(file: String?) -> String {
    var prefix = ""
    if let file { prefix += file + ":" }
    if let location { prefix += "\(location.line):\(location.column):" }
    return (prefix.isEmpty ? "" : prefix + " ") + description
  }
}
extension SpecIssue: Error {}
