import SpecKit

/// The tensor the core computes with: SpecKit's `StoredTensor` (one type, so a state's tensors
/// are used as they are), with the arithmetic's conveniences added here.
public typealias Tensor = StoredTensor

extension Tensor {
  public var count: Int { scalars.count }
  public var rank: Int { shape.count }

  /// Rows of a batch: the first axis.
  public var rows: Int { shape.first ?? 1 }
  /// Values per row: the product of all axes after the first.
  public var rowWidth: Int { rows == 0 ? 0 : count / rows }

  /// The same values under another shape of equal size.
  public func reshaped(_ newShape: [Int]) -> Tensor { Tensor(shape: newShape, scalars: scalars) }

  /// The rows at `indices`, in that order (a batch gathered from a dataset).
  public func gatherRows(_ indices: some Collection<Int>) -> Tensor {
    let width = rowWidth
    var out = [Float]()
    out.reserveCapacity(indices.count * width)
    for row in indices { out.append(contentsOf: scalars[row * width..<(row + 1) * width]) }
    return Tensor(shape: [indices.count] + shape.dropFirst(), scalars: out)
  }

  /// True when every value is finite.
  public var isFinite: Bool { scalars.withUnsafeBufferPointer(allFinite) }
}

/// Whether every value is finite: a branch-free pass over the exponent bits that the compiler
/// vectorizes (a key-path `allSatisfy(\.isFinite)` costs tens of nanoseconds a value).
@inlinable
package func allFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
  var bad: UInt32 = 0
  for value in values { bad |= (value.bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
  return bad == 0
}

/// Whether every value of an array is finite (see the buffer form).
public func allFinite(_ values: [Float]) -> Bool { values.withUnsafeBufferPointer(allFinite) }
