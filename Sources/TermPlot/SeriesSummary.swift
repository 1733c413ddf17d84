/// What a chart needs to know of a run of consecutive points without reading them: the lowest
/// and highest finite values (and lowest positive, for a log axis), their sum, and how many are
/// finite and positive. A long history keeps one for every 16 points, one for every 256, and so
/// on up (`SummarizedPoints`), built as points are appended, so that a chart of ten million steps
/// reads about as much as a chart of ten thousand.
public struct SpanSummary: Hashable, Sendable {
  public var low: Float = .infinity
  public var high: Float = -.infinity
  public var lowPositive: Float = .infinity
  public var sum: Double = 0
  public var finite = 0
  public var positive = 0

  public init() {}

  /// Points a block of `level` covers: 16 to the power `level`.
  @inline(__always)
  public static func blockSize(_ level: Int) -> Int { 1 << (4 * level) }

  public mutating func add(_ value: Float) {
    guard value.isFinite else { return }
    (low, high, sum, finite) = (min(low, value), max(high, value), sum + Double(value), finite + 1)
    if value > 0 { (lowPositive, positive) = (min(lowPositive, value), positive + 1) }
  }

  public mutating func merge(_ other: SpanSummary) {
    (low, high, lowPositive) = (min(low, other.low), max(high, other.high), min(lowPositive, other.lowPositive))
    (sum, finite, positive) = (sum + other.sum, finite + other.finite, positive + other.positive)
  }

  /// The mean of the finite values (NaN when there are none).
  public var mean: Double { sum / Double(finite) }
}

/// A series of points in order of x with summaries of its blocks: block `b` of level `l ≥ 1`
/// covers points `b·16ˡ ..< min((b + 1)·16ˡ, count)`; level 0 is the points themselves.
public protocol SummarizedPoints: Sendable {
  var count: Int { get }
  /// Point `index` (0 ..< count).
  func point(_ index: Int) -> (x: Double, y: Double)
  /// The highest level with summaries: 0 for none, otherwise one whose single block covers
  /// every point.
  var summaryLevels: Int { get }
  func summary(level: Int, block: Int) -> SpanSummary
  /// Calls `body` with each block of `level` (≥ 1) in `blocks`, in order: its index, first and
  /// last points and summary.
  func forEachBlock(
    level: Int, in blocks: Range<Int>,
    _ body: (_ block: Int, _ first: (x: Double, y: Double), _ last: (x: Double, y: Double), SpanSummary) -> Void)
}

extension SummarizedPoints {
  public func forEachBlock(
    level: Int, in blocks: Range<Int>,
    _ body: (_ block: Int, _ first: (x: Double, y: Double), _ last: (x: Double, y: Double), SpanSummary) -> Void
  ) {
    let size = SpanSummary.blockSize(level)
    for block in blocks {
      body(block, point(block * size), point(min(count, (block + 1) * size) - 1), summary(level: level, block: block))
    }
  }
}
