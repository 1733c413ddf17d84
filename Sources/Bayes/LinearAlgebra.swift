import CFastKernels
import Foundation
import TensorCore

/// A symmetric matrix's eigenvalues (ascending) and eigenvectors (row k of `vectors` is the
/// eigenvector of `values[k]`), in double precision.
public struct SymmetricEigen: Sendable {
  public var values: [Double]
  /// `n × n`, row-major: row k is the k-th eigenvector.
  public var vectors: [Double]
  public var n: Int { values.count }

  /// Decomposes the symmetric `n × n` matrix `a` (row-major): with OpenBLAS's LAPACK when it
  /// loads, otherwise with the cyclic Jacobi method.
  public init(_ a: [Double], n: Int) {
    var matrix = a
    var values = [Double](repeating: 0, count: n)
    let status = matrix.withUnsafeMutableBufferPointer { m in
      values.withUnsafeMutableBufferPointer { w in specbench_dsyevd(Int32(n), m.baseAddress, w.baseAddress) }
    }
    if status == 0 {
      (self.values, vectors) = (values, matrix)
    } else {
      self = Self.jacobi(a, n: n)
    }
  }

  init(values: [Double], vectors: [Double]) { (self.values, self.vectors) = (values, vectors) }

  /// The cyclic Jacobi method: rotations until every off-diagonal element is negligible
  /// against the diagonal (relative 1e-15, at most 100 sweeps). O(n³) a sweep.
  public static func jacobi(_ a: [Double], n: Int) -> SymmetricEigen {
    var m = a
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    for _ in 0..<100 {
      var off = 0.0, diagonal = 0.0
      for i in 0..<n {
        diagonal += m[i * n + i] * m[i * n + i]
        for j in (i + 1)..<max(n, i + 1) { off += m[i * n + j] * m[i * n + j] }
      }
      if off <= 1e-30 * max(diagonal, 1e-300) { break }
      for p in 0..<n {
        for q in (p + 1)..<max(n, p + 1) where m[p * n + q] != 0 {
          let (app, aqq, apq) = (m[p * n + p], m[q * n + q], m[p * n + q])
          let theta = (aqq - app) / (2 * apq)
          let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
          let c = 1 / (t * t + 1).squareRoot(), s = t * c
          for k in 0..<n {
            let (mkp, mkq) = (m[k * n + p], m[k * n + q])
            m[k * n + p] = c * mkp - s * mkq
            m[k * n + q] = s * mkp + c * mkq
          }
          for k in 0..<n {
            let (mpk, mqk) = (m[p * n + k], m[q * n + k])
            m[p * n + k] = c * mpk - s * mqk
            m[q * n + k] = s * mpk + c * mqk
          }
          // Rows of v are eigenvectors: rotate rows p and q.
          for k in 0..<n {
            let (vp, vq) = (v[p * n + k], v[q * n + k])
            v[p * n + k] = c * vp - s * vq
            v[q * n + k] = s * vp + c * vq
          }
        }
      }
    }
    let order = (0..<n).sorted { m[$0 * n + $0] < m[$1 * n + $1] }
    return SymmetricEigen(values: order.map { m[$0 * n + $0] }, vectors: order.flatMap { Array(v[$0 * n..<($0 + 1) * n]) })
  }

  /// Coordinates of `x` in the eigenbasis: `Vᵀx` with V's columns the eigenvectors (row k · x).
  func project(_ x: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>) {
    for k in 0..<n {
      var s = 0.0
      let row = k * n
      for i in 0..<n { s += vectors[row + i] * x[i] }
      out[k] = s
    }
  }
}

/// Sums of outer products `Σ xxᵀ` over the rows of float32 matrices, accumulated in double
/// precision chunk by chunk (each chunk's product by sgemm when OpenBLAS loads).
struct GramAccumulator {
  let width: Int
  private(set) var sum: [Double]

  init(width: Int) {
    self.width = width
    sum = Array(repeating: 0, count: width * width)
  }

  /// Adds `Σ rᵣrᵣᵀ` over the `rows` rows of `matrix` (`[rows, width]`, row-major).
  mutating func add(_ matrix: [Float], rows: Int) {
    guard rows > 0, width > 0 else { return }
    let product: [Float]
    if specbench_blas_load() == 1 {
      var c = [Float](repeating: 0, count: width * width)
      matrix.withUnsafeBufferPointer { a in
        c.withUnsafeMutableBufferPointer { c in
          specbench_sgemm(
            1, 0, Int32(width), Int32(width), Int32(rows), a.baseAddress, Int32(width), a.baseAddress, Int32(width), 0, c.baseAddress,
            Int32(width))
        }
      }
      product = c
    } else {
      product = PlainKernels().matmulTransposedA(matrix, matrix, m: rows, k: width, n: width)
    }
    for i in 0..<product.count { sum[i] += Double(product[i]) }
  }

  /// The sum, symmetrised (the two triangles' average).
  var symmetric: [Double] { LaplacePosterior.symmetrised(sum, n: width) }
}
