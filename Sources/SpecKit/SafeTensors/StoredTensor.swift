/// A float32 tensor: a shape and its values in row-major order, with value semantics — the one
/// tensor type of SpecBench. SpecKit stores and checks it (a session's state is a dictionary of
/// them); TensorCore computes with it under the name `Tensor`, and adds the arithmetic.
///
/// The first axis is the batch wherever a tensor holds a batch (`[batch, features…]`).
public struct StoredTensor: Hashable, Sendable, CustomStringConvertible {
  public var shape: [Int]
  public var scalars: [Float]
  /// For an exact count stored as `I64` (L-BFGS's `n_iter`, `func_evals`): its values, with
  /// `scalars` holding them rounded to float32 for anything that only looks. Nil for `F32`.
  public private(set) var integers: [Int64]?

  /// A tensor of `shape` holding `scalars` (whose count must be the product of `shape`).
  public init(shape: [Int], scalars: [Float]) {
    precondition(shape.reduce(1, *) == scalars.count, "\(scalars.count) values do not fill shape \(shape)")
    self.shape = shape
    self.scalars = scalars
  }

  /// An `I64` tensor of `shape` holding `integers`.
  public init(shape: [Int], integers: [Int64]) {
    self.init(shape: shape, scalars: integers.map { Float($0) })
    self.integers = integers
  }

  /// The one value of an `I64` tensor of shape `[]`.
  public var integerValue: Int64? { integers?.count == 1 ? integers![0] : nil }

  /// A tensor of `shape` filled with `value`.
  public init(shape: [Int], repeating value: Float = 0) {
    self.init(shape: shape, scalars: Array(repeating: value, count: shape.reduce(1, *)))
  }

  public var description: String { "Tensor(\(shape), \(scalars.prefix(8))\(scalars.count > 8 ? "…" : ""))" }
}

/// An `I64` tensor of a safetensors file (the steps of a metrics file).
public struct StoredIntegers: Hashable, Sendable {
  public var shape: [Int]
  public var values: [Int64]

  /// A tensor of `shape` holding `values` (whose count must be the product of `shape`).
  public init(shape: [Int], values: [Int64]) {
    precondition(shape.reduce(1, *) == values.count, "\(values.count) values do not fill shape \(shape)")
    (self.shape, self.values) = (shape, values)
  }
}
