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
  /// The first point of block `block` of `level`: `point(block · 16^level)`, which a conformer
  /// may keep where it is cheaper to read (a chart reads one for every block it draws).
  func firstPoint(level: Int, block: Int) -> (x: Double, y: Double)
}

extension SummarizedPoints {
  public func firstPoint(level: Int, block: Int) -> (x: Double, y: Double) { point(block * SpanSummary.blockSize(level)) }
}
