/// What a cell's colour means; each front end maps roles to its colours (ANSI codes in the
/// REPL, curses pairs in the dashboard), so plots carry no colour values themselves.
public enum ColorRole: Hashable, Sendable {
  case text
  case title
  case axis
  case label
  /// The n-th series (front ends cycle through their series colours).
  case series(Int)
  /// A series drawn faintly behind another (raw values behind the smoothed line).
  case faint(Int)
  /// Event markers on a time axis.
  case marker
  case warning
}

/// Which characters drawing may use.
public enum Charset: Sendable {
  /// Braille dots, box drawing and block elements.
  case unicode
  /// Printable ASCII only, for terminals without a UTF-8 locale.
  case ascii
}

/// One character cell: what it shows and in which role.
public struct Cell: Hashable, Sendable {
  public var character: Character
  public var role: ColorRole

  public init(_ character: Character, _ role: ColorRole = .text) {
    self.character = character
    self.role = role
  }

  public static let blank = Cell(" ")
}

/// A rectangle of cells, row-major: the output of every renderer, turned into text by
/// `plainText` or `ansiText(palette:)`, or copied cell by cell by a curses front end.
public struct Grid: Hashable, Sendable {
  public let width: Int
  public let height: Int
  public private(set) var cells: [Cell]

  public init(width: Int, height: Int) {
    self.width = max(0, width)
    self.height = max(0, height)
    cells = Array(repeating: .blank, count: self.width * self.height)
  }

  public subscript(x: Int, y: Int) -> Cell {
    get { cells[y * width + x] }
    set { if x >= 0, y >= 0, x < width, y < height { cells[y * width + x] = newValue } }
  }

  /// Writes `text` from column `x` of row `y`, cut at the right edge.
  public mutating func write(_ text: String, x: Int, y: Int, role: ColorRole = .text) {
    var column = x
    for character in text {
      if column >= width { break }
      self[column, y] = Cell(character, role)
      column += 1
    }
  }

  /// Says that the grid is smaller than `width`×`height` needs, in the longest wording that fits
  /// one row: "plot needs 20×6, has 12×4", "needs 20×6", or "20×6".
  public mutating func writeTooSmall(_ what: String, needs width: Int, _ height: Int) {
    let need = "\(width)×\(height)"
    let wordings = ["\(what) needs \(need), has \(self.width)×\(self.height)", "needs \(need)", need]
    write(wordings.first { $0.count <= self.width } ?? need, x: 0, y: 0, role: .warning)
  }

  /// Copies `other` with its top-left corner at (x, y), cut at the edges.
  public mutating func paste(_ other: Grid, x: Int, y: Int) {
    for row in 0..<other.height {
      for column in 0..<other.width { self[x + column, y + row] = other[column, row] }
    }
  }

  /// The rows as text, trailing spaces removed, joined by newlines.
  public var plainText: String {
    (0..<height).map { row in
      var line = String((0..<width).map { self[$0, row].character })
      while line.last == " " { line.removeLast() }
      return line
    }.joined(separator: "\n")
  }

  /// The rows as text with ANSI SGR colour sequences, switching only where the role changes and
  /// resetting at the end of every line (so a cut line never bleeds colour).
  public func ansiText(palette: AnsiPalette = .standard) -> String {
    (0..<height).map { row in
      var last = Int.max
      var lastNonBlank = -1
      for column in 0..<width where self[column, row].character != " " { lastNonBlank = column }
      var line = ""
      for column in 0...max(lastNonBlank, -1) where column >= 0 {
        let cell = self[column, row]
        let index = cell.character == " " ? -1 : palette.index(for: cell.role)
        if index != last {
          line += index < 0 ? "\u{1B}[0m" : "\u{1B}[0;\(palette.codes[index])m"
          last = index
        }
        line.append(cell.character)
      }
      return line + (last != Int.max && last >= 0 ? "\u{1B}[0m" : "")
    }.joined(separator: "\n")
  }
}

/// SGR parameters per role, for ANSI terminals.
public struct AnsiPalette: Sendable {
  /// Parameter strings (`"36"`, `"1"`, `"2;36"`): text, title, axis, label, marker, warning,
  /// then one per series colour.
  public var codes: [String]
  public var seriesCount: Int

  public init(text: String, title: String, axis: String, label: String, marker: String, warning: String, series: [String]) {
    codes = [text, title, axis, label, marker, warning] + series + series.map { "2;" + $0 }
    seriesCount = series.count
  }

  /// 16-colour codes every terminal has: cyan, yellow, magenta, green, blue, red series.
  public static let standard = AnsiPalette(
    text: "39", title: "1", axis: "90", label: "37", marker: "33", warning: "31", series: ["36", "33", "35", "32", "34", "31"])

  func index(for role: ColorRole) -> Int {
    switch role {
    case .text: 0
    case .title: 1
    case .axis: 2
    case .label: 3
    case .marker: 4
    case .warning: 5
    case .series(let n): 6 + n % seriesCount
    case .faint(let n): 6 + seriesCount + n % seriesCount
    }
  }
}
