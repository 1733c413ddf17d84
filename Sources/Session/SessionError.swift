import Backends
import Datasets
import SpecKit

/// Why a session could not be trained: the spec, its data, or its backend.
public enum SessionError: Error, Sendable, CustomStringConvertible {
  case spec(SpecError)
  case data(DataError)
  case backend(BackendError)
  /// The data read from files does not fit the model or the loss.
  case dataMismatch(file: String?, [SpecIssue])

  public var description: String {
    switch self {
    case .spec(let error): error.description
    case .data(let error): error.description
    case .backend(let error): error.description
    case .dataMismatch(let file, let issues):
      "the data does not fit the session\(file.map { " \($0)" } ?? ""):\n" + issues.map { "  \($0)" }.joined(separator: "\n")
    }
  }
}
