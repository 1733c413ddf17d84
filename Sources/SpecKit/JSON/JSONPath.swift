/// The path from a document's root to one value, printed as users write it:
/// `model.layers[2].units`. The root itself prints as `(root)`.
public struct JSONPath: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
  /// One step: a member key or an array index.
  public enum Component: Hashable, Sendable {
    case key(String)
    case index(Int)
  }

  public var components: [Component]

  public init(_ components: [Component] = []) { self.components = components }

  /// Parses a dotted path such as `model.layers[2].units` (keys may not contain `.` or `[`).
  public init(_ text: String) { self.init(stringLiteral: text) }

  public init(stringLiteral value: String) {
    var parts: [Component] = []
    for piece in value.split(separator: ".") {
      var rest = Substring(piece)
      if let open = rest.firstIndex(of: "[") {
        if open > rest.startIndex { parts.append(.key(String(rest[..<open]))) }
        rest = rest[open...]
        while rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
          parts.append(.index(Int(rest[rest.index(after: rest.startIndex)..<close]) ?? 0))
          rest = rest[rest.index(after: close)...]
        }
      } else {
        parts.append(.key(String(rest)))
      }
    }
    components = parts
  }

  public static let root = JSONPath()

  /// This path extended by a member key.
  public func appending(_ key: String) -> JSONPath { JSONPath(components + [.key(key)]) }

  /// This path extended by an array index.
  public func appending(index: Int) -> JSONPath { JSONPath(components + [.index(index)]) }

  public static func + (lhs: JSONPath, key: String) -> JSONPath { lhs.appending(key) }
  public static func + (lhs: JSONPath, index: Int) -> JSONPath { lhs.appending(index: index) }

  public var description: String {
    if components.isEmpty { return "(root)" }
    var text = ""
    for component in components {
      switch component {
      case .key(let key):
        let plain = !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
        if plain {
          if !text.isEmpty { text += "." }
          text += key
        } else {
          text += "[\(JSONWriter.quoted(key))]"
        }
      case .index(let index):
        text += "[\(index)]"
      }
    }
    return text
  }
}
