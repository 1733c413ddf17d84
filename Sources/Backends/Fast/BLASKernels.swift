import COpenBLAS
import TensorCore

/// The three products of a dense layer through OpenBLAS's `cblas_sgemm`: row-major, with the
/// transposes given as flags rather than made, blocked and vectorised for the CPU it runs on
/// (AVX2/AVX-512 chosen at run time), and threaded by OpenBLAS itself for large products only.
public struct BLASKernels: MatrixKernels {
  public init() {}

  public func matmulTransposedB(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    Self.gemm(a, transposeA: false, b, transposeB: true, into: &c, m: m, n: n, k: k, accumulate: false)
    return c
  }

  public func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    Self.gemm(a, transposeA: false, b, transposeB: false, into: &c, m: m, n: n, k: k, accumulate: false)
    return c
  }

  public func matmulTransposedA(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: k * n)
    Self.gemm(a, transposeA: true, b, transposeB: false, into: &c, m: k, n: n, k: m, accumulate: false)
    return c
  }

  /// `c = op(a)·op(b)` (or `c += …` with `accumulate`), c `[m, n]`, the shared axis `k`; `op`
  /// transposes when asked. Leading dimensions are the row widths of the stored matrices.
  static func gemm(
    _ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool, into c: UnsafeMutablePointer<Float>,
    m: Int, n: Int, k: Int, accumulate: Bool
  ) {
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
      if !accumulate { c.update(repeating: 0, count: m * n) }
      return
    }
    cblas_sgemm(
      CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
      a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n), accumulate ? 1 : 0, c, Int32(n))
  }

  static func gemm(
    _ a: [Float], transposeA: Bool, _ b: [Float], transposeB: Bool, into c: inout [Float], m: Int, n: Int, k: Int, accumulate: Bool
  ) {
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        c.withUnsafeMutableBufferPointer { c in
          gemm(
            a.baseAddress!, transposeA: transposeA, b.baseAddress!, transposeB: transposeB, into: c.baseAddress!, m: m, n: n, k: k,
            accumulate: accumulate)
        }
      }
    }
  }
}
