import Foundation

/// A line chart of one or more series over a shared x axis, drawn in braille with a y axis of
/// nice ticks on the left and an x axis below.
///
/// ```
/// loss  ━ train  ━ val
///   1.2┤⢇
///      │⠈⢆⡀
///   0.8┤  ⠑⠢⣀
///      ...
///      └──────────────
///       0      500
/// ```
public struct LineChart: Sendable {
  public struct Point: Hashable, Sendable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) {
      self.x = x
      self.y = y
    }
  }

  /// A named series: its points in order of x, or a summarized history (`SummarizedPoints`, its
  /// values times `scale`) read at the resolution the chart's width needs.
  public struct Series: Sendable {
    public var name: String
    /// The points of a series given as points (empty for a summarized one).
    var plain: [Point]
    public var summarized: (any SummarizedPoints)?
    /// What the summarized values are multiplied by (a positive number: 100 for percentages).
    public var scale = 1.0
    /// The series colour it is drawn in (nil: its place among the series), so that several
    /// series of one run share a colour (`compare`).
    public var colour: Int?
    /// Drawn in the faint form of its colour (a run's validation loss beside its batch loss).
    public var faint = false
    public init(name: String, points: [Point]) {
      (self.name, self.plain) = (name, points)
    }
    public init(name: String, summarized: any SummarizedPoints, scale: Double = 1) {
      (self.name, self.plain, self.summarized, self.scale) = (name, [], summarized, scale)
    }
    /// Every point.
    public var points: [Point] {
      guard let source = summarized else { return plain }
      return (0..<source.count).map { Point(source.point($0).x, source.point($0).y * scale) }
    }

    /// Calls `body` with each point in order, wherever it is kept.
    func forEachPoint(_ body: (Point) -> Void) {
      if let source = summarized {
        for index in 0..<source.count {
          let p = source.point(index)
          body(Point(p.x, p.y * scale))
        }
        return
      }
      for p in plain { body(p) }
    }
  }

  /// The level of summaries a chart `pixelColumns` wide reads: the coarsest whose blocks hold at
  /// most an eighth of a pixel column's points, so that each column still gets eight or more; 0
  /// (every point) for a history short enough that its columns hold fewer than 128 points.
  static func summaryLevel(count: Int, pixelColumns: Int, levels: Int) -> Int {
    let perColumn = count / max(1, pixelColumns)
    var level = 0
    while level < levels && SpanSummary.blockSize(level + 1) * 8 <= perColumn { level += 1 }
    return level
  }

  public var title: String
  public var series: [Series]
  /// x positions of vertical dotted lines: events such as a backend swap or an optimizer change.
  public var markers: [Double] = []
  /// Plot log10(y); values ≤ 0 are left out.
  public var logScale = false
  /// TensorBoard smoothing weight in [0, 1); the raw series is drawn faintly behind.
  public var smoothing = 0.0
  public var charset = Charset.unicode

  public init(
    title: String, series: [Series], markers: [Double] = [], logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode
  ) {
    (self.title, self.series, self.markers, self.logScale, self.smoothing, self.charset) = (
      title, series, markers, logScale, smoothing, charset
    )
  }

  /// The smallest size that holds a readable chart.
  public static let minimumSize = (width: 20, height: 6)

  public func render(width: Int, height: Int) -> Grid {
    var grid = Grid(width: width, height: height)
    guard width >= Self.minimumSize.width, height >= Self.minimumSize.height else {
      grid.writeTooSmall("plot", needs: Self.minimumSize.width, Self.minimumSize.height)
      return grid
    }
    let unicode = charset == .unicode
    // Title and legend.
    var legend = title
    grid.write(legend, x: 0, y: 0, role: .title)
    for (i, s) in series.enumerated() where !s.name.isEmpty {
      let entry = "  " + (unicode ? (s.faint ? "┅ " : "━ ") : (s.faint ? ". " : "- ")) + s.name
      grid.write(entry, x: legend.count, y: 0, role: s.faint ? .faint(s.colour ?? i) : .series(s.colour ?? i))
      legend += entry
    }

    // Values as plotted: log10 of y on a log axis. A non-finite value (or one ≤ 0 on a log
    // axis) is left out and breaks the line, so gaps show as gaps. Two passes over the points,
    // neither of which copies them: a long run's history is drawn every frame.
    let logScale = self.logScale
    func plotted(_ y: Double) -> Double { PixelFrame.plotted(y, logScale: logScale) }
    var (xLow, xHigh, yLow, yHigh) = (Double.infinity, -Double.infinity, Double.infinity, -Double.infinity)
    /// Each series' lowest and highest plotted value (equal: a constant series, not smoothed).
    var seriesRange: [(low: Double, high: Double)] = []
    for s in series {
      var (low, high) = (Double.infinity, -Double.infinity)
      if let source = s.summarized, source.summaryLevels > 0, source.count > 0 {
        // The top level's one block, and the first and last points that are drawn.
        let whole = source.summary(level: source.summaryLevels, block: 0)
        if logScale {
          if whole.positive > 0 { (low, high) = (plotted(Double(whole.lowPositive) * s.scale), plotted(Double(whole.high) * s.scale)) }
        } else if whole.finite > 0 {
          (low, high) = (Double(whole.low) * s.scale, Double(whole.high) * s.scale)
        }
        func drawn(_ level: Int, _ block: Int) -> Bool {
          let summary = source.summary(level: level, block: block)
          return logScale ? summary.positive > 0 : summary.finite > 0
        }
        func isDrawn(_ index: Int) -> Bool { plotted(source.point(index).y * s.scale).isFinite }
        if let first = Self.firstIndex(in: source, where: drawn, isDrawn), let last = Self.lastIndex(in: source, where: drawn, isDrawn) {
          (xLow, xHigh) = (min(xLow, source.point(first).x), max(xHigh, source.point(last).x))
        }
      } else {
        s.forEachPoint { p in
          let y = plotted(p.y)
          guard y.isFinite && p.x.isFinite else { return }
          (low, high) = (min(low, y), max(high, y))
          (xLow, xHigh) = (min(xLow, p.x), max(xHigh, p.x))
        }
      }
      seriesRange.append((low, high))
      (yLow, yHigh) = (min(yLow, low), max(yHigh, high))
    }
    let plotTop = 1, plotHeight = height - 3
    guard xLow.isFinite else {
      drawFrame(&grid, left: 1, top: plotTop, plotHeight: plotHeight, labels: [:])
      grid.write("no data yet", x: max(2, (width - 11) / 2), y: plotTop + plotHeight / 2, role: .label)
      return grid
    }
    if yHigh - yLow < 1e-12 {
      let pad = max(abs(yLow) * 0.1, logScale ? 0.5 : 1e-3)
      (yLow, yHigh) = (yLow - pad, yHigh + pad)
    }
    if xHigh == xLow { (xLow, xHigh) = (xLow - 1, xHigh + 1) }

    // Y ticks and the left margin their labels need.
    let yTicks = logTicksOrNice(low: yLow, high: yHigh, count: max(2, plotHeight / 2))
    let tickLabels = yTicks.map { Ticks.label(logScale ? pow(10, $0) : $0) }
    let left = (tickLabels.map(\.count).max() ?? 1) + 1
    let plotWidth = width - left - 1
    guard plotWidth >= 8 else {
      grid = Grid(width: width, height: height)
      grid.writeTooSmall("plot", needs: left + 9, Self.minimumSize.height)
      return grid
    }
    var canvas = BrailleCanvas(width: plotWidth, height: plotHeight)
    let frame = PixelFrame(
      logScale: logScale, left: xLow, top: yHigh, xScale: Double(canvas.pixelWidth - 1) / (xHigh - xLow),
      yScale: Double(canvas.pixelHeight - 1) / (yHigh - yLow))
    // Each series in one pass: the raw line (faint behind the smoothed one when smoothing), and
    // the smoothed line, whose average carries over gaps. A faint dot never covers another
    // colour, so drawing the two together colours every cell as drawing one after the other.
    let pixelColumns = canvas.pixelWidth
    for (i, s) in series.enumerated() {
      let smoothed = smoothing > 0 && seriesRange[i].high > seriesRange[i].low
      // The painter holds the canvas while it draws, so that the canvas is not shared.
      var painter = SeriesPainter(
        frame: frame, index: s.colour ?? i, smoothed: smoothed, smoothing: smoothing, faint: s.faint, canvas: canvas)
      canvas = BrailleCanvas(width: 0, height: 0)
      if let source = s.summarized {
        let level = Self.summaryLevel(count: source.count, pixelColumns: pixelColumns, levels: source.summaryLevels)
        painter.draw(source, scale: s.scale, level: level)
      } else {
        for p in s.plain { painter.point(p.x, p.y) }
      }
      painter.finish()
      canvas = painter.canvas
    }

    var labels: [Int: String] = [:]
    for (tick, label) in zip(yTicks, tickLabels) {
      let row = Int(((yHigh - tick) / (yHigh - yLow) * Double(canvas.pixelHeight - 1)).rounded()) / 4
      labels[plotTop + row] = label
    }
    drawFrame(&grid, left: left, top: plotTop, plotHeight: plotHeight, labels: labels)
    grid.paste(canvas.grid(charset: charset), x: left + 1, y: plotTop)

    // Markers: a dotted column wherever the canvas has no dots.
    for marker in markers where marker >= xLow && marker <= xHigh {
      let column = frame.pixel(marker, yLow).x / 2
      for row in 0..<plotHeight where !canvas.isMarked(column: column, row: row) {
        grid[left + 1 + column, plotTop + row] = Cell(unicode ? "┊" : ":", .marker)
      }
      grid[left + 1 + column, plotTop + plotHeight] = Cell(unicode ? "┴" : "+", .marker)
    }

    // X tick labels, left out where they would overlap.
    var nextFree = left + 1
    for tick in Ticks.nice(low: xLow, high: xHigh, count: max(2, plotWidth / 12)) {
      let label = Ticks.label(tick)
      let column = left + 1 + frame.pixel(tick, yLow).x / 2 - label.count / 2
      let start = max(column, left + 1)
      guard start >= nextFree, start + label.count <= width else { continue }
      grid.write(label, x: start, y: plotTop + plotHeight + 1, role: .label)
      nextFree = start + label.count + 1
    }
    return grid
  }

  /// The first point `isDrawn` accepts, searched block by block from the top level down,
  /// skipping blocks `drawn` says hold none.
  static func firstIndex(
    in source: any SummarizedPoints, where drawn: (Int, Int) -> Bool, _ isDrawn: (Int) -> Bool, reversed: Bool = false
  ) -> Int? {
    func search(_ level: Int, _ blocks: Range<Int>) -> Int? {
      let order = reversed ? AnyCollection(blocks.reversed()) : AnyCollection(blocks)
      for block in order {
        if level == 0 {
          if isDrawn(block) { return block }
          continue
        }
        guard drawn(level, block) else { continue }
        let below = SpanSummary.blockSize(level - 1)
        let children = (block * 16)..<min(block * 16 + 16, (source.count + below - 1) / below)
        if let found = search(level - 1, children) { return found }
      }
      return nil
    }
    return search(source.summaryLevels, 0..<1)
  }

  static func lastIndex(in source: any SummarizedPoints, where drawn: (Int, Int) -> Bool, _ isDrawn: (Int) -> Bool) -> Int? {
    firstIndex(in: source, where: drawn, isDrawn, reversed: true)
  }

  /// Whole decades on a log axis when the range spans at least one; nice ticks otherwise.
  private func logTicksOrNice(low: Double, high: Double, count: Int) -> [Double] {
    guard logScale, high - low >= 1 else { return Ticks.nice(low: low, high: high, count: count) }
    let decades = Array(Int(ceil(low))...Int(floor(high))).map(Double.init)
    let stride = max(1, decades.count / count)
    return decades.enumerated().filter { $0.offset % stride == 0 }.map(\.element)
  }

  /// The y axis with its labels and the x axis line.
  private func drawFrame(_ grid: inout Grid, left: Int, top: Int, plotHeight: Int, labels: [Int: String]) {
    let unicode = charset == .unicode
    for row in top..<(top + plotHeight) {
      if let label = labels[row] {
        grid.write(String(repeating: " ", count: max(0, left - label.count)) + label, x: 0, y: row, role: .label)
        grid[left, row] = Cell(unicode ? "┤" : "+", .axis)
      } else {
        grid[left, row] = Cell(unicode ? "│" : "|", .axis)
      }
    }
    grid[left, top + plotHeight] = Cell(unicode ? "└" : "+", .axis)
    for column in (left + 1)..<grid.width { grid[column, top + plotHeight] = Cell(unicode ? "─" : "-", .axis) }
  }
}

