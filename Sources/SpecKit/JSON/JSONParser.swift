/// A JSON text that could not be parsed: what was wrong and where.
public struct JSONSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public var location: SourceLocation

  public var description: String { "line \(location.line), column \(location.column): \(message)" }
}

/// A strict RFC 8259 parser that records where every value starts.
///
/// Strict means: no comments, no trailing commas, no `NaN`, no duplicate keys in one object
/// (a typo must not silently replace a setting), valid UTF-8 only. A UTF-8 byte order mark at the
/// start is skipped. Nesting deeper than `maximumDepth` is refused rather than overflowing the stack.
public struct JSONParser {
  public static let maximumDepth = 256

  private let bytes: [UInt8]
  private var index = 0
  private var line = 1
  private var column = 1
  private var depth = 0
  private var allowDuplicateKeys = false

  /// Parses one JSON document from UTF-8 bytes.
  ///
  /// - Parameter allowDuplicateKeys: keep every member of an object even when a key repeats
  ///   (for formats such as safetensors that report duplicates in their own terms).
  public static func parse(_ bytes: some Collection<UInt8>, allowDuplicateKeys: Bool = false) throws(JSONSyntaxError) -> JSONValue {
    var parser = JSONParser(bytes: Array(bytes))
    parser.allowDuplicateKeys = allowDuplicateKeys
    return try parser.document()
  }

