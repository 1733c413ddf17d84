import CFastKernels
import Dispatch
import SpecKit
import TensorCore

/// The three products of a dense layer, by shape as the fast trainer's (`Products`): a small one
/// in the small-product kernels, a large one through OpenBLAS's `cblas_sgemm` (row-major, with
/// the transposes given as flags rather than made, blocked and vectorised for the CPU it runs
/// on, and threaded by OpenBLAS itself for large products only). OpenBLAS is loaded on first use
/// (`BLASLibrary`).
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
    precondition(specbench_blas_load() == 1, "OpenBLAS is not loaded; FastBackend checks before it builds a trainer")
    specbench_sgemm(
      transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n),
      accumulate ? 1 : 0, c, Int32(n))
  }

  /// The array form, for the Laplace passes: a small product in the small kernels (with the
  /// scratch they ask for), as in the fast trainer, so that the same shape takes the same path
  /// on every CPU rather than OpenBLAS's CPU-specific small-matrix kernels.
  static func gemm(
    _ a: [Float], transposeA: Bool, _ b: [Float], transposeB: Bool, into c: inout [Float], m: Int, n: Int, k: Int, accumulate: Bool
  ) {
    guard m > 0, n > 0, k > 0 else {
      if !accumulate { c.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
      return
    }
    var scratch = [Float](repeating: 0, count: Products.scratch(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k))
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        c.withUnsafeMutableBufferPointer { c in
          scratch.withUnsafeMutableBufferPointer { scratch in
            Products.gemm(
              a.baseAddress!, transposeA: transposeA, b.baseAddress!, transposeB: transposeB, into: c.baseAddress!, m: m, n: n, k: k,
              accumulate: accumulate, scratch: scratch)
          }
        }
      }
    }
  }
}

/// The fast trainer's matrix products: each goes to the small-product kernels
/// (`CFastKernels/small_gemm.h`: register-blocked, no packing, no threads) or to OpenBLAS's sgemm
/// by its shape alone, so that the same session always takes the same path and gives the same
/// bits. Small means at most 2¹⁸ multiply-adds, or at most 2²¹ with a side of 16 or less: where
/// sgemm's packing, call and thread hand-over cost more than the arithmetic (measured on the
/// presets' shapes, docs/performance.md).
enum Products {
  /// Whether a product `[m, k]·[k, n]` runs in the small kernels.
  static func isSmall(m: Int, n: Int, k: Int) -> Bool {
    let work = m * n * k
    return work <= 1 << 18 || (min(m, n, k) <= 16 && work <= 1 << 21)
  }

  /// The floats of scratch a small product of these operands needs (0 for most; see `gemm`).
  static func scratch(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int) -> Int {
    isSmall(m: m, n: n, k: k) ? specbench_small_gemm_scratch(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k) : 0
  }

  /// `c = op(a)·op(b)` (or `c += …` with `accumulate`), c `[m, n]` as `BLASKernels.gemm`: in the
  /// small kernels when the shape says so and `scratch` holds what they need, else in sgemm.
  static func gemm(
    _ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool, into c: UnsafeMutablePointer<Float>,
    m: Int, n: Int, k: Int, accumulate: Bool, scratch: UnsafeMutableBufferPointer<Float>? = nil
  ) {
    let (ta, tb) = (transposeA ? Int32(1) : 0, transposeB ? Int32(1) : 0)
    guard isSmall(m: m, n: n, k: k), specbench_small_gemm_scratch(ta, tb, m, n, k) <= scratch?.count ?? 0 else {
      BLASKernels.gemm(a, transposeA: transposeA, b, transposeB: transposeB, into: c, m: m, n: n, k: k, accumulate: accumulate)
      return
    }
    specbench_small_gemm(
      ta, tb, m, n, k, a, transposeA ? m : k, b, transposeB ? k : n, accumulate ? 1 : 0, c, n, scratch?.baseAddress)
  }
}

/// OpenBLAS as the fast backend finds it: loaded on first use (see `CFastKernels/blas_loader.h`).
public enum BLASLibrary {
  /// Nil when OpenBLAS is there; otherwise what to do about it.
  public static var problem: String? {
    guard specbench_blas_load() == 0 else { return nil }
    let reason = specbench_blas_error().map { String(cString: $0) } ?? "not found"
    return "the fast backend needs OpenBLAS, which could not be loaded (\(reason)); "
      + "install it (Debian: apt-get install libopenblas0, or scripts/setup.sh), or use the reference backend"
  }

  /// `OpenBLAS Haswell kernels`, or why it is missing.
  public static var description: String {
    if let problem { return problem }
    return "OpenBLAS \(String(cString: specbench_blas_core())) kernels"
  }

