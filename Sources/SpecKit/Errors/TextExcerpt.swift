/// Text that came from a file, made fit for a message: short, and with every control character
/// written as an escape. A message names a problem; it never echoes a file's contents beyond
/// what identifies the problem, and never passes a terminal control sequence through.
package enum TextExcerpt {
  /// The most characters of a value a message shows.
  package static let defaultLimit = 32

  /// `"root:$6$abc…" (93 characters)`: the text in quotes, cut at `limit` characters, with
  /// control characters as `\u{1B}`-style escapes.
  package static func quoted(_ text: String, limit: Int = defaultLimit) -> String {
    let characters = Array(text)
    let shown = characters.count > limit ? String(characters.prefix(limit)) + "…" : text
    let suffix = characters.count > limit ? " (\(characters.count) characters)" : ""
    return "\"" + escaped(shown) + "\"" + suffix
  }

  /// The text cut at `limit` characters (with `…`) and escaped, without quotes: for names in
  /// a message (a column's, a class's).
  package static func short(_ text: String, limit: Int = defaultLimit) -> String {
    let characters = Array(text)
    return escaped(characters.count > limit ? String(characters.prefix(limit)) + "…" : text)
  }

  /// The text with every control character (C0, DEL, C1) and bidirectional override written as
  /// a visible escape, so it can be printed anywhere.
  package static func escaped(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
      if isControl(scalar) {
        out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
      } else {
        out.unicodeScalars.append(scalar)
      }
    }
    return out
  }

  /// C0 controls, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates
  /// (which reorder what a terminal shows).
  package static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
  }
}
