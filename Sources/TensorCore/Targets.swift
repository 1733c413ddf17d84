/// What a batch is compared against: class indices, or real values of the output's shape.
public enum Targets: Hashable, Sendable {
  /// One class index per sample.
  case classes([Int])
  /// One row of values per sample (`[batch, width]`).
  case values(Tensor)

  /// Number of samples.
  public var count: Int {
    switch self {
    case .classes(let labels): labels.count
    case .values(let values): values.rows
    }
  }

  /// The targets of the samples at `indices`, in that order.
  public func gather(_ indices: some Collection<Int>) -> Targets {
    switch self {
    case .classes(let labels): .classes(indices.map { labels[$0] })
    case .values(let values): .values(values.gatherRows(indices))
    }
  }

  /// Class targets as values the output's width can be compared with: one-hot rows for a
  /// width above 1, the index itself (0 or 1) for width 1; value targets unchanged.
  public func asValues(width: Int) -> Tensor {
    switch self {
    case .values(let values): return values
    case .classes(let labels):
      if width == 1 { return Tensor(shape: [labels.count, 1], scalars: labels.map(Float.init)) }
      var out = [Float](repeating: 0, count: labels.count * width)
      for (i, label) in labels.enumerated() { out[i * width + label] = 1 }
      return Tensor(shape: [labels.count, width], scalars: out)
    }
  }
}