/// Draws a line through points given one at a time. Lines between points of one pixel column
/// are vertical, so each column's points come down to one segment from their lowest to their
/// highest pixel, joined to the neighbouring columns by its first and last point: the same dots
/// as a line through every point, drawn once a column however many steps a long run puts in it.
struct ColumnTracer {
  let role: ColorRole
  private var column: (x: Int, first: Int, low: Int, high: Int, last: Int)?
  private var previous: (x: Int, y: Int)?

  init(role: ColorRole) { self.role = role }

  mutating func add(_ p: (x: Int, y: Int), on canvas: inout BrailleCanvas) {
    if let c = column, c.x == p.x {
      column = (c.x, c.first, min(c.low, p.y), max(c.high, p.y), p.y)
    } else {
      flush(on: &canvas)
      column = (p.x, p.y, p.y, p.y, p.y)
    }
  }

  /// Ends the line here: the next point starts a new one (a gap in the data).
  mutating func breakLine(on canvas: inout BrailleCanvas) {
    flush(on: &canvas)
    previous = nil
  }

  private mutating func flush(on canvas: inout BrailleCanvas) {
    guard let c = column else { return }
    if let previous { canvas.line(from: previous, to: (c.x, c.first), role: role) }
    canvas.line(from: (c.x, c.low), to: (c.x, c.high), role: role)
    previous = (c.x, c.last)
    column = nil
  }
}

