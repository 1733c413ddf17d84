import CFastKernels
import Foundation
import SpecKit
import Testing

@testable import Backends

/// The small-product kernels (`CFastKernels/small_gemm.h`) in every instruction set this CPU
/// has, against the product summed in double precision and against OpenBLAS's sgemm: all four
/// transpose combinations, shapes that leave partial vectors and partial row blocks, a side of
/// one, wider leading dimensions than the operands need, and accumulation into what C holds.
@Suite("Small matrix products of the fast backend")
struct SmallProductTests {
  /// (m, n, k): awkward sizes, the spirals preset's products, one that takes the transposed-b
  /// path (m ≥ 32, n ≥ 16), and empty ones.
  static let shapes: [(Int, Int, Int)] = [
    (1, 1, 1), (7, 3, 5), (6, 16, 17), (13, 33, 9), (5, 1, 19), (19, 5, 1), (64, 64, 2), (64, 3, 64), (3, 64, 64), (64, 2, 64),
    (64, 64, 64), (33, 70, 40), (40, 24, 130), (0, 4, 3), (4, 0, 3), (4, 3, 0),
  ]
  static let instructionSets = ["avx512f", "avx2", "baseline"]

  struct Operands {
    let m, n, k, lda, ldb, ldc: Int
    let transposeA, transposeB: Bool
    var a, b, c: [Float]

    /// Random operands stored with 3 extra floats on every row, and a C holding values already.
    init(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, seed: UInt64) {
      (self.m, self.n, self.k, self.transposeA, self.transposeB) = (m, n, k, transposeA, transposeB)
      var g = SplitMix64(state: seed)
      (lda, ldb, ldc) = ((transposeA ? m : k) + 3, (transposeB ? k : n) + 3, n + 3)
      a = (0..<(transposeA ? k : m) * lda).map { _ in Float(g.nextUniform()) * 2 - 1 }
      b = (0..<(transposeB ? n : k) * ldb).map { _ in Float(g.nextUniform()) * 2 - 1 }
      c = (0..<m * ldc).map { _ in Float(g.nextUniform()) }
    }

    func a(_ i: Int, _ p: Int) -> Float { transposeA ? a[p * lda + i] : a[i * lda + p] }
    func b(_ p: Int, _ j: Int) -> Float { transposeB ? b[j * ldb + p] : b[p * ldb + j] }

    /// C as it should be, in double precision, and the rounding each entry may carry: the sum of
    /// |a||b| over k, times k float epsilons.
    func expected(accumulate: Bool) -> (values: [Double], tolerance: [Double]) {
      var values = c.map(Double.init), tolerance = [Double](repeating: 0, count: c.count)
      for i in 0..<m {
        for j in 0..<n {
          var (sum, size) = (0.0, 0.0)
          for p in 0..<k {
            sum += Double(a(i, p)) * Double(b(p, j))
            size += abs(Double(a(i, p)) * Double(b(p, j)))
          }
          values[i * ldc + j] = (accumulate ? values[i * ldc + j] : 0) + sum
          tolerance[i * ldc + j] = (Double(k) + 2) * Double(Float.ulpOfOne) * (size + (accumulate ? abs(values[i * ldc + j]) : 0))
        }
      }
      return (values, tolerance)
    }

    /// C after the small kernels of `isa`, or nil when the CPU lacks it.
    func small(_ isa: String, accumulate: Bool) -> [Float]? {
      var c = self.c
      var scratch = [Float](
        repeating: .nan, count: specbench_small_gemm_scratch(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k))
      let done = scratch.withUnsafeMutableBufferPointer { scratch in
        specbench_small_gemm_on(
          isa, transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, a, lda, b, ldb, accumulate ? 1 : 0, &c, ldc, scratch.baseAddress)
      }
      return done == 1 ? c : nil
    }
  }

