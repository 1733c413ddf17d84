/// `Codable` for any JSON value, so spec types can be embedded in other `Codable` documents.
/// Numbers decode as exact integers when they fit `Int64` or `UInt64`, as doubles otherwise.
extension JSONValue: Codable {
  private struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  public init(from decoder: any Decoder) throws {
    if let keyed = try? decoder.container(keyedBy: Key.self) {
      var members: [JSONObject.Member] = []
      for key in keyed.allKeys.sorted(by: { JSONWriter.codePointsPrecede($0.stringValue, $1.stringValue) }) {
        members.append(.init(key: key.stringValue, value: try keyed.decode(JSONValue.self, forKey: key)))
      }
      self.init(.object(JSONObject(members)))
    } else if var unkeyed = try? decoder.unkeyedContainer() {
      var elements: [JSONValue] = []
      while !unkeyed.isAtEnd { elements.append(try unkeyed.decode(JSONValue.self)) }
      self.init(.array(elements))
    } else {
      let single = try decoder.singleValueContainer()
      if single.decodeNil() {
        self.init(.null)
      } else if let flag = try? single.decode(Bool.self) {
        self.init(.bool(flag))
      } else if let int = try? single.decode(Int64.self) {
        self.init(.number(JSONNumber(literal: String(int))))
      } else if let uint = try? single.decode(UInt64.self) {
        self.init(.number(JSONNumber(uint)))
      } else if let double = try? single.decode(Double.self) {
        self.init(.number(JSONNumber(double)))
      } else {
        self.init(.string(try single.decode(String.self)))
      }
    }
  }

  public func encode(to encoder: any Encoder) throws {
    switch kind {
    case .null:
      var single = encoder.singleValueContainer()
      try single.encodeNil()
    case .bool(let flag):
      var single = encoder.singleValueContainer()
      try single.encode(flag)
    case .number(let number):
      var single = encoder.singleValueContainer()
      if number.isIntegerLiteral, let int = Int64(number.literal) {
        try single.encode(int)
      } else if number.isIntegerLiteral, let uint = UInt64(number.literal) {
        try single.encode(uint)
      } else {
        try single.encode(number.double)
      }
    case .string(let text):
      var single = encoder.singleValueContainer()
      try single.encode(text)
    case .array(let elements):
      var unkeyed = encoder.unkeyedContainer()
      for element in elements { try unkeyed.encode(element) }
    case .object(let object):
      var keyed = encoder.container(keyedBy: Key.self)
      for member in object.members { try keyed.encode(member.value, forKey: Key(stringValue: member.key)) }
    }
  }
}

/// `Codable` through the strict reader: decoding applies every default and check of the format
/// and fails with all problems in one `DecodingError.dataCorrupted`; encoding writes every field.
/// This is the spec file's JSON: the history's points live in the metrics file beside it, so
/// they are not part of it (`history.metrics` names the file; `SessionFile` reads and writes it).
extension SessionSpec: Codable {
  public init(from decoder: any Decoder) throws {
    let value = try JSONValue(from: decoder)
    do {
      self = try SessionSpec.decode(value)
    } catch {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description, underlyingError: error))
    }
  }

  public func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }
}
