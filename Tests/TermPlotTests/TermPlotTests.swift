import Foundation
import SpecBenchTestSupport
import Testing

@testable import TermPlot

/// Compares rendered text with `Golden/NAME.txt`; `SPECBENCH_RECORD_GOLDEN=1` re-records.
func expectGolden(_ text: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
  #expect(
    try matchesGolden(text, "Tests/TermPlotTests/Golden/\(name).txt"),
    "\(name) differs from its golden file; re-record with SPECBENCH_RECORD_GOLDEN=1 if intended", sourceLocation: sourceLocation)
}

/// A loss-like curve: falling, with a wobble, from step 1 to `n`.
func lossCurve(_ n: Int, scale: Double = 1, phase: Double = 0) -> [LineChart.Point] {
  (1...n).map { t in LineChart.Point(Double(t), scale * (2.0 / (1 + Double(t) / 40) + 0.08 * sin(Double(t) / 3 + phase))) }
}

@Suite("TermPlot")
struct TermPlotTests {
  /// Each of the eight dots alone: left column rows 0–3 are 0x01 0x02 0x04 0x40, right column
  /// 0x08 0x10 0x20 0x80.
  @Test(arguments: [
    (0, 0, 0x01), (0, 1, 0x02), (0, 2, 0x04), (0, 3, 0x40), (1, 0, 0x08), (1, 1, 0x10), (1, 2, 0x20), (1, 3, 0x80),
  ])
  func eachBrailleDotHasItsBit(x: Int, y: Int, bit: UInt32) {
    var canvas = BrailleCanvas(width: 1, height: 1)
    canvas.set(x: x, y: y, role: .series(0))
    #expect(canvas.grid()[0, 0].character == Character(Unicode.Scalar(0x2800 + bit)!))
  }

  @Test func brailleBitsFollowTheUnicodeLayout() {
    var canvas = BrailleCanvas(width: 1, height: 1)
    for (x, y) in [(0, 0), (0, 3), (1, 0), (1, 3)] { canvas.set(x: x, y: y, role: .series(0)) }
    // 0x01 | 0x40 | 0x08 | 0x80 = 0xC9
    #expect(canvas.grid()[0, 0].character == "\u{28C9}")
    var full = BrailleCanvas(width: 1, height: 1)
    for x in 0..<2 { for y in 0..<4 { full.set(x: x, y: y, role: .series(0)) } }
    #expect(full.grid()[0, 0].character == "⣿")
    #expect(full.grid(charset: .ascii)[0, 0].character == "*")
  }

  @Test func whereSeriesCrossTheLastDrawnWinsAndFaintNeverOverrides() {
    var canvas = BrailleCanvas(width: 1, height: 1)
    canvas.set(x: 0, y: 0, role: .series(0))
    canvas.set(x: 1, y: 1, role: .series(1))
    #expect(canvas.grid()[0, 0].role == .series(1))
    canvas.set(x: 1, y: 2, role: .faint(0))
    #expect(canvas.grid()[0, 0].role == .series(1))
  }

  @Test func linesReachBothEnds() {
    var canvas = BrailleCanvas(width: 5, height: 2)
    canvas.line(from: (0, 7), to: (9, 0), role: .series(0))
    #expect(canvas.isMarked(column: 0, row: 1) && canvas.isMarked(column: 4, row: 0))
  }

  @Test func niceTicks() {
    #expect(Ticks.nice(low: 0, high: 1, count: 5) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
    #expect(Ticks.nice(low: 3, high: 2017, count: 4) == [1000, 2000])  // about 4: a step of 1000 is the nice one
    #expect(Ticks.nice(low: -0.03, high: 0.07, count: 2) == [0, 0.05])
    #expect(Ticks.label(0.25) == "0.25" && Ticks.label(1200) == "1200" && Ticks.label(1.5e-5) == "1.5e-05" && Ticks.label(3e6) == "3e+06")
  }

  @Test func tensorBoardSmoothing() {
    // Debiased: the first value is kept; later ones lean on the past.
    let out = Smoothing.tensorBoard([1, 2, .nan, 3], weight: 0.5)
    #expect(out[0] == 1)
    #expect(abs(out[1] - (0.5 * 0.5 * 1 + 0.5 * 2) / 0.75) < 1e-12)
    #expect(out[2].isNaN)
    let last = 0.5 * (0.5 * 0.5 * 1 + 0.5 * 2) + 0.5 * 3
    #expect(abs(out[3] - last / 0.875) < 1e-12)
    #expect(Smoothing.tensorBoard([4, 4, 4], weight: 0.9) == [4, 4, 4])
    #expect(Smoothing.tensorBoard([1, 5], weight: 0) == [1, 5])
  }

  /// The running average leaves out the division once 1 − sⁿ is exactly 1: the same bits as
  /// the formula written out, over long runs, for weights near 0 and 1.
  @Test(arguments: [0.0, 0.3, 0.6, 0.9, 0.999])
  func theRunningAverageGivesTheBitsOfTheFormula(weight: Double) {
    var running = Smoothing.Running(weight: weight)
    var (last, decay) = (0.0, 1.0)
    for i in 0..<20_000 {
      let y = sin(Double(i) / 37) * 3 + Double(i % 11)
      last = weight * last + (1 - weight) * y
      decay *= weight
      let expected = last / (1 - decay)
      let found = running.next(y)
      guard found == expected else {
        Issue.record("weight \(weight), value \(i): \(found) vs \(expected)")
        return
      }
    }
  }

