/// Small grey images side by side — a convolution's filters, one kernel each: every pixel two
/// cells wide (a square on most terminals) in one of five shades, `░▒▓█` over the blank of the
/// lowest values (ASCII: ` .:+#`), one scale for every image so that their strengths compare.
public struct FilterImages: Sendable, Hashable {
  /// One image: its caption (`#0`) and its values, row-major `rows × columns`.
  public struct Image: Sendable, Hashable {
    public var caption: String
    public var values: [Float]

    public init(caption: String, values: [Float]) {
      (self.caption, self.values) = (caption, values)
    }
  }

  public var title: String
  public var images: [Image]
  public var rows: Int
  public var columns: Int

  public init(title: String, images: [Image], rows: Int, columns: Int) {
    (self.title, self.images, self.rows, self.columns) = (title, images, rows, columns)
  }

  static let unicodeShades: [Character] = [" ", "░", "▒", "▓", "█"]
  static let asciiShades: [Character] = [" ", ".", ":", "+", "#"]

  /// The shade of `value` between `low` and `high` (the middle one for a constant image; a
  /// non-finite value is drawn as `?`).
  static func shade(_ value: Float, low: Float, high: Float, _ shades: [Character]) -> Character {
    guard value.isFinite else { return "?" }
    guard high > low else { return shades[shades.count / 2] }
    let level = Int(((value - low) / (high - low) * Float(shades.count)).rounded(.down))
    return shades[min(shades.count - 1, max(0, level))]
  }

  /// The images in as many rows of images as the width needs, below the title and a scale line;
  /// the grid is as tall as they need (`height` ignored when they fit; a "needs" message when
  /// not even one image fits the width).
  public func render(width: Int, charset: Charset = .unicode) -> Grid {
    let cellWidth = 2 * columns
    let captionWidth = images.map(\.caption.count).max() ?? 0
    let slot = max(cellWidth, captionWidth) + 2
    guard width >= slot, rows > 0, columns > 0 else {
      var grid = Grid(width: max(width, 1), height: 1)
      grid.writeTooSmall("filters", needs: slot, rows + 3)
      return grid
    }
    let perRow = max(1, width / slot)
    let bands = (images.count + perRow - 1) / perRow
    let finite = images.flatMap(\.values).filter(\.isFinite)
    let (low, high) = (finite.min() ?? 0, finite.max() ?? 0)
    var grid = Grid(width: width, height: 2 + bands * (rows + 1))
    let shades = charset == .unicode ? Self.unicodeShades : Self.asciiShades
    grid.write(title, x: 0, y: 0, role: .title)
    grid.write(
      "scale: \(String(shades[0]) == " " ? "blank" : String(shades[0])) = \(Ticks.label(Double(low))) … \(shades.last!) = \(Ticks.label(Double(high)))",
      x: 0, y: 1, role: .label)
    for (index, image) in images.enumerated() {
      let (band, place) = (index / perRow, index % perRow)
      let (x0, y0) = (place * slot, 2 + band * (rows + 1))
      grid.write(image.caption, x: x0, y: y0, role: .label)
      for r in 0..<rows {
        var line = ""
        for c in 0..<columns {
          let value = r * columns + c < image.values.count ? image.values[r * columns + c] : .nan
          let ch = Self.shade(value, low: low, high: high, shades)
          line.append(ch)
          line.append(ch)
        }
        grid.write(line, x: x0, y: y0 + 1 + r, role: .series(0))
      }
    }
    return grid
  }
}
