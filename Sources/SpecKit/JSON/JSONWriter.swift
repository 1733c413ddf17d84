/// Writes JSON text: the canonical form of session files, and a compact form for messages.
///
/// Canonical form: object keys sorted by Unicode code point, two-space indentation, `": "`
/// between key and value, one member or element per line — except arrays whose elements are all
/// numbers, booleans or null, which stay on one line (`[2]`, `[[12, 0.5], [13, 0.49]]` keeps
/// each pair on its own line) — and a final newline. Writing the same value twice gives the same
/// bytes, so saves diff cleanly.
public enum JSONWriter {
  /// The canonical text of `value`, ending with a newline.
  public static func canonical(_ value: JSONValue) -> String {
    var out = ""
    write(value, indent: 0, into: &out)
    out += "\n"
    return out
  }

  /// The value on one line, keys in their stored order, for messages and excerpts.
  public static func compact(_ value: JSONValue) -> String {
    switch value.kind {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let n): return n.literal
    case .string(let s): return quoted(s)
    case .array(let elements): return "[" + elements.map(compact).joined(separator: ", ") + "]"
    case .object(let object):
      return "{" + object.members.map { quoted($0.key) + ": " + compact($0.value) }.joined(separator: ", ") + "}"
    }
  }

  /// `text` as a JSON string literal: quotes, backslashes and control characters escaped,
  /// everything else (including non-ASCII) written as is.
  public static func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case "\u{08}": out += "\\b"
      case "\u{0C}": out += "\\f"
      case let s where s.value < 0x20:
        out += "\\u00" + String(s.value >> 4, radix: 16) + String(s.value & 0xF, radix: 16)
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }

  private static func isScalar(_ value: JSONValue) -> Bool {
    switch value.kind {
    case .null, .bool, .number: true
    case .string, .array, .object: false
    }
  }

  private static func write(_ value: JSONValue, indent: Int, into out: inout String) {
    switch value.kind {
    case .null, .bool, .number, .string:
      out += compact(value)
    case .array(let elements):
      if elements.isEmpty {
        out += "[]"
      } else if elements.allSatisfy(isScalar) {
        out += "[" + elements.map(compact).joined(separator: ", ") + "]"
      } else {
        let pad = String(repeating: " ", count: indent + 2)
        out += "[\n"
        for (i, element) in elements.enumerated() {
          out += pad
          write(element, indent: indent + 2, into: &out)
          out += i == elements.count - 1 ? "\n" : ",\n"
        }
        out += String(repeating: " ", count: indent) + "]"
      }
    case .object(let object):
      if object.members.isEmpty {
        out += "{}"
        return
      }
      let pad = String(repeating: " ", count: indent + 2)
      let sorted = object.members.sorted { codePointsPrecede($0.key, $1.key) }
      out += "{\n"
      for (i, member) in sorted.enumerated() {
        out += pad + quoted(member.key) + ": "
        write(member.value, indent: indent + 2, into: &out)
        out += i == sorted.count - 1 ? "\n" : ",\n"
      }
      out += String(repeating: " ", count: indent) + "}"
    }
  }

  /// Code-point order, as Python's `sort_keys` uses (Swift's `<` on String is not it).
  public static func codePointsPrecede(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
  }
}
