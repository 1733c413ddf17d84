import Foundation

/// The distribution of a tensor's values as horizontal bars, one row per bin:
/// `  -0.12 ┤█████▍      31`.
public enum Histogram {
  /// Equal-width bins over [min, max] of the finite values: the bins' lower edges and counts.
  /// A constant tensor gets one bin.
  public static func bins(_ values: [Double], count: Int) -> (edges: [Double], counts: [Int]) {
    let finite = values.filter(\.isFinite)
    guard let low = finite.min(), let high = finite.max(), count > 0 else { return ([], []) }
    guard high > low else { return ([low], [finite.count]) }
    let width = (high - low) / Double(count)
    var counts = Array(repeating: 0, count: count)
    for value in finite { counts[min(count - 1, Int((value - low) / width))] += 1 }
    return ((0..<count).map { low + Double($0) * width }, counts)
  }

  /// Bars with eighth-block ends, the bin's lower edge on the left and its count on the right.
  public static func render(_ values: [Double], title: String, width: Int, height: Int, charset: Charset = .unicode) -> Grid {
    var grid = Grid(width: width, height: height)
    guard width >= 20, height >= 3 else {
      grid.writeTooSmall("histogram", needs: 20, 3)
      return grid
    }
    let finite = values.filter(\.isFinite).count
    grid.write(
      "\(title)  (\(finite) values\(finite < values.count ? ", \(values.count - finite) non-finite" : ""))", x: 0, y: 0, role: .title)
    let (edges, counts) = bins(values, count: height - 1)
    guard let top = counts.max(), top > 0 else {
      grid.write("no values", x: 0, y: 1, role: .label)
      return grid
    }
    let labels = edges.map { Ticks.label($0) }
    let countLabels = counts.map(String.init)
    let left = labels.map(\.count).max()! + 1
    let barWidth = width - left - 2 - countLabels.map(\.count).max()!
    let eighths: [Character] = charset == .unicode ? ["▏", "▎", "▍", "▌", "▋", "▊", "▉"] : []
    for (row, count) in counts.enumerated() {
      let y = row + 1
      grid.write(String(repeating: " ", count: left - 1 - labels[row].count) + labels[row], x: 0, y: y, role: .label)
      grid[left - 1, y] = Cell(charset == .unicode ? "┤" : "|", .axis)
      let length = Double(count) / Double(top) * Double(max(1, barWidth))
      let full = Int(length)
      let bar = String(repeating: charset == .unicode ? "█" : "#", count: full)
      grid.write(bar, x: left, y: y, role: .series(0))
      let remainder = Int((length - Double(full)) * 8)
      if remainder > 0, !eighths.isEmpty { grid[left + full, y] = Cell(eighths[remainder - 1], .series(0)) }
      grid.write(countLabels[row], x: left + max(1, barWidth) + 1, y: y, role: .label)
    }
    return grid
  }
}

/// A one-line chart of values: `▁▂▄▇█▆▃`, scaled between their minimum and maximum; a
/// non-finite value shows as a space.
public enum Sparkline {
  public static func render(_ values: [Double], width: Int? = nil, charset: Charset = .unicode) -> String {
    let shown = width.map { Array(values.suffix($0)) } ?? values
    let levels: [Character] = charset == .unicode ? ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"] : ["_", ".", "-", "=", "+", "*", "#", "@"]
    let finite = shown.filter(\.isFinite)
    guard let low = finite.min(), let high = finite.max() else { return String(repeating: " ", count: shown.count) }
    return String(
      shown.map { value -> Character in
        guard value.isFinite else { return " " }
        let level = high > low ? Int(((value - low) / (high - low) * 7).rounded()) : 3
        return levels[level]
      })
  }
}

/// Columns of text with a rule under the header; numbers right-aligned.
public enum Table {
  public enum Alignment: Sendable {
    case left
    case right
  }

  public static func render(header: [String], rows: [[String]], alignments: [Alignment]? = nil, charset: Charset = .unicode) -> Grid {
    let all = [header] + rows
    let columns = header.count
    let widths = (0..<columns).map { c in all.map { $0.indices.contains(c) ? $0[c].count : 0 }.max() ?? 0 }
    let align = alignments ?? Array(repeating: .left, count: columns)
    let width = widths.reduce(0, +) + 2 * max(0, columns - 1)
    var grid = Grid(width: width, height: rows.count + 2)
    func put(_ row: [String], y: Int, role: ColorRole) {
      var x = 0
      for c in 0..<columns {
        let text = row.indices.contains(c) ? row[c] : ""
        let pad = widths[c] - text.count
        grid.write(text, x: align[c] == .right ? x + pad : x, y: y, role: role)
        x += widths[c] + 2
      }
    }
    put(header, y: 0, role: .title)
    grid.write(String(repeating: charset == .unicode ? "─" : "-", count: width), x: 0, y: 1, role: .axis)
    for (i, row) in rows.enumerated() { put(row, y: i + 2, role: .text) }
    return grid
  }
}
