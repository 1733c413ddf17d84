import CNcurses
import Foundation
import TermPlot

/// The only code that calls curses: sets the terminal up and restores it, turns theme styles into
/// colour pairs and attributes, copies a grid to the screen (only the cells that changed since
/// the last frame), and reads keys. Curses is not thread-safe: one thread makes every call.
final class CursesScreen {
  let charset: Charset
  let depth: ColorDepth
  let colors: Int
  private var theme: Theme
  /// Attributes and pair per role of the current theme.
  private var looks: [ColorRole: (attributes: attr_t, pair: Int32)] = [:]
  private var pairs: [[Int]: Int32] = [:]
  private var previous: Grid?

  /// Starts curses on the terminal: wide characters when the locale is UTF-8 (ASCII drawing
  /// otherwise), raw keys (Ctrl-C arrives as a key), no echo, hidden cursor, and colours unless
  /// `NO_COLOR` is set or the terminal has none.
  ///
  /// - Throws: a message for a terminal the dashboard cannot draw on (an unknown `TERM`, or one
  ///   without cursor addressing such as `dumb`); the terminal is left untouched then.
  init(theme: Theme, environment: [String: String] = ProcessInfo.processInfo.environment) throws(DashboardUnavailable) {
    charset = specbench_setlocale_utf8() != 0 ? .unicode : .ascii
    // Curses takes LINES and COLUMNS from the environment over the terminal's real size, and
    // then never follows a resize; the dashboard always follows the window.
    unsetenv("LINES")
    unsetenv("COLUMNS")
    let term = TerminalText.sanitized(environment["TERM"] ?? "", keepLayout: false)
    switch specbench_start_screen() {
    case 0: break
    case -1:
      throw DashboardUnavailable(
        "the dashboard cannot start: the terminal type TERM=\"\(term)\" is unknown here; set TERM to your terminal's (xterm-256color works in most)"
      )
    case -2:
      throw DashboardUnavailable(
        "the dashboard cannot start: TERM=\"\(term)\" cannot move its cursor, so a full-screen view cannot be drawn; use plot and status, or set TERM to your terminal's (such as xterm-256color)"
      )
    default:
      throw DashboardUnavailable("the dashboard cannot start on this terminal (TERM=\"\(term)\"); use plot and status instead")
    }
    raw()
    noecho()
    keypad(specbench_stdscr(), true)
    set_escdelay(25)
    curs_set(0)
    timeout(50)
    let noColor = !(environment["NO_COLOR"] ?? "").isEmpty
    if has_colors() && !noColor {
      start_color()
      use_default_colors()
      colors = Int(specbench_colors())
      depth = specbench_has_rgb() != 0 || colors >= 1 << 24 ? .direct : colors >= 256 ? .palette256 : .basic
    } else {
      (colors, depth) = (0, .none)
    }
    self.theme = theme
    apply(theme)
  }

  /// Restores the terminal as it was.
  func close() {
    curs_set(1)
    endwin()
  }

  /// The terminal's size in cells.
  var size: (width: Int, height: Int) { (Int(specbench_cols()), Int(specbench_lines())) }

  /// Uses `theme` from the next frame on (and draws that frame whole).
  func apply(_ theme: Theme) {
    self.theme = theme
    looks.removeAll()
    previous = nil
  }

  /// Draws the next frame whole (after a resize or Ctrl-L).
  func invalidate() {
    previous = nil
    clear()
  }

  /// Copies `grid` to the screen: every cell when the last frame is unknown or of another size,
  /// otherwise only those that changed.
  func draw(_ grid: Grid) {
    if let previous, previous.width != grid.width || previous.height != grid.height { invalidate() }
    let old = previous
    guard old != grid else { return }
    for y in 0..<grid.height {
      for x in 0..<grid.width {
        let cell = grid[x, y]
        if let old, old[x, y] == cell { continue }
        let look = look(for: cell.role)
        let scalar = cell.character.unicodeScalars.first.map { Int32(bitPattern: $0.value) } ?? 32
        // The bottom-right cell scrolls some terminals and reports ERR; the cell is drawn anyway.
        _ = specbench_put(Int32(y), Int32(x), scalar, look.attributes, look.pair)
      }
    }
    refresh()
    previous = grid
  }

  /// The attributes and colour pair of a role in the current theme, made on first use.
  private func look(for role: ColorRole) -> (attributes: attr_t, pair: Int32) {
    if let known = looks[role] { return known }
    let style = theme.style(for: role).adapted(to: depth)
    var attributes = specbench_a_normal()
    if style.bold { attributes |= specbench_a_bold() }
    if style.dim { attributes |= specbench_a_dim() }
    if style.underline { attributes |= specbench_a_underline() }
    // Without colours, a role set apart by its background (selection, status bar) is shown in
    // reverse video so that it still stands out.
    if style.reverse || (depth == .none && style.background != .terminalDefault) { attributes |= specbench_a_reverse() }
    var pair: Int32 = 0
    if depth != .none {
      let key = [style.foreground.number(depth: depth, colors: colors), style.background.number(depth: depth, colors: colors)]
      if key != [-1, -1] {
        if let existing = pairs[key] {
          pair = existing
        } else if pairs.count + 1 < Int(specbench_color_pairs()) {
          pair = Int32(pairs.count + 1)
          init_extended_pair(pair, Int32(key[0]), Int32(key[1]))
          pairs[key] = pair
        }
      }
    }
    looks[role] = (attributes, pair)
    return (attributes, pair)
  }

  /// What came from the keyboard within the timeout set at start (50 ms).
  enum Input {
    case key(DashboardKey)
    case resize
    case none
  }

  /// A key already typed, without waiting for one.
  func readNow() -> Input {
    timeout(0)
    defer { timeout(50) }
    return read()
  }

  func read() -> Input {
    var code: Int32 = 0
    let result = specbench_get_key(&code)
    if result == specbench_err() { return .none }
    if result == specbench_key_code_yes() {
      switch code {
      case specbench_key_resize(): return .resize
      case Int32(KEY_UP): return .key(.up)
      case Int32(KEY_DOWN): return .key(.down)
      case Int32(KEY_LEFT): return .key(.left)
      case Int32(KEY_RIGHT): return .key(.right)
      case Int32(KEY_BTAB): return .key(.backTab)
      case Int32(KEY_BACKSPACE): return .key(.backspace)
      case Int32(KEY_ENTER): return .key(.enter)
      case Int32(KEY_HOME): return .key(.home)
      case Int32(KEY_END): return .key(.end)
      case Int32(KEY_DC): return .key(.delete)
      default: return .none
      }
    }
    switch code {
    case 1: return .key(.home)
    case 3: return .key(.interrupt)
    case 5: return .key(.end)
    case 21: return .key(.killLine)
    case 23: return .key(.killWord)
    case 9: return .key(.tab)
    case 10, 13: return .key(.enter)
    case 12: return .key(.redraw)
    case 27: return .key(.escape)
    case 8, 127: return .key(.backspace)
    default:
      guard code >= 32, let scalar = Unicode.Scalar(UInt32(bitPattern: code)) else { return .none }
      return .key(.character(Character(scalar)))
    }
  }
}

/// Why the dashboard cannot be drawn on this terminal; the session goes on without it.
public struct DashboardUnavailable: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}
