/// A named float32 tensor as stored in a session's state: a shape and its values in row-major
/// order. The tensor core converts to and from it; SpecKit only stores and checks it.
public struct StoredTensor: Hashable, Sendable {
  public var shape: [Int]
  public var scalars: [Float]

  /// A tensor of `shape` holding `scalars` (whose count must be the product of `shape`).
  public init(shape: [Int], scalars: [Float]) {
    precondition(shape.reduce(1, *) == scalars.count, "\(scalars.count) values do not fill shape \(shape)")
    self.shape = shape
    self.scalars = scalars
  }

  /// A tensor of `shape` filled with `value`.
  public init(shape: [Int], repeating value: Float) {
    self.init(shape: shape, scalars: Array(repeating: value, count: shape.reduce(1, *)))
  }
}