/// Where a value lands on the canvas: log10 of y on a log axis, then the nearest pixel.
struct PixelFrame {
  let logScale: Bool
  /// The chart's lowest x and highest plotted y (pixel 0, 0), and pixels per unit.
  let left, top, xScale, yScale: Double

  /// y as plotted: log10 on a log axis, where a value ≤ 0 is NaN (left out).
  @inline(__always)
  static func plotted(_ y: Double, logScale: Bool) -> Double { logScale ? (y > 0 ? log10(y) : .nan) : y }

  @inline(__always)
  func plotted(_ y: Double) -> Double { Self.plotted(y, logScale: logScale) }

  /// The nearest pixel column of x and row of a plotted y in the chart's range (both offsets
  /// are ≥ 0 there, so adding a half and truncating rounds, without a call to the C library).
  @inline(__always)
  func column(_ x: Double) -> Int { Int((x - left) * xScale + 0.5) }

  @inline(__always)
  func row(_ plottedY: Double) -> Int { Int((top - plottedY) * yScale + 0.5) }

  @inline(__always)
  func pixel(_ x: Double, _ plottedY: Double) -> (x: Int, y: Int) { (column(x), row(plottedY)) }
}

/// Draws one series: its raw line, and its smoothed line when smoothing, point by point or from
/// a history's summaries. A value with mutating methods, not closures over the chart's
/// variables: Swift checks a variable that a closure captures for exclusive access at run time
/// on every read (a third of a frame's time, measured with `specbench bench --frame`).
struct SeriesPainter {
  let frame: PixelFrame
  let smoothed: Bool
  var canvas: BrailleCanvas
  private var raw: ColumnTracer
  private var smooth: ColumnTracer
  private var running: Smoothing.Running