  /// The instruction set of the optimizer kernels on this CPU.
  public static var optimizerInstructionSet: String { String(cString: specbench_fast_kernels_isa()) }

  /// The instruction set of the small-product kernels on this CPU.
  public static var smallProductInstructionSet: String { String(cString: specbench_small_gemm_isa()) }

  /// OpenBLAS's sgemm on square `n`×`n` matrices with its own threads (every core): the
  /// machine's limit for the fast backend's products, in GFLOP/s (2n³ a product), the median of
  /// `repeats` timed products after one untimed. Nil when OpenBLAS cannot be loaded.
  public static func sgemmPeak(n: Int = 1024, repeats: Int = 9) -> Double? {
    guard problem == nil, n > 0, repeats > 0 else { return nil }
    var generator = SplitMix64(seed: 1, stream: "sgemm-peak")
    let a = (0..<(n * n)).map { _ in Float(generator.nextUniform()) }
    let b = (0..<(n * n)).map { _ in Float(generator.nextUniform()) }
    var c = [Float](repeating: 0, count: n * n)
    var rates: [Double] = []
    for run in 0...repeats {
      let start = DispatchTime.now().uptimeNanoseconds
      BLASKernels.gemm(a, transposeA: false, b, transposeB: false, into: &c, m: n, n: n, k: n, accumulate: false)
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
      if run > 0 { rates.append(2 * Double(n) * Double(n) * Double(n) / seconds / 1e9) }
    }
    return rates.sorted()[rates.count / 2]
  }
}

extension Benchmark.Preset {
  /// Seconds a step of this preset spends in its matrix products alone, on the paths the fast
  /// trainer takes (the small kernels or sgemm, with the same shapes and transposes): the
  /// forward product, the weight gradient and, after the first layer, the input gradient of
  /// each dense layer. The median of `repeats` runs of `steps` steps' products, on operands of
  /// the workspace's sizes. What a step costs beyond this is the rest of the trainer's work
  /// (activations, loss, optimizer, hand-overs). Nil for a preset with layers other than dense
  /// ones, or without OpenBLAS.
  public func productSecondsPerStep(steps: Int = 50, repeats: Int = 5) -> Double? {
    guard BLASLibrary.problem == nil, layers.allSatisfy({ if case .dense = $0.kind { true } else { false } }),
      let shapes = try? ModelSpec(input: input, layers: layers).layerShapes()
    else { return nil }
    let widths = [input.reduce(1, *)] + shapes.map { $0.outputShape.reduce(1, *) }
    let rows = batchSize
    // Operands of the workspace's sizes, allocated once; their values do not change the time.
    func buffer(_ count: Int, _ value: Float) -> UnsafeMutableBufferPointer<Float> {
      let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, count))
      buffer.initialize(repeating: value)
      return buffer
    }
    let depth = widths.count - 1
    let weights = (0..<depth).map { buffer(widths[$0] * widths[$0 + 1], 0.01) }
    let activations = widths.map { buffer(rows * $0, 0.5) }
    let gradient = buffer(weights.map(\.count).max()!, 0)
    let output = buffer(rows * widths.max()!, 0)
    let scratch = buffer(
      (0..<depth).map { Products.scratch(transposeA: false, transposeB: true, m: rows, n: widths[$0 + 1], k: widths[$0]) }.max()!, 0)
    defer { for b in weights + activations + [gradient, output, scratch] { b.deallocate() } }
    func step() {
      for layer in 0..<depth {
        Products.gemm(
          activations[layer].baseAddress!, transposeA: false, weights[layer].baseAddress!, transposeB: true, into: output.baseAddress!,
          m: rows, n: widths[layer + 1], k: widths[layer], accumulate: false, scratch: scratch)
      }
      for layer in (0..<depth).reversed() {
        Products.gemm(
          activations[layer + 1].baseAddress!, transposeA: true, activations[layer].baseAddress!, transposeB: false,
          into: gradient.baseAddress!, m: widths[layer + 1], n: widths[layer], k: rows, accumulate: false)
        if layer > 0 {
          Products.gemm(
            activations[layer + 1].baseAddress!, transposeA: false, weights[layer].baseAddress!, transposeB: false,
            into: output.baseAddress!, m: rows, n: widths[layer], k: widths[layer + 1], accumulate: false)
        }
      }
    }
    let clock = ContinuousClock()
    step()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
      let start = clock.now
      for _ in 0..<max(1, steps) { step() }
      times.append((clock.now - start) / .seconds(1) / Double(max(1, steps)))
    }
    return times.sorted()[times.count / 2]
  }
}
