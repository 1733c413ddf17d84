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
}
