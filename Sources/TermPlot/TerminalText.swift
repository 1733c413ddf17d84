/// Text made safe to print on a terminal. Every string that comes from a file or a user —
/// session, layer and theme names, journal lines, error messages that quote a value — passes
/// through here (or through `Grid.write`, which does the same per cell) before it reaches a
/// terminal, so a name holding `ESC ] 0 ;` cannot retitle, clear or reprogram it.
package enum TerminalText {
  /// C0 controls, DEL, C1 controls (including the 8-bit CSI, 0x9B), and the bidirectional
  /// embeddings, overrides and isolates, which reorder what a terminal shows.
  package static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
  }

  /// `text` with each control character shown visibly: C0 controls and DEL in caret notation
  /// (`^[` for ESC), others as `<U+009B>`. Newlines and tabs are kept when `keepLayout`, so
  /// several lines of a message stay several lines.
  package static func sanitized(_ text: String, keepLayout: Bool = true) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      if !isControl(scalar) || (keepLayout && (scalar == "\n" || scalar == "\t")) {
        out.append(scalar)
      } else if scalar.value < 0x20 || scalar.value == 0x7F {
        out.append("^")
        out.append(Unicode.Scalar(UInt8(scalar.value ^ 0x40)))
      } else {
        out.append(contentsOf: "<U+\(String(scalar.value, radix: 16, uppercase: true).leftPadded(4))>".unicodeScalars)
      }
    }
    return String(out)
  }
}

extension String {
  fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
