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
  /// Frames around panes; the frame of the pane that has the keyboard focus.
  case border
  case focus
  /// A selected row (a layer or tensor chosen with the arrow keys).
  case selected
  /// The status bar across the top of a screen, and the command line.
  case status
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

  /// Writes `text` from column `x` of row `y`, cut at the right edge. A character holding a
  /// control character (ESC, CR, a C1 control, a bidirectional override) is drawn as `�`:
  /// text from a file never reaches a terminal as a control sequence.
  public mutating func write(_ text: String, x: Int, y: Int, role: ColorRole = .text) {
    var column = x
    for character in text {
      if column >= width { break }
      let safe = character.unicodeScalars.contains(where: TerminalText.isControl) ? "\u{FFFD}" : character
      self[column, y] = Cell(safe, role)
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

  /// A frame of `width`×`height` cells from (x, y) with `title` in its top edge:
  /// `┌─ title ─────┐`, in `role`; the title in `.title` unless `titleRole` says otherwise.
  public mutating func box(
    x: Int, y: Int, width: Int, height: Int, title: String = "", role: ColorRole = .border, charset: Charset = .unicode
  ) {
    guard width >= 2, height >= 2 else { return }
    let unicode = charset == .unicode
    let (h, v) = unicode ? ("─", "│") : ("-", "|")
    let corners: [Character] = unicode ? ["┌", "┐", "└", "┘"] : ["+", "+", "+", "+"]
    for column in x + 1..<x + width - 1 {
      self[column, y] = Cell(Character(h), role)
      self[column, y + height - 1] = Cell(Character(h), role)
    }
    for row in y + 1..<y + height - 1 {
      self[x, row] = Cell(Character(v), role)
      self[x + width - 1, row] = Cell(Character(v), role)
    }
    self[x, y] = Cell(corners[0], role)
    self[x + width - 1, y] = Cell(corners[1], role)
    self[x, y + height - 1] = Cell(corners[2], role)
    self[x + width - 1, y + height - 1] = Cell(corners[3], role)
    if !title.isEmpty, width > 6 {
      write(" " + String(title.prefix(width - 6)) + " ", x: x + 2, y: y, role: role == .focus ? .focus : .title)
    }
  }

  /// Gives every cell of row `y` from `x` for `width` cells the role `role` (a highlighted row).
  public mutating func highlight(x: Int, y: Int, width: Int, role: ColorRole) {
    for column in x..<x + width where column >= 0 && column < self.width && y >= 0 && y < height {
      self[column, y] = Cell(self[column, y].character, role)
    }
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
      // A blank row is an empty line (`0...-1` would trap).
      guard lastNonBlank >= 0 else { return "" }
      var line = ""
      for column in 0...lastNonBlank {
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
  /// border, focus, selected, status, then one per series colour, then the faint ones.
  public var codes: [String]
  public var seriesCount: Int

  public init(
    text: String, title: String, axis: String, label: String, marker: String, warning: String, border: String = "90",
    focus: String = "1;36", selected: String = "7", status: String = "7", series: [String], faint: [String]? = nil
  ) {
    codes = [text, title, axis, label, marker, warning, border, focus, selected, status] + series + (faint ?? series.map { "2;" + $0 })
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
    case .border: 6
    case .focus: 7
    case .selected: 8
    case .status: 9
    case .series(let n): 10 + n % seriesCount
    case .faint(let n): 10 + seriesCount + n % seriesCount
    }
  }
}