  init(frame: PixelFrame, index: Int, smoothed: Bool, smoothing: Double, faint: Bool = false, canvas: BrailleCanvas) {
    (self.frame, self.smoothed, self.canvas) = (frame, smoothed, canvas)
    raw = ColumnTracer(role: smoothed || faint ? .faint(index) : .series(index))
    smooth = ColumnTracer(role: faint ? .faint(index) : .series(index))
    running = Smoothing.Running(weight: smoothing)
  }

  /// One point. A value left out (not finite, or ≤ 0 on a log axis) breaks both lines; the
  /// smoothed line's average carries over the gap.
  mutating func point(_ x: Double, _ y: Double) {
    let y = frame.plotted(y)
    guard y.isFinite && x.isFinite else {
      raw.breakLine(on: &canvas)
      smooth.breakLine(on: &canvas)
      return
    }
    raw.add(frame.pixel(x, y), on: &canvas)
    if smoothed { smooth.add(frame.pixel(x, running.next(y)), on: &canvas) }
  }

  /// The column of whole blocks being gathered: its pixel column, its first value, the lowest
  /// and highest values of its blocks, and the index just past its last point.
  private typealias OpenColumn = (column: Int, first: Double, low: Float, high: Float, end: Int)

  /// A history (values times `scale`), from the summaries of `level` (0: every point). The
  /// blocks whose first points fall in one pixel column are gathered, and the column drawn once:
  /// its first point, lowest and highest values, and last point, so that a block costs one
  /// point and one summary read. The smoothed line goes through the blocks' means, as
  /// TensorBoard smooths the samples it shows. A block with a value left out, or whose first x
  /// is not finite, is drawn point by point.
  mutating func draw(_ source: any SummarizedPoints, scale: Double, level: Int) {
    let count = source.count
    guard level > 0 else {
      for index in 0..<count {
        let p = source.point(index)
        point(p.x, p.y * scale)
      }
      return
    }
    let size = SpanSummary.blockSize(level)
    var open: OpenColumn?
    for block in 0..<((count + size - 1) / size) {
      let (start, end) = (block * size, min(count, (block + 1) * size))
      let summary = source.summary(level: level, block: block)
      let first = source.firstPoint(level: level, block: block)
      guard summary.finite == end - start && (!frame.logScale || summary.positive == end - start) && first.x.isFinite else {
        close(open, source, scale: scale)
        open = nil
        for index in start..<end {
          let p = source.point(index)
          point(p.x, p.y * scale)
        }
        continue
      }
      let column = frame.column(first.x)
      if let gathered = open, gathered.column == column {
        open = (column, gathered.first, min(gathered.low, summary.low), max(gathered.high, summary.high), end)
      } else {
        close(open, source, scale: scale)
        open = (column, first.y, summary.low, summary.high, end)
      }
      if smoothed { smooth.add((column, frame.row(running.next(frame.plotted(summary.mean * scale)))), on: &canvas) }
    }
    close(open, source, scale: scale)
  }

  /// Draws a gathered column: from its first value, its lowest to its highest, ending at its
  /// last point's value, from which the line goes on to the next column. (The last point may lie
  /// in the next pixel column; drawn there, a spike in this column would carry a slope into it.)
  private mutating func close(_ open: OpenColumn?, _ source: any SummarizedPoints, scale: Double) {
    guard let open else { return }
    for value in [open.first, Double(open.low), Double(open.high), source.point(open.end - 1).y] {
      raw.add((open.column, frame.row(frame.plotted(value * scale))), on: &canvas)
    }
  }

  /// Ends both lines.
  mutating func finish() {
    raw.breakLine(on: &canvas)
    smooth.breakLine(on: &canvas)
  }
}