  @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
  func eachInstructionSetMatchesTheExactProductAndSgemm(transposes: (Bool, Bool)) throws {
    var ran: Set<String> = []
    for (index, (m, n, k)) in Self.shapes.enumerated() {
      let operands = Operands(m: m, n: n, k: k, transposeA: transposes.0, transposeB: transposes.1, seed: UInt64(index + 1))
      for accumulate in [false, true] {
        let (expected, tolerance) = operands.expected(accumulate: accumulate)
        let label = "\(transposes.0 ? "T" : "N")\(transposes.1 ? "T" : "N") \(m)×\(n)×\(k)\(accumulate ? " accumulated" : "")"
        var results: [(String, [Float])] = []
        for isa in Self.instructionSets {
          guard let c = operands.small(isa, accumulate: accumulate) else { continue }
          ran.insert(isa)
          results.append((isa, c))
        }
        if BLASLibrary.problem == nil {
          var c = operands.c
          specbench_sgemm(
            transposes.0 ? 1 : 0, transposes.1 ? 1 : 0, Int32(m), Int32(n), Int32(k), operands.a, Int32(operands.lda), operands.b,
            Int32(operands.ldb), accumulate ? 1 : 0, &c, Int32(operands.ldc))
          if m > 0 && n > 0 { results.append(("OpenBLAS", c)) }
        }
        for (name, c) in results {
          let wrong = c.indices.first { index in
            // The padding after each row of C is never written.
            index % operands.ldc >= n
              ? c[index].bitPattern != operands.c[index].bitPattern : !(abs(Double(c[index]) - expected[index]) <= tolerance[index])
          }
          #expect(
            wrong == nil, "\(name), \(label): entry \(wrong ?? -1) is \(wrong.map { c[$0] } ?? 0), not \(wrong.map { expected[$0] } ?? 0)")
        }
      }
    }
    // Every machine has the baseline set, and an x86-64 CPU with AVX2 runs its set too.
    #expect(ran.contains("baseline"))
    #expect(ran.contains(BLASLibrary.smallProductInstructionSet))
  }

  /// A non-finite operand spreads to exactly the entries whose sums it is in, as in sgemm: the
  /// trainer's check for a non-finite gradient relies on it.
  @Test(arguments: ["avx512f", "avx2", "baseline"])
  func nonFiniteOperandsReachOnlyTheirOwnEntries(isa: String) throws {
    let (m, n, k) = (9, 21, 13)
    for (bad, row, inner) in [(Float.nan, 4, 7), (.infinity, 8, 0), (-.infinity, 0, 12)] {
      var operands = Operands(m: m, n: n, k: k, transposeA: false, transposeB: false, seed: 5)
      operands.a[row * operands.lda + inner] = bad
      guard let c = operands.small(isa, accumulate: false) else { return }
      for i in 0..<m {
        for j in 0..<n {
          #expect(c[i * operands.ldc + j].isFinite == (i != row), "\(isa): \(bad) at a[\(row), \(inner)], C[\(i), \(j)]")
        }
      }
    }
  }

  /// The rule that sends a product to the small kernels or to sgemm, on the presets' shapes.
  @Test func theShapeChoosesTheKernels() {
    // spirals (2-64-64-3, batch 64): every product.
    for (m, n, k) in [(64, 64, 2), (64, 64, 64), (64, 3, 64), (64, 64, 3), (3, 64, 64), (64, 2, 64)] {
      #expect(Products.isSmall(m: m, n: n, k: k), "\(m)×\(n)×\(k)")
    }
    // mlp-mnist (784-256-128-10, batch 128): its ten-class layer is small, its hidden ones not.
    #expect(Products.isSmall(m: 128, n: 10, k: 128))
    #expect(Products.isSmall(m: 10, n: 128, k: 128))
    #expect(!Products.isSmall(m: 128, n: 256, k: 784))
    #expect(!Products.isSmall(m: 256, n: 784, k: 128))
    #expect(!Products.isSmall(m: 128, n: 128, k: 256))
    // A convolution's lowered product: few filters by many columns.
    #expect(Products.isSmall(m: 10, n: 4096, k: 9))
    #expect(!Products.isSmall(m: 64, n: 4096, k: 64))
    // The scratch a forward product needs: the weight's size, when it repays a transpose.
    #expect(Products.scratch(transposeA: false, transposeB: true, m: 64, n: 64, k: 64) == 64 * 64)
    #expect(Products.scratch(transposeA: false, transposeB: true, m: 64, n: 3, k: 64) == 0)
    #expect(Products.scratch(transposeA: false, transposeB: true, m: 16, n: 64, k: 64) == 0)
    #expect(Products.scratch(transposeA: true, transposeB: false, m: 64, n: 64, k: 64) == 0)
    #expect(Products.scratch(transposeA: false, transposeB: true, m: 128, n: 256, k: 784) == 0)
  }
}
