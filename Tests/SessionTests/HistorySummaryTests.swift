import Foundation
import SpecKit
import Testing

@testable import Session
@testable import TermPlot

/// A recorded history's block summaries and the chart that reads them: the summaries are those
/// of the points they cover at every level, a short history is drawn exactly as point by point,
/// a long one from what its pixel columns need, so that a frame's reads do not grow with it.
@Suite("History summaries")
struct HistorySummaryTests {
  /// A wavy, noisy loss with a spike, and a zero (a gap on a log axis) every 30,001st point.
  static func value(_ i: Int) -> Float {
    if i % 30_001 == 30_000 { return 0 }
    if i == 777_777 { return 40 }
    return 2 + Float(sin(Double(i) / 5000)) + Float((i * 7919) % 101) / 200
  }

  static func log(_ count: Int) -> MetricLog {
    var log = MetricLog()
    for i in 0..<count { log.append(MetricPoint(step: i + 1, value: value(i))) }
    return log
  }

  @Test(arguments: [1, 16, 17, 255, 257, 4096, 4097, 70_000])
  func everySummaryIsThatOfItsPoints(count: Int) {
    let log = Self.log(count)
    #expect(log.count == count && log.points.count == count)
    #expect(SpanSummary.blockSize(log.summaryLevels) >= count && SpanSummary.blockSize(log.summaryLevels - 1) < max(count, 17))
    for level in 1...log.summaryLevels {
      let size = SpanSummary.blockSize(level)
      for block in 0..<((count + size - 1) / size) {
        var expected = SpanSummary()
        for i in (block * size)..<min(count, (block + 1) * size) { expected.add(Self.value(i)) }
        let found = log.summary(level: level, block: block)
        #expect(found.low == expected.low && found.high == expected.high && found.lowPositive == expected.lowPositive)
        #expect(found.finite == expected.finite && found.positive == expected.positive)
        #expect(abs(found.sum - expected.sum) <= 1e-9 * abs(expected.sum), "level \(level) block \(block)")
        // The first point kept beside each chunk is the block's first point.
        let (first, kept) = (log.point(block * size), log.firstPoint(level: level, block: block))
        #expect(first.x == kept.x && first.y == kept.y, "level \(level) block \(block)")
      }
    }
  }

  @Test func aCopyKeepsItsSummariesWhileTheOriginalGrows() {
    var log = Self.log(5000)
    let copy = log
    for i in 5000..<9000 { log.append(MetricPoint(step: i + 1, value: 100)) }
    #expect(copy.count == 5000 && copy.summary(level: copy.summaryLevels, block: 0).high < 40)
    #expect(log.summary(level: log.summaryLevels, block: 0).high == 100)
  }

  /// A chart of a history short enough to be drawn point by point is the chart of its points.
  @Test(arguments: [false, true])
  func aShortHistoryIsDrawnAsItsPoints(logScale: Bool) {
    let log = Self.log(3000)
    for smoothing in [0.0, 0.6] {
      let points = log.points.map { LineChart.Point(Double($0.step), Double($0.value) * 100) }
      let plain = LineChart(title: "loss", series: [.init(name: "train", points: points)], logScale: logScale, smoothing: smoothing)
      let summarized = LineChart(
        title: "loss", series: [.init(name: "train", summarized: log, scale: 100)], logScale: logScale, smoothing: smoothing)
      #expect(summarized.render(width: 80, height: 20) == plain.render(width: 80, height: 20))
    }
  }

