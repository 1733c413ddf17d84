import CFastKernels
import Foundation
import SpecKit
import TensorCore
import Testing

@testable import Backends

/// The fast backend's vector kernels (C, at the CPU's widest vector width) against
/// `OptimizerMath` (Swift, the reference backend's rule): the same bits, for every rule and
/// setting, over several steps, on a length that leaves a partial vector at the end, with values
/// of every sign and size (zeros, tiny and large gradients).
@Suite("Vector kernels of the fast backend")
struct VectorKernelTests {
  static let cases: [OptimizerSpec] =
    OptimizerTests.cases + [
      // The other branch of PyTorch's lerp (weight ≥ 0.5), and large learning rates.
      .adam(.init(lr: 0.3, beta1: 0.3, beta2: 0.5, weightDecay: 0)),
      .adamw(.init(lr: 0.3, beta1: 0.4, weightDecay: 0.2, amsgrad: true)),
      .rmsprop(.init(lr: 0.2, alpha: 0.4, momentum: 0.9, centered: true, weightDecay: 0.1)),
      .sgd(.init(lr: 1.5, momentum: 0.99, dampening: 0.5, nesterov: false, weightDecay: 0.3)),
    ]

  @Test(arguments: cases)
  func kernelsGiveTheSameBitsAsTheSwiftRule(optimizer: OptimizerSpec) {
    let count = 1003
    var generator = SplitMix64(seed: 7, stream: "vector-kernels")
    func values(_ scale: Float) -> [Float] {
      (0..<count).map { i in
        let u = Float(generator.nextUniform()) * 2 - 1
        return i % 97 == 0 ? 0 : i % 89 == 0 ? u * 1e-30 : u * scale
      }
    }
    let names = optimizer.slots.map(\.slot)
    var swiftParam = values(2), vectorParam = swiftParam
    var swiftSlots = names.map { _ in [Float](repeating: 0, count: count) }
    if case .adagrad(let o) = optimizer {
      swiftSlots = names.map { _ in [Float](repeating: Float(o.initialAccumulatorValue), count: count) }
    }
    var vectorSlots = swiftSlots
    for step in 1...6 {
      let grad = values(step == 3 ? 1e4 : 0.5)
      let learningRate = optimizer.learningRate * (step == 5 ? 0.25 : 1)
      Self.run(optimizer, &swiftParam, grad, &swiftSlots, names, step, learningRate, vector: false)
      Self.run(optimizer, &vectorParam, grad, &vectorSlots, names, step, learningRate, vector: true)
      let (expected, found) = (swiftParam.map { $0.bitPattern }, vectorParam.map { $0.bitPattern })
      #expect(expected == found, "parameters after step \(step)")
      for (index, name) in names.enumerated() {
        let (expectedSlot, foundSlot) = (swiftSlots[index].map { $0.bitPattern }, vectorSlots[index].map { $0.bitPattern })
        #expect(expectedSlot == foundSlot, "\(name) after step \(step)")
      }
    }
    let finite = swiftParam.allSatisfy { $0.isFinite }
    #expect(finite)
  }

  /// The elementwise passes around a dense layer against the plain rule written out here, on
  /// widths that leave partial vectors, with zeros of both signs, infinities and NaN among the
  /// values: bias + ReLU forward (in place and into another buffer), bias alone, ReLU backward
  /// with and without the bias gradient, the bias gradient alone.
  /// (The boundary is tried alone below: here the special values of z and g share indices.)
  /// ReLU's gradient at exactly 0 (and ±0, and the smallest subnormals) with an ordinary
  /// gradient: z > 0 passes it, z ≤ 0 stops it.
  @Test func reluBackwardAtTheBoundary() {
    let z: [Float] = [0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1, -1, .leastNormalMagnitude, 0]
    let g: [Float] = [2, 3, 5, 7, 11, 13, 17, 19]
    var kernelG = g, bias = [Float](repeating: 0, count: 8)
    specbench_relu_backward(&kernelG, z, &bias, 1, 8)
    #expect(kernelG == [0, 0, 5, 0, 11, 0, 17, 0])
    #expect(bias == kernelG)
  }

  /// The trainer's finiteness check: every special value found at every position of lengths
  /// around the vector widths (tails included), and the extremes of the finite numbers passed.
  @Test func allFiniteFindsEverySpecialValueAtEveryPosition() {
    let finiteExtremes: [Float] = [0, -0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1]
    #expect(specbench_all_finite(nil, 0) == 1)
    for count in [1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100] {
      let plain = (0..<count).map { finiteExtremes[$0 % finiteExtremes.count] }
      #expect(specbench_all_finite(plain, count) == 1, "\(count) finite values")
      for bad: Float in [.nan, .infinity, -.infinity, .signalingNaN, Float(bitPattern: 0xFFFF_FFFF)] {
        for position in 0..<count {
          var values = plain
          values[position] = bad
          #expect(specbench_all_finite(values, count) == 0, "\(bad) at \(position) of \(count)")
          // A bad value just past the length is not read as part of it.
          #expect(position == 0 || specbench_all_finite(values, position) == 1)
        }
      }
    }
  }

