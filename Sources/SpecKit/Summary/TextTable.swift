/// Columns of text aligned with two spaces between them; numeric-looking columns right-aligned.
struct TextTable {
  var header: [String]
  var rows: [[String]] = []
  /// Columns to right-align (counts and sizes).
  var rightAligned: Set<Int> = []

  func render(indent: String = "  ") -> [String] {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
      var line = indent
      for (column, cell) in row.enumerated() {
        let pad = String(repeating: " ", count: widths[column] - cell.count)
        line += rightAligned.contains(column) ? pad + cell : cell + (column == row.count - 1 ? "" : pad)
        if column < row.count - 1 { line += "  " }
      }
      return line
    }
  }
}

/// `4547` → `4,547`.
func grouped(_ n: Int) -> String {
  let digits = String(n.magnitude)
  var out = ""
  for (i, ch) in digits.enumerated() {
    if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
    out.append(ch)
  }
  return (n < 0 ? "-" : "") + out
}

/// A double as short as it reads back: `0.003`, `1e-08`, `2`.
func short(_ x: Double) -> String {
  x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)"
}
