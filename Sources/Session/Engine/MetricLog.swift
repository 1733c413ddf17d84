import SpecKit
import TermPlot

/// Recorded losses, kept in chunks of `chunkSize` points so that a front end may copy the log
/// (inside a snapshot, many times a second) without making the training worker copy it all
/// back: an append to a copied log copies the last chunk and the lists of chunks and top-level
/// summaries, never the points before them. Appending is O(log n) however long a run grows.
///
/// Beside the points, summaries of every block of 16, 256, 4096, … points (`SpanSummary`), kept
/// up to date as points are appended, so that a chart reads what its pixel columns need rather
/// than every point (`SummarizedPoints`). Blocks of 16 and 256 live in their chunk; blocks of
/// 4096 and more in one list per level.
public struct MetricLog: Sendable {
  /// Points per chunk: 16³, so that a chunk is exactly one block of level 3.
  public static let chunkSize = 4096

  private struct Chunk {
    var points: [MetricPoint] = []
    /// Levels 1 (blocks of 16) and 2 (blocks of 256) of this chunk's points.
    var sixteens: [SpanSummary] = []
    var blocks256: [SpanSummary] = []
    /// The chunk's first point again, beside the chunk rather than in its own allocation: a
    /// chart of a long history reads one for every block, and reading it from `points` missed
    /// the cache at every chunk (the most of a frame's time at 10 million steps).
    let first: MetricPoint

    init(first: MetricPoint) {
      self.first = first
      points.reserveCapacity(MetricLog.chunkSize)
    }
  }

  private var chunks: [Chunk] = []
  /// Levels 3 and up: `upper[l − 3][b]` summarises block b of level l.
  private var upper: [[SpanSummary]] = []
  /// How many points the log holds.
  public private(set) var count: Int = 0

  /// A log of `points`, in order.
  public init(_ points: [MetricPoint] = []) {
    for point in points { append(point) }
  }

  public mutating func append(_ point: MetricPoint) {
    let index = count
    let within = index & (Self.chunkSize - 1)
    if within == 0 { chunks.append(Chunk(first: point)) }
    let last = chunks.count - 1
    chunks[last].points.append(point)
    Self.add(point.value, to: &chunks[last].sixteens, block: within >> 4)
    Self.add(point.value, to: &chunks[last].blocks256, block: within >> 8)
    for level in upper.indices { Self.add(point.value, to: &upper[level], block: index >> (4 * (level + 3))) }
    count += 1
    // A new top level once the highest no longer covers every point in one block.
    while SpanSummary.blockSize(summaryLevels) < count {
      let below = summaryLevels
      var whole = SpanSummary()
      for block in 0..<((count + SpanSummary.blockSize(below) - 1) / SpanSummary.blockSize(below)) {
        whole.merge(summary(level: below, block: block))
      }
      var level = [whole]
      level.reserveCapacity(16)
      upper.append(level)
    }
  }

  private static func add(_ value: Float, to level: inout [SpanSummary], block: Int) {
    if block == level.count { level.append(SpanSummary()) }
    level[block].add(value)
  }

  public var last: MetricPoint? { chunks.last?.points.last }

  /// Every point, oldest first.
  public var points: [MetricPoint] { chunks.count == 1 ? chunks[0].points : Array(chunks.map(\.points).joined()) }

  /// What the log holds in memory: its points and summaries (the arrays' capacity, without
  /// their headers).
  public var bytes: Int {
    var total = upper.reduce(0) { $0 + $1.capacity * MemoryLayout<SpanSummary>.stride }
    for chunk in chunks {
      total += chunk.points.capacity * MemoryLayout<MetricPoint>.stride
      total += (chunk.sixteens.capacity + chunk.blocks256.capacity) * MemoryLayout<SpanSummary>.stride
    }
    return total + chunks.capacity * MemoryLayout<Chunk>.stride
  }
}

extension MetricLog: SummarizedPoints {
  public func point(_ index: Int) -> (x: Double, y: Double) {
    let point = chunks[index >> 12].points[index & (Self.chunkSize - 1)]
    return (Double(point.step), Double(point.value))
  }

  public func firstPoint(level: Int, block: Int) -> (x: Double, y: Double) {
    guard level >= 3 else { return point(block << (4 * level)) }
    let first = chunks[block << (4 * (level - 3))].first
    return (Double(first.step), Double(first.value))
  }

  public var summaryLevels: Int { count == 0 ? 0 : 2 + upper.count }

  public func summary(level: Int, block: Int) -> SpanSummary {
    switch level {
    case 1: chunks[block >> 8].sixteens[block & 255]
    case 2: chunks[block >> 4].blocks256[block & 15]
    default: upper[level - 3][block]
    }
  }
}
