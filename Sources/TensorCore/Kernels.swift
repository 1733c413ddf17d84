/// The plain kernels every layer is built from: written as straightforward loops, to be read and
/// trusted (the `reference` backend's arithmetic). Row-major; no allocation beyond the result.
public enum Kernels {
  /// `a · bᵀ`: a is `[m, k]`, b is `[n, k]`, the result `[m, n]` (a dense layer's forward pass
  /// with PyTorch's `[out, in]` weight).
  public static func matmulTransposedB(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    product(a, b, count: m * n) { a, b, c in
      for i in 0..<m {
        for j in 0..<n {
          var sum: Float = 0
          for p in 0..<k { sum += a[i * k + p] * b[j * k + p] }
          c[i * n + j] = sum
        }
      }
    }
  }

  /// `a · b`: a is `[m, k]`, b is `[k, n]`, the result `[m, n]` (the input gradient
  /// `dY · W`).
  public static func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    product(a, b, count: m * n) { a, b, c in
      for i in 0..<m {
        for p in 0..<k {
          let x = a[i * k + p]
          for j in 0..<n { c[i * n + j] += x * b[p * n + j] }
        }
      }
    }
  }

  /// `aᵀ · b`: a is `[m, k]`, b is `[m, n]`, the result `[k, n]` (the weight gradient
  /// `dYᵀ · X`).
  public static func matmulTransposedA(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    product(a, b, count: k * n) { a, b, c in
      for i in 0..<m {
        for p in 0..<k {
          let x = a[i * k + p]
          for j in 0..<n { c[p * n + j] += x * b[i * n + j] }
        }
      }
    }
  }

  /// A zeroed result of `count` values, filled by `body` from raw views of the two operands
  /// (so the loops above run without bounds checks or copy-on-write checks).
  private static func product(
    _ a: [Float], _ b: [Float], count: Int,
    _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void
  ) -> [Float] {
    var c = [Float](repeating: 0, count: count)
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        c.withUnsafeMutableBufferPointer { c in body(a, b, c) }
      }
    }
    return c
  }

  /// Sums a `[rows, width]` matrix over its rows: the result has `width` values (a bias gradient).
  public static func sumRows(_ a: [Float], rows: Int, width: Int) -> [Float] {
    var out = [Float](repeating: 0, count: width)
    for i in 0..<rows {
      for j in 0..<width { out[j] += a[i * width + j] }
    }
    return out
  }

  /// Adds `bias` to every row of a `[rows, width]` matrix in place.
  public static func addRowVector(_ a: inout [Float], _ bias: [Float], rows: Int, width: Int) {
    for i in 0..<rows {
      for j in 0..<width { a[i * width + j] += bias[j] }
    }
  }
}

/// The three matrix products a dense layer needs, so that backends can bring faster ones while
/// the layers' arithmetic stays in one place (`LayerMath`).
public protocol MatrixKernels: Sendable {
  /// `a · bᵀ`: a `[m, k]`, b `[n, k]` → `[m, n]`.
  func matmulTransposedB(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float]
  /// `a · b`: a `[m, k]`, b `[k, n]` → `[m, n]`.
  func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float]
  /// `aᵀ · b`: a `[m, k]`, b `[m, n]` → `[k, n]`.
  func matmulTransposedA(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float]
}

/// The plain loops of `Kernels`: the reference backend's arithmetic.
public struct PlainKernels: MatrixKernels {
  public init() {}
  public func matmulTransposedB(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    Kernels.matmulTransposedB(a, b, m: m, k: k, n: n)
  }
  public func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] { Kernels.matmul(a, b, m: m, k: k, n: n) }
  public func matmulTransposedA(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    Kernels.matmulTransposedA(a, b, m: m, k: k, n: n)
  }
}
