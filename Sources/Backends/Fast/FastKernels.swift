import Dispatch
import TensorCore

/// Matrix products near the machine's limit: every product is computed as dot products of
/// contiguous rows (`a · bᵀ`), two rows of `a` by four rows of `b` at a time in `SIMD8<Float>`
/// accumulators, with the rows of `a` split over both cores when the product has a million
/// multiply-adds or more (below that, threads cost more than they give). The other two
/// products transpose one operand first, which costs under 1 % of the product for a dense layer.
///
/// Sums run in another order than the plain loops', so results agree with `reference` within
/// float rounding, not bit for bit.
public struct FastKernels: MatrixKernels {
  public init() {}

  public func matmulTransposedB(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        c.withUnsafeMutableBufferPointer { c in
          Self.dotProducts(a.baseAddress!, b.baseAddress!, c.baseAddress!, m: m, k: k, n: n)
        }
      }
    }
    return c
  }

  public func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    matmulTransposedB(a, Self.transpose(b, rows: k, columns: n), m: m, k: k, n: n)
  }

  public func matmulTransposedA(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    matmulTransposedB(Self.transpose(a, rows: m, columns: k), Self.transpose(b, rows: m, columns: n), m: k, k: m, n: n)
  }

  /// A `[rows, columns]` matrix transposed, in tiles of 32 for the cache.
  static func transpose(_ x: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { x in
      out.withUnsafeMutableBufferPointer { out in
        for r0 in stride(from: 0, to: rows, by: 32) {
          for c0 in stride(from: 0, to: columns, by: 32) {
            for r in r0..<min(r0 + 32, rows) {
              for c in c0..<min(c0 + 32, columns) { out[c * rows + r] = x[r * columns + c] }
            }
          }
        }
      }
    }
    return out
  }

  /// Raw pointers handed to the worker threads of one product.
  // @unchecked: the threads read a and b and write disjoint rows of c, and all finish before
  // `concurrentPerform` returns, while the arrays behind the pointers are alive.
  struct Pointers: @unchecked Sendable {
    let a: UnsafePointer<Float>
    let b: UnsafePointer<Float>
    let c: UnsafeMutablePointer<Float>
  }

  static func dotProducts(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, m: Int, k: Int, n: Int) {
    let parts = m * n * k >= 1 << 20 && m >= 4 ? 2 : 1
    guard parts > 1 else {
      rows(a, b, c, from: 0, to: m, k: k, n: n)
      return
    }
    let pointers = Pointers(a: a, b: b, c: c)
    DispatchQueue.concurrentPerform(iterations: parts) { part in
      // Even boundaries, so each part starts a pair of rows.
      let low = (m * part / parts) & ~1
      let high = part == parts - 1 ? m : (m * (part + 1) / parts) & ~1
      rows(pointers.a, pointers.b, pointers.c, from: low, to: high, k: k, n: n)
    }
  }

  @inline(__always)
  static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

  /// Rows `low..<high` of c: pairs of rows of a against groups of four rows of b.
  static func rows(
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, from low: Int, to high: Int, k: Int, n: Int
  ) {
    let k8 = k & ~7
    var i = low
    while i < high {
      let pair = i + 1 < high
      let a0 = a + i * k, a1 = a + (pair ? i + 1 : i) * k
      var j = 0
      while j < n {
        let count = min(4, n - j)
        let b0 = b + j * k, b1 = b + min(j + 1, n - 1) * k, b2 = b + min(j + 2, n - 1) * k, b3 = b + min(j + 3, n - 1) * k
        var s00 = SIMD8<Float>(), s01 = SIMD8<Float>(), s02 = SIMD8<Float>(), s03 = SIMD8<Float>()
        var s10 = SIMD8<Float>(), s11 = SIMD8<Float>(), s12 = SIMD8<Float>(), s13 = SIMD8<Float>()
        var p = 0
        while p < k8 {
          let x0 = load(a0 + p), x1 = load(a1 + p)
          let y0 = load(b0 + p), y1 = load(b1 + p), y2 = load(b2 + p), y3 = load(b3 + p)
          s00 += x0 * y0
          s01 += x0 * y1
          s02 += x0 * y2
          s03 += x0 * y3
          s10 += x1 * y0
          s11 += x1 * y1
          s12 += x1 * y2
          s13 += x1 * y3
          p += 8
        }
        var r0 = SIMD4<Float>(s00.sum(), s01.sum(), s02.sum(), s03.sum())
        var r1 = SIMD4<Float>(s10.sum(), s11.sum(), s12.sum(), s13.sum())
        while p < k {
          let y = SIMD4<Float>(b0[p], b1[p], b2[p], b3[p])
          r0 += a0[p] * y
          r1 += a1[p] * y
          p += 1
        }
        for q in 0..<count {
          c[i * n + j + q] = r0[q]
          if pair { c[(i + 1) * n + j + q] = r1[q] }
        }
        j += 4
      }
      i += 2
    }
  }
}
