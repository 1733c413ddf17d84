import SpecKit
import TermPlot

/// A dashboard colour theme: a style per colour role and the series colours, read from
/// `themes/*.json` (the format is in docs/dashboard.md).
public struct Theme: Hashable, Sendable {
  public var name: String
  /// Styles by role name (`text`, `title`, … see `Theme.roleNames`); a missing role draws in the
  /// terminal's default colours.
  public var styles: [String: ThemeStyle]
  /// Colours of the chart series, cycled; never empty.
  public var series: [ThemeColor]

  /// The roles a theme can style, in the order the format lists them.
  public static let roleNames = ["text", "title", "axis", "label", "marker", "warning", "border", "focus", "selected", "status"]

  public init(name: String, styles: [String: ThemeStyle], series: [ThemeColor]) {
    (self.name, self.styles, self.series) = (name, styles, series.isEmpty ? [.terminalDefault] : series)
  }

  /// The style a grid cell of `role` is drawn in. A faint series is its series colour, dimmed.
  public func style(for role: ColorRole) -> ThemeStyle {
    switch role {
    case .series(let n): return ThemeStyle(foreground: series[n % series.count])
    case .faint(let n): return ThemeStyle(foreground: series[n % series.count], dim: true)
    default: return styles[Self.roleName(role)] ?? ThemeStyle()
    }
  }

  static func roleName(_ role: ColorRole) -> String {
    switch role {
    case .text: "text"
    case .title: "title"
    case .axis: "axis"
    case .label: "label"
    case .marker: "marker"
    case .warning: "warning"
    case .border: "border"
    case .focus: "focus"
    case .selected: "selected"
    case .status: "status"
    case .series, .faint: "series"
    }
  }

  /// SGR codes for `ansiText`, at a colour depth: how `--snapshot --color` and the golden
  /// frames show a theme without curses.
  public func ansiPalette(depth: ColorDepth) -> AnsiPalette {
    func code(_ themed: ThemeStyle) -> String {
      let style = themed.adapted(to: depth)
      var parts: [String] = []
      if style.bold { parts.append("1") }
      if style.dim { parts.append("2") }
      if style.underline { parts.append("4") }
      if style.reverse { parts.append("7") }
      if let fg = style.foreground.sgr(depth: depth, background: false) { parts.append(fg) }
      if let bg = style.background.sgr(depth: depth, background: true) { parts.append(bg) }
      return parts.isEmpty ? "39" : parts.joined(separator: ";")
    }
    let role = { (name: String) in code(self.styles[name] ?? ThemeStyle()) }
    return AnsiPalette(
      text: role("text"), title: role("title"), axis: role("axis"), label: role("label"), marker: role("marker"),
      warning: role("warning"), border: role("border"), focus: role("focus"), selected: role("selected"), status: role("status"),
      series: series.map { code(ThemeStyle(foreground: $0)) }, faint: series.map { code(ThemeStyle(foreground: $0, dim: true)) })
  }
}

/// How one role looks: colours and attributes.
public struct ThemeStyle: Hashable, Sendable {
  public var foreground: ThemeColor
  public var background: ThemeColor
  public var bold: Bool
  public var dim: Bool
  public var underline: Bool
  public var reverse: Bool

  public init(
    foreground: ThemeColor = .terminalDefault, background: ThemeColor = .terminalDefault, bold: Bool = false, dim: Bool = false,
    underline: Bool = false, reverse: Bool = false
  ) {
    (self.foreground, self.background, self.bold, self.dim, self.underline, self.reverse) = (
      foreground, background, bold, dim, underline, reverse
    )
  }
}

extension ThemeStyle {
  /// The style as drawn at `depth`. With only the 8 basic colours, a mid grey foreground (a
  /// border, an axis) would become black or white — invisible on a terminal of that colour — so
  /// it is drawn in the terminal's own foreground colour, dimmed, instead.
  public func adapted(to depth: ColorDepth) -> ThemeStyle {
    guard depth == .basic, case .rgb(let r, let g, let b) = foreground else { return self }
    let (high, low) = (max(r, g, b), min(r, g, b))
    let luminance = (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255
    guard Int(high) - Int(low) <= 24, luminance > 0.2, luminance < 0.8 else { return self }
    var style = self
    style.foreground = .terminalDefault
    style.dim = true
    return style
  }
}

/// How many colours the terminal shows, which decides how a theme's colours are drawn.
public enum ColorDepth: String, Sendable, CaseIterable {
  /// No colours (`NO_COLOR`, or a terminal without them): attributes only.
  case none
  /// The 8 basic colours (16 with their bright forms).
  case basic
  /// The xterm 256-colour palette.
  case palette256
  /// 24-bit colour.
  case direct
}

/// A colour in a theme: the terminal's default, one of the 16 basic colours by name, or
/// `#rrggbb`.
public enum ThemeColor: Hashable, Sendable {
  case terminalDefault
  /// 0–7 black, red, green, yellow, blue, magenta, cyan, white; 8–15 their bright forms.
  case basic(Int)
  case rgb(UInt8, UInt8, UInt8)

