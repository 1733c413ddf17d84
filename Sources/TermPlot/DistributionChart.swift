/// A tensor's distribution over time, as TensorBoard's histogram mode shows it: one column per
/// recorded step, shaded in nested bands between the quantiles
/// min ⊂ ±1.5σ ⊂ ±1σ ⊂ ±0.5σ (the levels 0, 6.68, 15.87, 30.85 | 69.15, 84.13, 93.32, 100 %),
/// darker toward the middle, the median as a line.
///
/// ```
///   0.31 ┤   ░░░▒▒▒▒▓▓▓▓
///        │░▒▒▓▓▓████████
///  -0.29 ┤   ░░░▒▒▒▒▓▓▓▓
///         50        1200
/// ```
public struct DistributionChart: Sendable {
  /// One recorded step: its x value (the step) and 9 quantiles, ascending.
  public struct Column: Hashable, Sendable {
    public var x: Double
    public var quantiles: [Double]
    public init(x: Double, quantiles: [Double]) {
      (self.x, self.quantiles) = (x, quantiles)
    }
  }

  public var title: String
  public var columns: [Column]
  public var charset: Charset

  public init(title: String, columns: [Column], charset: Charset = .unicode) {
    (self.title, self.columns, self.charset) = (title, columns, charset)
  }

  public static let minimumSize = (width: 20, height: 5)

  /// The chart in `width`×`height` cells: title, bands, value labels at the left, the first and
  /// last step below. With more columns than cells, each cell shows the column nearest to it;
  /// with fewer, each column widens to fill the width.
  public func render(width: Int, height: Int) -> Grid {
    var grid = Grid(width: width, height: height)
    guard width >= Self.minimumSize.width, height >= Self.minimumSize.height else {
      grid.writeTooSmall("distribution", needs: Self.minimumSize.width, Self.minimumSize.height)
      return grid
    }
    grid.write(title, x: 0, y: 0, role: .title)
    let usable = columns.filter { $0.quantiles.count == 9 && $0.quantiles.allSatisfy(\.isFinite) }
    let plotTop = 1, plotHeight = height - 2
    guard let first = usable.first, let last = usable.last else {
      grid.write("no distribution recorded yet", x: 0, y: plotTop + plotHeight / 2, role: .label)
      return grid
    }
    var low = usable.map { $0.quantiles[0] }.min()!, high = usable.map { $0.quantiles[8] }.max()!
    if high - low < 1e-12 {
      let pad = max(abs(low) * 0.1, 1e-3)
      (low, high) = (low - pad, high + pad)
    }
    let (topLabel, bottomLabel) = (Ticks.label(high), Ticks.label(low))
    let left = max(topLabel.count, bottomLabel.count) + 1
    let plotWidth = width - left
    let unicode = charset == .unicode
    grid.write(String(repeating: " ", count: left - 1 - topLabel.count) + topLabel, x: 0, y: plotTop, role: .label)
    grid.write(String(repeating: " ", count: left - 1 - bottomLabel.count) + bottomLabel, x: 0, y: plotTop + plotHeight - 1, role: .label)
    for row in 0..<plotHeight {
      grid[left - 1, plotTop + row] = Cell(row == 0 || row == plotHeight - 1 ? (unicode ? "┤" : "+") : (unicode ? "│" : "|"), .axis)
    }
    let shades: [Character] = unicode ? [" ", "░", "▒", "▓", "█"] : [" ", ".", ":", "+", "#"]
    for cell in 0..<plotWidth {
      let index = usable.count == 1 ? 0 : Int((Double(cell) / Double(max(1, plotWidth - 1)) * Double(usable.count - 1)).rounded())
      let q = usable[index].quantiles
      let medianRow = Int(((high - q[4]) / (high - low) * Double(plotHeight - 1)).rounded())
      for row in 0..<plotHeight {
        // The value at the middle of the cell's row.
        let value = high - (Double(row) / Double(max(1, plotHeight - 1))) * (high - low)
        let halfCell = (high - low) / Double(max(1, plotHeight - 1)) / 2
        var level = 0
        for band in 0..<4 where q[band] - halfCell <= value && value <= q[8 - band] + halfCell { level = band + 1 }
        if row == medianRow {
          grid[left + cell, plotTop + row] = Cell(unicode ? "━" : "=", .series(1))
        } else if level > 0 {
          grid[left + cell, plotTop + row] = Cell(shades[level], level == 1 ? .faint(0) : .series(0))
        }
      }
    }
    let firstLabel = Ticks.label(first.x), lastLabel = Ticks.label(last.x)
    grid.write(firstLabel, x: left, y: height - 1, role: .label)
    if usable.count > 1, lastLabel.count + firstLabel.count + 1 < plotWidth {
      grid.write(lastLabel, x: width - lastLabel.count, y: height - 1, role: .label)
    }
    return grid
  }
}
