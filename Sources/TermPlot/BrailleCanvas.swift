/// A drawing surface of W×H cells with 2×4 dots per cell (Unicode braille, U+2800 + mask).
///
/// Where lines of several series cross one cell, the cell takes the colour of the series drawn
/// last ("last wins"); a series drawn faintly never recolours a cell a solid series has marked.
public struct BrailleCanvas: Sendable {
  public let width: Int
  public let height: Int
  private var masks: [UInt8]
  private var roles: [ColorRole?]

  /// Dots across and down: 2·width by 4·height.
  public var pixelWidth: Int { width * 2 }
  public var pixelHeight: Int { height * 4 }

  public init(width: Int, height: Int) {
    self.width = width
    self.height = height
    masks = Array(repeating: 0, count: width * height)
    roles = Array(repeating: nil, count: width * height)
  }

  /// The bit of the dot at column (0–1), row (0–3) of a cell.
  static func bit(column: Int, row: Int) -> UInt8 {
    let left: [UInt8] = [0x01, 0x02, 0x04, 0x40], right: [UInt8] = [0x08, 0x10, 0x20, 0x80]
    return column == 0 ? left[row] : right[row]
  }

  /// Sets the dot at pixel (x, y), (0, 0) being the top left; outside dots are ignored.
  public mutating func set(x: Int, y: Int, role: ColorRole) {
    guard x >= 0, y >= 0, x < pixelWidth, y < pixelHeight else { return }
    let cell = (y / 4) * width + x / 2
    masks[cell] |= Self.bit(column: x % 2, row: y % 4)
    if case .faint = role, let existing = roles[cell], existing != role { return }
    roles[cell] = role
  }

  /// A straight line of dots between two pixels (Bresenham).
  public mutating func line(from start: (x: Int, y: Int), to end: (x: Int, y: Int), role: ColorRole) {
    var (x, y) = start
    let dx = abs(end.x - x), dy = -abs(end.y - y)
    let sx = x < end.x ? 1 : -1, sy = y < end.y ? 1 : -1
    var error = dx + dy
    while true {
      set(x: x, y: y, role: role)
      if x == end.x && y == end.y { break }
      let doubled = 2 * error
      if doubled >= dy {
        error += dy
        x += sx
      }
      if doubled <= dx {
        error += dx
        y += sy
      }
    }
  }

  /// Whether any dot of the cell is set.
  public func isMarked(column: Int, row: Int) -> Bool { masks[row * width + column] != 0 }

  /// The canvas as cells: braille characters, or `*` in ASCII.
  public func grid(charset: Charset = .unicode) -> Grid {
    var grid = Grid(width: width, height: height)
    for row in 0..<height {
      for column in 0..<width {
        let i = row * width + column
        guard masks[i] != 0, let role = roles[i] else { continue }
        let character: Character = charset == .unicode ? Character(Unicode.Scalar(0x2800 + UInt32(masks[i]))!) : "*"
        grid[column, row] = Cell(character, role)
      }
    }
    return grid
  }
}
