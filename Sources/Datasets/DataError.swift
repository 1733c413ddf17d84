/// Why data could not be loaded: the file, and where in it.
public enum DataError: Error, Hashable, Sendable, CustomStringConvertible {
  case unreadable(path: String, reason: String)
  /// A problem at a line (1-based) and, when known, a column (1-based field number) of a CSV file.
  case csv(path: String, line: Int, column: Int?, message: String)
  case idx(path: String, message: String)
  /// A NumPy `.npy` or `.npz` file that cannot be read as the format says.
  case numpy(path: String, message: String)
  /// The data does not fit the spec (its shapes, its loss).
  case mismatch(String)
  /// Reading was stopped (Ctrl-C) before it ended: nothing was changed.
  case interrupted(path: String)

  public var description: String {
    switch self {
    case .unreadable(let path, let reason): "cannot read data file \(path): \(reason)"
    case .csv(let path, let line, let column, let message): "\(path):\(line)\(column.map { ":\($0)" } ?? ""): \(message)"
    case .idx(let path, let message), .numpy(let path, let message): "\(path): \(message)"
    case .mismatch(let message): message
    case .interrupted(let path): "reading \(path) was interrupted; nothing was changed"
    }
  }
}