  /// A long history drawn from its summaries: the same axes, the spike at its place, and its
  /// line within a cell of the point-by-point drawing in each column.
  @Test func aLongHistoryIsDrawnFromItsSummaries() {
    let log = Self.log(1_000_000)
    let points = log.points.map { LineChart.Point(Double($0.step), Double($0.value)) }
    let (width, height) = (100, 24)
    let plain = LineChart(title: "loss", series: [.init(name: "train", points: points)]).render(width: width, height: height)
    let summarized = LineChart(title: "loss", series: [.init(name: "train", summarized: log)]).render(width: width, height: height)
    func text(_ grid: Grid, row: Int) -> String { String((0..<width).map { grid[$0, row].character }) }
    // Axis labels and frame: the left column of labels and the x axis rows.
    for row in 0..<height {
      #expect(text(summarized, row: row).prefix(6) == text(plain, row: row).prefix(6), "row \(row)")
    }
    #expect(text(summarized, row: height - 1) == text(plain, row: height - 1))
    // In each column, the rows the line covers agree to within one cell at either end.
    func covered(_ grid: Grid, column: Int) -> ClosedRange<Int>? {
      let rows = (1..<(height - 2)).filter { row in
        let c = grid[column, row].character
        return c != " " && c.unicodeScalars.first!.value >= 0x2800 && c.unicodeScalars.first!.value <= 0x28FF
      }
      return rows.isEmpty ? nil : rows.min()!...rows.max()!
    }
    var compared = 0
    for column in 8..<width {
      guard let a = covered(plain, column: column), let b = covered(summarized, column: column) else {
        #expect(covered(plain, column: column) == nil && covered(summarized, column: column) == nil, "column \(column)")
        continue
      }
      #expect(abs(a.lowerBound - b.lowerBound) <= 1 && abs(a.upperBound - b.upperBound) <= 1, "column \(column): \(a) vs \(b)")
      compared += 1
    }
    #expect(compared > width / 2)
  }

  /// A history whose x is not finite somewhere (another program's points, not a step count):
  /// the block that starts there is drawn point by point, where the bad point breaks the line,
  /// rather than turned into a pixel column (which would trap).
  @Test func aBlockStartingAtANonFiniteXIsDrawnPointByPoint() {
    struct Gapped: SummarizedPoints {
      let log: MetricLog
      var count: Int { log.count }
      var summaryLevels: Int { log.summaryLevels }
      func point(_ index: Int) -> (x: Double, y: Double) { index % 4096 == 0 && index > 0 ? (.nan, 1) : log.point(index) }
      func summary(level: Int, block: Int) -> SpanSummary { log.summary(level: level, block: block) }
    }
    let source = Gapped(log: Self.log(300_000))
    for logScale in [false, true] {
      let grid = LineChart(title: "loss", series: [.init(name: "train", summarized: source)], logScale: logScale).render(
        width: 100, height: 24)
      let dots = (0..<100).flatMap { x in (1..<21).map { grid[x, $0].character } }.filter { ("\u{2801}"..."\u{28FF}").contains($0) }
      #expect(dots.count > 100, "log \(logScale)")
    }
  }

  /// What a chart reads of a history, counted: about the same at a million points as at a
  /// hundred thousand, and a few dozen reads a pixel column, not a read a point.
  @Test func aChartReadsWhatItsColumnsNeedHoweverLongTheHistory() {
    final class Counting: SummarizedPoints, @unchecked Sendable {
      let log: MetricLog
      var reads = 0
      init(_ log: MetricLog) { self.log = log }
      var count: Int { log.count }
      var summaryLevels: Int { log.summaryLevels }
      func point(_ index: Int) -> (x: Double, y: Double) {
        reads += 1
        return log.point(index)
      }
      func summary(level: Int, block: Int) -> SpanSummary {
        reads += 1
        return log.summary(level: level, block: block)
      }
    }
    for logScale in [false, true] {
      var reads: [Int: Int] = [:]
      for count in [100_000, 1_000_000] {
        let source = Counting(Self.log(count))
        _ = LineChart(title: "loss", series: [.init(name: "train", summarized: source)], logScale: logScale, smoothing: 0.6)
          .render(width: 160, height: 24)
        reads[count] = source.reads
      }
      // About 300 pixel columns, 8 to 128 blocks each at 5 reads a block; on the log axis, the
      // blocks around each zero are read down to their points.
      #expect(reads[1_000_000]! < 2 * reads[100_000]!, "log \(logScale): \(reads)")
      #expect(reads[1_000_000]! < 300 * 128 * 5, "log \(logScale): \(reads)")
    }
  }
}