  static let basicNames = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]
  /// The basic colours' usual RGB values (xterm's), for matching `#rrggbb` on 8-colour terminals.
  static let basicRGB: [(Int, Int, Int)] = [
    (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
    (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
  ]

  /// Reads `default`, a basic name (`red`, `bright-cyan`) or `#rrggbb`.
  public init?(_ text: String) {
    let lower = text.lowercased()
    if lower == "default" {
      self = .terminalDefault
    } else if let index = Self.basicNames.firstIndex(of: lower) {
      self = .basic(index)
    } else if lower.hasPrefix("bright-"), let index = Self.basicNames.firstIndex(of: String(lower.dropFirst(7))) {
      self = .basic(index + 8)
    } else if lower.count == 7, lower.first == "#", let value = UInt32(lower.dropFirst(), radix: 16) {
      self = .rgb(UInt8(value >> 16), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
    } else {
      return nil
    }
  }

  /// The curses colour number at `depth` (-1: the terminal's default).
  public func number(depth: ColorDepth, colors: Int = 256) -> Int {
    switch (self, depth) {
    case (.terminalDefault, _), (_, .none): return -1
    case (.basic(let index), _): return colors >= 16 ? index : index % 8
    case (.rgb(let r, let g, let b), .direct): return Int(r) << 16 | Int(g) << 8 | Int(b)
    case (.rgb(let r, let g, let b), .palette256): return Self.nearest256(Int(r), Int(g), Int(b))
    case (.rgb(let r, let g, let b), .basic): return Self.nearestBasic(Int(r), Int(g), Int(b), count: colors >= 16 ? 16 : 8)
    }
  }

  /// The SGR parameter for this colour as foreground or background, nil for the default.
  func sgr(depth: ColorDepth, background: Bool) -> String? {
    switch (self, depth) {
    case (.terminalDefault, _), (_, .none): return nil
    case (.rgb(let r, let g, let b), .direct): return "\(background ? 48 : 38);2;\(r);\(g);\(b)"
    case (.rgb, .palette256): return "\(background ? 48 : 38);5;\(number(depth: depth))"
    default:
      let index = number(depth: depth, colors: 16)
      return String((index < 8 ? (background ? 40 : 30) : (background ? 100 : 90)) + index % 8)
    }
  }

  /// The xterm-256 index nearest to an RGB colour: the 6×6×6 cube or the 24 greys.
  static func nearest256(_ r: Int, _ g: Int, _ b: Int) -> Int {
    let levels = [0, 95, 135, 175, 215, 255]
    func level(_ v: Int) -> Int { levels.indices.min { abs(levels[$0] - v) < abs(levels[$1] - v) }! }
    let (ri, gi, bi) = (level(r), level(g), level(b))
    let cube = (16 + 36 * ri + 6 * gi + bi, (levels[ri], levels[gi], levels[bi]))
    let grey = max(0, min(23, ((r + g + b) / 3 - 8 + 5) / 10))
    let greyValue = 8 + 10 * grey
    let greyCandidate = (232 + grey, (greyValue, greyValue, greyValue))
    func distance(_ c: (Int, Int, Int)) -> Int { (c.0 - r) * (c.0 - r) + (c.1 - g) * (c.1 - g) + (c.2 - b) * (c.2 - b) }
    return distance(greyCandidate.1) < distance(cube.1) ? greyCandidate.0 : cube.0
  }

  static func nearestBasic(_ r: Int, _ g: Int, _ b: Int, count: Int) -> Int {
    (0..<count).min { a, c in
      let (x, y) = (basicRGB[a], basicRGB[c])
      return (x.0 - r) * (x.0 - r) + (x.1 - g) * (x.1 - g) + (x.2 - b) * (x.2 - b) < (y.0 - r) * (y.0 - r) + (y.1 - g) * (y.1 - g)
        + (y.2 - b) * (y.2 - b)
    }!
  }
}