  @Test func sparklines() {
    #expect(Sparkline.render([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█")
    #expect(Sparkline.render([3, .nan, 3]) == "▄ ▄")
    #expect(Sparkline.render([1, 2, 3, 4], width: 2) == "▁█")
    #expect(Sparkline.render([0, 7], charset: .ascii) == "_@")
  }

  @Test func histogramBins() {
    let (edges, counts) = Histogram.bins([0, 0.1, 0.5, 0.9, 1, .nan], count: 2)
    #expect(edges == [0, 0.5] && counts == [2, 3])
    #expect(Histogram.bins([2, 2], count: 4).counts == [2])
  }

  @Test func ansiTextColoursByRoleAndResetsEveryLine() {
    var grid = Grid(width: 6, height: 2)
    grid.write("ab", x: 0, y: 0, role: .series(0))
    grid.write("c", x: 3, y: 0, role: .axis)
    grid.write("d", x: 0, y: 1, role: .faint(1))
    #expect(grid.ansiText() == "\u{1B}[0;36mab\u{1B}[0m \u{1B}[0;90mc\u{1B}[0m\n\u{1B}[0;2;33md\u{1B}[0m")
    #expect(grid.plainText == "ab c\nd")
    // A blank row is an empty line, in colour as in plain text (it trapped once).
    var gap = Grid(width: 4, height: 3)
    gap.write("x", x: 0, y: 0, role: .title)
    gap.write("y", x: 1, y: 2, role: .label)
    #expect(gap.ansiText() == "\u{1B}[0;1mx\u{1B}[0m\n\n\u{1B}[0m \u{1B}[0;37my\u{1B}[0m")
    #expect(Grid(width: 0, height: 2).ansiText() == "\n")
  }

  // MARK: golden frames

  @Test(arguments: [(60, 14), (40, 8), (20, 6)])
  func lossChartAtSeveralSizes(width: Int, height: Int) throws {
    let chart = LineChart(title: "loss", series: [.init(name: "train", points: lossCurve(300))])
    try expectGolden(chart.render(width: width, height: height).plainText, "loss-\(width)x\(height)")
  }

  @Test func twoSeriesSmoothedWithMarkers() throws {
    let val = stride(from: 25, through: 300, by: 25).map { LineChart.Point(Double($0), 2.4 / (1 + Double($0) / 50) + 0.1) }
    let chart = LineChart(
      title: "loss", series: [.init(name: "train", points: lossCurve(300)), .init(name: "val", points: val)],
      markers: [120, 210], smoothing: 0.8)
    let grid = chart.render(width: 72, height: 16)
    try expectGolden(grid.plainText, "loss-smoothed-markers")
    #expect(grid.cells.contains { $0.role == .faint(0) } && grid.cells.contains { $0.role == .marker })
    try expectGolden(grid.ansiText(), "loss-smoothed-markers-ansi")
  }

  @Test func logScaleOverDecades() throws {
    let points = (1...200).map { LineChart.Point(Double($0), 10 * pow(0.96, Double($0))) }
    try expectGolden(
      LineChart(title: "loss (log)", series: [.init(name: "train", points: points)], logScale: true).render(width: 50, height: 12)
        .plainText, "loss-log")
  }

  @Test func edgeCases() throws {
    let constant = LineChart(title: "flat", series: [.init(name: "lr", points: (1...50).map { LineChart.Point(Double($0), 0.01) })])
    try expectGolden(constant.render(width: 40, height: 8).plainText, "flat")
    let empty = LineChart(title: "loss", series: [.init(name: "train", points: [])])
    try expectGolden(empty.render(width: 30, height: 7).plainText, "empty")
    let gaps = LineChart(
      title: "gaps", series: [.init(name: "train", points: [.init(1, 1), .init(2, .nan), .init(3, 3), .init(4, .infinity), .init(5, 2)])])
    try expectGolden(gaps.render(width: 30, height: 7).plainText, "gaps")
    let ascii = LineChart(title: "loss", series: [.init(name: "train", points: lossCurve(100))], charset: .ascii)
    try expectGolden(ascii.render(width: 40, height: 8).plainText, "loss-ascii")
    #expect(LineChart(title: "t", series: []).render(width: 12, height: 4).plainText.trimmingCharacters(in: .newlines) == "needs 20×6")
    #expect(
      LineChart(title: "t", series: []).render(width: 30, height: 4).plainText.trimmingCharacters(in: .newlines)
        == "plot needs 20×6, has 30×4")
    #expect(LineChart(title: "t", series: []).render(width: 4, height: 1).plainText.trimmingCharacters(in: .newlines) == "20×6")
  }

  @Test func histogramFrames() throws {
    var g = 0.0
    let values = (0..<400).map { i -> Double in
      g = sin(Double(i) * 12.9898) * 43758.5453
      return (g - g.rounded(.down)) + (Double(i % 7) - 3) / 7
    }
    try expectGolden(Histogram.render(values, title: "dense1.weight", width: 50, height: 10).plainText, "histogram")
    try expectGolden(Histogram.render(values + [.nan], title: "w", width: 30, height: 5, charset: .ascii).plainText, "histogram-ascii")
    #expect(Histogram.render(values, title: "w", width: 12, height: 2).plainText.trimmingCharacters(in: .newlines) == "needs 20×3")
  }

  @Test func tables() throws {
    let grid = Table.render(
      header: ["layer", "output", "params"], rows: [["dense1", "[64]", "192"], ["dense2", "[64]", "4,160"], ["dense3", "[3]", "195"]],
      alignments: [.left, .left, .right])
    try expectGolden(grid.plainText, "table")
  }
}