  @Test(arguments: [(5, 3), (64, 64), (7, 37), (128, 256)])
  func elementwisePassesGiveTheSameBitsAsThePlainRule(rows: Int, width: Int) {
    var generator = SplitMix64(seed: UInt64(rows * 1000 + width), stream: "elementwise")
    let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 1e-40, -1e-40]
    func values() -> [Float] {
      (0..<rows * width).map { i in i % 11 == 0 ? specials[(i / 11) % specials.count] : Float(generator.nextUniform()) * 4 - 2 }
    }
    let z = values(), g = values()
    let bias = (0..<width).map { j in j == 1 ? -Float.infinity : Float(generator.nextUniform()) - 0.5 }
    // Bit for bit, except that any NaN equals any NaN: which NaN an addition of two operands
    // keeps depends on their order, which the compiler may swap.
    func bits(_ a: [Float]) -> [UInt32] { a.map { $0.isNaN ? 0x7FC0_0000 : $0.bitPattern } }

    // Forward: bias + ReLU into y, and in place.
    var plainZ = z, plainY = z
    for r in 0..<rows {
      for j in 0..<width {
        let v = z[r * width + j] + bias[j]
        plainZ[r * width + j] = v
        plainY[r * width + j] = v > 0 ? v : 0
      }
    }
    var kernelZ = z, kernelY = [Float](repeating: 7, count: z.count)
    specbench_bias_relu(&kernelZ, bias, &kernelY, rows, width)
    #expect(bits(kernelZ) == bits(plainZ) && bits(kernelY) == bits(plainY))
    var inPlace = z
    inPlace.withUnsafeMutableBufferPointer { specbench_bias_relu($0.baseAddress, bias, $0.baseAddress, rows, width) }
    #expect(bits(inPlace) == bits(plainY))
    var noBias = z, noBiasY = z
    specbench_bias_relu(&noBias, nil, &noBiasY, rows, width)
    #expect(bits(noBias) == bits(z) && bits(noBiasY) == bits(z.map { $0 > 0 ? $0 : 0 }))
    var added = z
    specbench_bias_add(&added, bias, rows, width)
    #expect(bits(added) == bits(plainZ))

    // Backward: dz = g·(z > 0 ? 1 : 0), and Σ over rows.
    var plainG = g, plainBias = [Float](repeating: 0, count: width)
    for r in 0..<rows {
      for j in 0..<width {
        let d = g[r * width + j] * (z[r * width + j] > 0 ? 1 : 0)
        plainG[r * width + j] = d
        plainBias[j] += d
      }
    }
    var kernelG = g, kernelBias = [Float](repeating: 3, count: width)
    specbench_relu_backward(&kernelG, z, &kernelBias, rows, width)
    #expect(bits(kernelG) == bits(plainG) && bits(kernelBias) == bits(plainBias))
    var onlyG = g
    specbench_relu_backward(&onlyG, z, nil, rows, width)
    #expect(bits(onlyG) == bits(plainG))
    var sums = [Float](repeating: 3, count: width), plainSums = [Float](repeating: 0, count: width)
    for r in 0..<rows { for j in 0..<width { plainSums[j] += g[r * width + j] } }
    specbench_bias_gradient(g, &sums, rows, width)
    #expect(bits(sums) == bits(plainSums))
  }

  static func run(
    _ optimizer: OptimizerSpec, _ param: inout [Float], _ grad: [Float], _ slots: inout [[Float]], _ names: [OptimizerSlot], _ step: Int,
    _ learningRate: Double, vector: Bool
  ) {
    var buffers = slots.map { values -> UnsafeMutableBufferPointer<Float> in
      let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
      _ = buffer.initialize(from: values)
      return buffer
    }
    defer { for buffer in buffers { buffer.deallocate() } }
    var views = OptimizerMath.SlotViews()
    for (name, buffer) in zip(names, buffers) { views.set(name, buffer.baseAddress!) }
    param.withUnsafeMutableBufferPointer { p in
      grad.withUnsafeBufferPointer { g in
        if vector {
          VectorOptimizer.update(
            optimizer, param: p.baseAddress!, grad: g.baseAddress!, count: p.count, slots: views, step: step, learningRate: learningRate)
        } else {
          OptimizerMath.update(
            optimizer, param: p.baseAddress!, grad: g.baseAddress!, count: p.count, slots: views, step: step, learningRate: learningRate)
        }
      }
    }
    slots = buffers.map { Array($0) }
    buffers = []
  }
}
