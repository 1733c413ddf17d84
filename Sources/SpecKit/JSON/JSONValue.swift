/// A position in a JSON text: 1-based line and column (columns count Unicode scalars).
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
  public var line: Int
  public var column: Int

  public init(line: Int, column: Int) {
    self.line = line
    self.column = column
  }

  public var description: String { "\(line):\(column)" }
}

/// A JSON number kept as its literal text, so integers of any width (seeds are 64-bit) are read
/// exactly and never pass through `Double`.
public struct JSONNumber: Hashable, Sendable, CustomStringConvertible {
  /// The literal, valid by the JSON grammar (e.g. `-3`, `0.003`, `1e-08`).
  public let literal: String

  /// Wraps a literal; the caller guarantees it follows the JSON number grammar.
  public init(literal: String) { self.literal = literal }

  public init(_ value: Int) { literal = String(value) }

  public init(_ value: UInt64) { literal = String(value) }

  /// The shortest text that reads back as exactly `value`; `value` must be finite.
  public init(_ value: Double) {
    precondition(value.isFinite, "JSON cannot hold a non-finite number")
    literal = value == 0 ? (value.sign == .minus ? "-0.0" : "0.0") : "\(value)"
  }

  /// The shortest text that reads back as exactly `value` in float32; `value` must be finite.
  public init(_ value: Float) {
    precondition(value.isFinite, "JSON cannot hold a non-finite number")
    literal = value == 0 ? (value.sign == .minus ? "-0.0" : "0.0") : "\(value)"
  }

  /// The value as a double (rounded to nearest, as every JSON reader does).
  public var double: Double { Double(literal) ?? .nan }

  /// True when the literal has no fraction or exponent part.
  public var isIntegerLiteral: Bool { !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) }

  /// The value as an `Int` when it is integral and fits (`3`, `3.0` and `3e0` all give 3).
  public var int: Int? {
    if isIntegerLiteral { return Int(literal) }
    let d = double
    guard d.rounded() == d, abs(d) < 9_007_199_254_740_992 else { return nil }
    return Int(d)
  }

  /// The value as a `UInt64` when the literal is a plain non-negative integer that fits.
  public var uint64: UInt64? { isIntegerLiteral ? UInt64(literal) : int.flatMap { $0 >= 0 ? UInt64($0) : nil } }

  public var description: String { literal }
}

/// A JSON value, with the place it was read from when it came from a text.
///
/// Equality ignores locations: two values are equal when their contents are, with object members
/// compared in order (use `JSONValue.canonicalText` to compare regardless of member order).
public struct JSONValue: Sendable, Equatable, CustomStringConvertible {
  /// The shape of a JSON value.
  public indirect enum Kind: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
  }

  public var kind: Kind
  /// Where the value began in the text it was parsed from; `nil` for values built in code.
  public var location: SourceLocation?

  public init(_ kind: Kind, location: SourceLocation? = nil) {
    self.kind = kind
    self.location = location
  }

  public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool { lhs.kind == rhs.kind }

  public static let null = JSONValue(.null)
  public static func bool(_ value: Bool) -> JSONValue { JSONValue(.bool(value)) }
  public static func string(_ value: String) -> JSONValue { JSONValue(.string(value)) }
  public static func int(_ value: Int) -> JSONValue { JSONValue(.number(JSONNumber(value))) }
  public static func double(_ value: Double) -> JSONValue { JSONValue(.number(JSONNumber(value))) }
  public static func float(_ value: Float) -> JSONValue { JSONValue(.number(JSONNumber(value))) }
  public static func array(_ values: [JSONValue]) -> JSONValue { JSONValue(.array(values)) }
  /// An object from key-value pairs in the given order (the canonical writer sorts them anyway).
  public static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
    JSONValue(.object(JSONObject(pairs.map { JSONObject.Member(key: $0.key, value: $0.value) })))
  }
  public static func object(_ members: [JSONObject.Member]) -> JSONValue { JSONValue(.object(JSONObject(members))) }

  /// A short name of the value's type for messages: "a string", "an array", ...
  public var typeDescription: String {
    switch kind {
    case .null: "null"
    case .bool: "a boolean"
    case .number: "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }

  /// The value as compact JSON, cut to at most `limit` characters, for error messages.
  public func excerpt(limit: Int = 40) -> String {
    let text = JSONWriter.compact(self)
    return text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
  }

  public var description: String { JSONWriter.compact(self) }

  public var objectValue: JSONObject? { if case .object(let o) = kind { o } else { nil } }
  public var arrayValue: [JSONValue]? { if case .array(let a) = kind { a } else { nil } }
  public var stringValue: String? { if case .string(let s) = kind { s } else { nil } }
  public var numberValue: JSONNumber? { if case .number(let n) = kind { n } else { nil } }
  public var boolValue: Bool? { if case .bool(let b) = kind { b } else { nil } }
  public var isNull: Bool { if case .null = kind { true } else { false } }
}

/// A JSON object: members in the order they were read or built. Keys are unique when it comes
/// from `JSONParser` (duplicates are a syntax error there).
public struct JSONObject: Sendable, Equatable {
  /// One `"key": value` member, with where its key was written.
  public struct Member: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public var keyLocation: SourceLocation?

    public init(key: String, value: JSONValue, keyLocation: SourceLocation? = nil) {
      self.key = key
      self.value = value
      self.keyLocation = keyLocation
    }

    public static func == (lhs: Member, rhs: Member) -> Bool { lhs.key == rhs.key && lhs.value == rhs.value }
  }

  public var members: [Member]

  public init(_ members: [Member] = []) { self.members = members }

  /// The value of `key`, or nil when the object has no such member.
  public subscript(key: String) -> JSONValue? {
    members.first(where: { $0.key == key })?.value
  }

  public var keys: [String] { members.map(\.key) }
}

extension JSONValue {
  /// The location of the value at `path`, or of its deepest ancestor that exists.
  public func location(of path: JSONPath) -> SourceLocation? {
    var node = self
    var found = location
    for component in path.components {
      switch (component, node.kind) {
      case (.key(let key), .object(let object)):
        guard let member = object.members.first(where: { $0.key == key }) else { return found }
        node = member.value
      case (.index(let index), .array(let elements)) where elements.indices.contains(index):
        node = elements[index]
      default:
        return found
      }
      found = node.location ?? found
    }
    return found
  }
}