  /// Parses one JSON document from a string.
  public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
    try parse(Array(text.utf8))
  }

  private init(bytes: [UInt8]) { self.bytes = bytes }

  private var here: SourceLocation { SourceLocation(line: line, column: column) }

  private func fail(_ message: String, at location: SourceLocation? = nil) -> JSONSyntaxError {
    JSONSyntaxError(message: message, location: location ?? here)
  }

  private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

  /// Moves past one byte, keeping line and column (columns count scalars, not bytes).
  private mutating func advance() {
    let byte = bytes[index]
    index += 1
    if byte == UInt8(ascii: "\n") {
      line += 1
      column = 1
    } else if byte & 0xC0 != 0x80 {
      column += 1
    }
  }

  private mutating func skipWhitespace() {
    while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { advance() }
  }

  private func describe(_ byte: UInt8?) -> String {
    guard let byte else { return "the end of the text" }
    if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
    if byte >= 0x80 { return "a non-ASCII character" }
    return String(format: "byte 0x%02X", byte)
  }

  private mutating func document() throws(JSONSyntaxError) -> JSONValue {
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    skipWhitespace()
    if peek == nil { throw fail("the text is empty; expected a JSON value") }
    let value = try parseValue()
    skipWhitespace()
    if peek != nil { throw fail("unexpected \(describe(peek)) after the end of the JSON value") }
    return value
  }

  private mutating func parseValue() throws(JSONSyntaxError) -> JSONValue {
    let start = here
    switch peek {
    case UInt8(ascii: "{"): return try parseObject(start)
    case UInt8(ascii: "["): return try parseArray(start)
    case UInt8(ascii: "\""): return JSONValue(.string(try parseString()), location: start)
    case UInt8(ascii: "t"):
      try literal("true")
      return JSONValue(.bool(true), location: start)
    case UInt8(ascii: "f"):
      try literal("false")
      return JSONValue(.bool(false), location: start)
    case UInt8(ascii: "n"):
      try literal("null")
      return JSONValue(.null, location: start)
    case let byte? where byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39):
      return JSONValue(.number(try parseNumber()), location: start)
    case UInt8(ascii: "N"), UInt8(ascii: "I"):
      throw fail("NaN and Infinity are not JSON numbers")
    default:
      throw fail("expected a JSON value, found \(describe(peek))")
    }
  }

  private mutating func literal(_ word: String) throws(JSONSyntaxError) {
    let start = here
    for expected in word.utf8 {
      guard peek == expected else { throw fail("invalid literal; did you mean '\(word)'?", at: start) }
      advance()
    }
  }

  private mutating func enter(_ start: SourceLocation) throws(JSONSyntaxError) {
    depth += 1
    if depth > Self.maximumDepth {
      throw fail("nesting deeper than \(Self.maximumDepth) levels", at: start)
    }
  }

  private mutating func parseObject(_ start: SourceLocation) throws(JSONSyntaxError) -> JSONValue {
    try enter(start)
    advance()
    var members: [JSONObject.Member] = []
    var seen: [String: SourceLocation] = [:]
    skipWhitespace()
    if peek == UInt8(ascii: "}") {
      advance()
      depth -= 1
      return JSONValue(.object(JSONObject()), location: start)
    }
    while true {
      skipWhitespace()
      let keyLocation = here
      guard peek == UInt8(ascii: "\"") else {
        throw fail("expected a member name in double quotes, found \(describe(peek))")
      }
      let key = try parseString()
      if !allowDuplicateKeys, let first = seen[key] {
        throw fail("duplicate key \(JSONWriter.quoted(key)) (first written at line \(first.line), column \(first.column))", at: keyLocation)
      }
      seen[key] = keyLocation
      skipWhitespace()
      guard peek == UInt8(ascii: ":") else { throw fail("expected ':' after the member name, found \(describe(peek))") }
      advance()
      skipWhitespace()
      let value = try parseValue()
      members.append(JSONObject.Member(key: key, value: value, keyLocation: keyLocation))
      skipWhitespace()
      switch peek {
      case UInt8(ascii: ","):
        advance()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { throw fail("trailing comma before '}'") }
      case UInt8(ascii: "}"):
        advance()
        depth -= 1
        return JSONValue(.object(JSONObject(members)), location: start)
      default:
        throw fail("expected ',' or '}' after an object member, found \(describe(peek))")
      }
    }
  }

  private mutating func parseArray(_ start: SourceLocation) throws(JSONSyntaxError) -> JSONValue {
    try enter(start)
    advance()
    var elements: [JSONValue] = []
    skipWhitespace()
    if peek == UInt8(ascii: "]") {
      advance()
      depth -= 1
      return JSONValue(.array(elements), location: start)
    }
    while true {
      skipWhitespace()
      elements.append(try parseValue())
      skipWhitespace()
      switch peek {
      case UInt8(ascii: ","):
        advance()
        skipWhitespace()
        if peek == UInt8(ascii: "]") { throw fail("trailing comma before ']'") }
      case UInt8(ascii: "]"):
        advance()
        depth -= 1
        return JSONValue(.array(elements), location: start)
      default:
        throw fail("expected ',' or ']' after an array element, found \(describe(peek))")
      }
    }
  }

  private mutating func parseNumber() throws(JSONSyntaxError) -> JSONNumber {
    let start = index
    let startLocation = here
    func digits(_ parser: inout JSONParser) -> Int {
      var count = 0
      while let byte = parser.peek, byte >= 0x30 && byte <= 0x39 {
        parser.advance()
        count += 1
      }
      return count
    }
    if peek == UInt8(ascii: "-") { advance() }
    if peek == UInt8(ascii: "0") {
      advance()
      if let byte = peek, byte >= 0x30 && byte <= 0x39 {
        throw fail("numbers may not have leading zeros", at: startLocation)
      }
    } else if digits(&self) == 0 {
      throw fail("expected a digit, found \(describe(peek))")
    }
    if peek == UInt8(ascii: ".") {
      advance()
      if digits(&self) == 0 { throw fail("expected a digit after the decimal point, found \(describe(peek))") }
    }
    if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
      advance()
      if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { advance() }
      if digits(&self) == 0 { throw fail("expected a digit in the exponent, found \(describe(peek))") }
    }
    let literal = String(decoding: bytes[start..<index], as: UTF8.self)
    if !(Double(literal)?.isFinite ?? false) {
      throw fail("the number \(literal) is too large for a 64-bit float", at: startLocation)
    }
    return JSONNumber(literal: literal)
  }

  private mutating func hexQuad() throws(JSONSyntaxError) -> UInt32 {
    var value: UInt32 = 0
    for _ in 0..<4 {
      guard let byte = peek, let digit = Self.hexDigit(byte) else {
        throw fail("expected four hexadecimal digits after \\u, found \(describe(peek))")
      }
      value = value << 4 | digit
      advance()
    }
    return value
  }

  private static func hexDigit(_ byte: UInt8) -> UInt32? {
    switch byte {
    case 0x30...0x39: UInt32(byte - 0x30)
    case 0x41...0x46: UInt32(byte - 0x41 + 10)
    case 0x61...0x66: UInt32(byte - 0x61 + 10)
    default: nil
    }
  }

  private mutating func parseString() throws(JSONSyntaxError) -> String {
    let start = here
    advance()  // opening quote
    var scalars = String.UnicodeScalarView()
    var runStart = index
    func flushRun(_ parser: JSONParser, upTo end: Int, into scalars: inout String.UnicodeScalarView) throws(JSONSyntaxError) {
      guard runStart < end else { return }
      guard let run = String(validating: parser.bytes[runStart..<end], as: UTF8.self) else {
        throw parser.fail("the text is not valid UTF-8")
      }
      scalars.append(contentsOf: run.unicodeScalars)
    }
    while true {
      guard let byte = peek else { throw fail("unterminated string (it starts at line \(start.line), column \(start.column))") }
      switch byte {
      case UInt8(ascii: "\""):
        try flushRun(self, upTo: index, into: &scalars)
        advance()
        return String(scalars)
      case UInt8(ascii: "\\"):
        try flushRun(self, upTo: index, into: &scalars)
        let escapeStart = here
        advance()
        guard let escape = peek else { throw fail("unterminated escape sequence") }
        advance()
        switch escape {
        case UInt8(ascii: "\""): scalars.append("\"")
        case UInt8(ascii: "\\"): scalars.append("\\")
        case UInt8(ascii: "/"): scalars.append("/")
        case UInt8(ascii: "b"): scalars.append("\u{08}")
        case UInt8(ascii: "f"): scalars.append("\u{0C}")
        case UInt8(ascii: "n"): scalars.append("\n")
        case UInt8(ascii: "r"): scalars.append("\r")
        case UInt8(ascii: "t"): scalars.append("\t")
        case UInt8(ascii: "u"):
          var code = try hexQuad()
          if (0xD800...0xDBFF).contains(code) {
            guard peek == UInt8(ascii: "\\") else { throw fail("unpaired UTF-16 surrogate in \\u escape") }
            advance()
            guard peek == UInt8(ascii: "u") else { throw fail("unpaired UTF-16 surrogate in \\u escape") }
            advance()
            let low = try hexQuad()
            guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired UTF-16 surrogate in \\u escape") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          } else if (0xDC00...0xDFFF).contains(code) {
            throw fail("unpaired UTF-16 surrogate in \\u escape")
          }
          guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
          scalars.append(scalar)
        default:
          throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))' in a string", at: escapeStart)
        }
        runStart = index
      case 0x00..<0x20:
        throw fail("control character \(describe(byte)) in a string; write it as an escape such as \\n")
      default:
        advance()
      }
    }
  }
}
