import SpecKit

/// Why a model could not go out to, or come in from, another format. Every case says where (a
/// byte offset and field path, a node and its op, a layer) and what to do.
public enum InterchangeError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The file is not a well-formed ONNX protobuf.
  case malformed(file: String, offset: Int, message: String)
  /// A node the importer cannot map onto the format's layers.
  case unsupportedNode(node: String, op: String, reason: String)
  /// A layer of a Keras model the importer cannot map onto the format's layers.
  case unsupportedLayer(layer: String, className: String, reason: String)
  /// The graph as a whole does not fit (several inputs, a branch, a missing weight, …).
  case unsupportedGraph(String)
  /// The session cannot be exported to that format.
  case cannotExport(format: String, reason: String)
  /// A container file (a Keras archive) that is not whole: which member, and what is wrong.
  case malformedArchive(file: String, member: String?, message: String)
  /// No format of that name.
  case unknownFormat(name: String, known: [String])

  public var description: String {
    switch self {
    case .malformed(let file, let offset, let message):
      return "\(file): not a readable ONNX model: \(message) (at byte \(offset))"
    case .unsupportedNode(let node, let op, let reason):
      return "node \(node.isEmpty ? "(unnamed)" : "\"\(node)\"") (\(op)): \(reason)"
    case .unsupportedLayer(let layer, let className, let reason):
      return "layer \"\(TextExcerpt.short(layer))\" (\(TextExcerpt.short(className))): \(reason); nothing was written"
    case .unsupportedGraph(let reason):
      return reason
    case .cannotExport(let format, let reason):
      return "cannot export to \(format): \(reason)"
    case .malformedArchive(let file, let member, let message):
      return "\(file)\(member.map { " (\($0))" } ?? ""): \(message); nothing was written"
    case .unknownFormat(let name, let known):
      return "no format named \"\(name)\"; formats: \(known.joined(separator: ", "))"
    }
  }
}
