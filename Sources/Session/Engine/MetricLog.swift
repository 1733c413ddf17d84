import SpecKit

/// Recorded losses, kept in chunks of at most `chunkSize` points so that a front end may copy the
/// log (inside a snapshot, many times a second) without making the training worker copy it all
/// back: an append to a copied log copies the last chunk and the list of chunks, never the
/// points before them. Appending is O(1) amortised however long a run grows.
public struct MetricLog: Sendable {
  /// Points per chunk appended to.
  public static let chunkSize = 4096

  private var chunks: [[MetricPoint]]
  /// How many points the log holds.
  public private(set) var count: Int

  /// A log of `points`, which become its first chunk without being copied.
  public init(_ points: [MetricPoint] = []) {
    chunks = points.isEmpty ? [] : [points]
    count = points.count
  }

  public mutating func append(_ point: MetricPoint) {
    if let last = chunks.indices.last, chunks[last].count < Self.chunkSize {
      chunks[last].append(point)
    } else {
      var chunk: [MetricPoint] = []
      chunk.reserveCapacity(Self.chunkSize)
      chunk.append(point)
      chunks.append(chunk)
    }
    count += 1
  }

  public var last: MetricPoint? { chunks.last?.last }

  /// The points in their chunks, oldest first: to read a long log without joining it.
  public var pointChunks: [[MetricPoint]] { chunks }

  /// Every point, oldest first (shared without copying when the log is one chunk).
  public var points: [MetricPoint] { chunks.count == 1 ? chunks[0] : Array(chunks.joined()) }
}
