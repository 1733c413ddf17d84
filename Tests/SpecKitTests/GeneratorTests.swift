import Foundation
import Testing

@testable import SpecKit

/// The test vectors of SPEC-FORMAT.md, "The seeded generator".
@Suite("Seeded generator")
struct GeneratorTests {
  @Test func fnv1aMatchesTheFormatsVector() {
    #expect(FNV1a.hash64("dense1.weight") == 0x9ca3_6e4e_a5cf_b8e3)
    #expect(FNV1a.hash64("") == FNV1a.offsetBasis)
  }

  @Test func splitMixRawOutputsMatch() {
    var g = SplitMix64(seed: 0, stream: "dense1.weight")
    #expect(g.next() == 3_367_057_626_526_801_225)
    #expect(g.next() == 7_749_058_948_895_828_401)
  }

  @Test func uniformsMatch() {
    var g = SplitMix64(seed: 0, stream: "dense1.weight")
    let expected: [Float] = [0.182528555393219, 0.4200773239135742, 0.04351145029067993, 0.5602013468742371]
    #expect((0..<4).map { _ in g.nextUniform() } == expected)
  }

  @Test func normalsMatch() {
    var g = SplitMix64(seed: 42, stream: "hidden.weight")
    let expected: [Float] = [0.3234037458896637, -0.7884199619293213, -1.1328681707382202]
    #expect((0..<3).map { _ in g.nextNormal() } == expected)
  }

  @Test func uniformsStayInTheUnitInterval() {
    var g = SplitMix64(state: 0)
    for _ in 0..<10_000 {
      let u = g.nextUniform()
      #expect(u >= 0 && u < 1)
    }
    // The largest 24-bit value maps below 1.
    #expect(Float(UInt64(0xFF_FFFF)) * 0x1p-24 < 1)
  }

  @Test func savedStateContinuesTheStream() {
    var a = SplitMix64(seed: 9, stream: "dropout")
    _ = a.next()
    var b = SplitMix64(state: a.state)
    #expect(a.next() == b.next())
  }

  @Test func epochOrderSeedsChainBySplitMix() {
    let first = SeedStreams.initialEpochOrderSeed(trainingSeed: 5)
    #expect(first == 5 ^ FNV1a.hash64("data.order"))
    var g = SplitMix64(state: first)
    #expect(SeedStreams.nextEpochOrderSeed(after: first) == g.next())
    #expect(SeedStreams.initialDropoutState(trainingSeed: 5) == 5 ^ FNV1a.hash64("dropout"))
  }
}

@Suite("Initializers")
struct InitializerTests {
  /// Uniforms of a stream, drawn independently of `Initializer` to check its arithmetic.
  func uniforms(_ seed: UInt64, _ name: String, _ n: Int) -> [Double] {
    var g = SplitMix64(seed: seed, stream: name)
    return (0..<n).map { _ in Double(g.nextUniform()) }
  }

  func normals(_ seed: UInt64, _ name: String, _ n: Int) -> [Double] {
    var g = SplitMix64(seed: seed, stream: name)
    return (0..<n).map { _ in Double(g.nextNormal()) }
  }

  @Test func constantsFill() {
    #expect(Initializer.zeros.values(count: 3, fanIn: 1, fanOut: 1, seed: 0, tensorName: "x") == [0, 0, 0])
    #expect(Initializer.ones.values(count: 2, fanIn: 1, fanOut: 1, seed: 0, tensorName: "x") == [1, 1])
    #expect(Initializer.constant(value: 0.25).values(count: 2, fanIn: 1, fanOut: 1, seed: 0, tensorName: "x") == [0.25, 0.25])
  }

  @Test func uniformFamilies() {
    let (fanIn, fanOut) = (5, 3)
    let u = uniforms(7, "l.weight", 15)
    let glorot = (6.0 / Double(fanIn + fanOut)).squareRoot()
    let he = (6.0 / Double(fanIn)).squareRoot()
    #expect(
      Initializer.uniform(low: -2, high: 3).values(count: 15, fanIn: fanIn, fanOut: fanOut, seed: 7, tensorName: "l.weight")
        == u.map { Float(-2 + 5 * $0) })
    #expect(
      Initializer.glorotUniform.values(count: 15, fanIn: fanIn, fanOut: fanOut, seed: 7, tensorName: "l.weight")
        == u.map { Float(-glorot + 2 * glorot * $0) })
    #expect(
      Initializer.heUniform.values(count: 15, fanIn: fanIn, fanOut: fanOut, seed: 7, tensorName: "l.weight")
        == u.map { Float(-he + 2 * he * $0) })
  }

  @Test func normalFamilies() {
    let (fanIn, fanOut) = (8, 2)
    let z = normals(3, "h.weight", 16)
    func check(_ initializer: Initializer, mean: Double, std: Double) {
      #expect(
        initializer.values(count: 16, fanIn: fanIn, fanOut: fanOut, seed: 3, tensorName: "h.weight") == z.map { Float(mean + std * $0) },
        "\(initializer)")
    }
    check(.normal(mean: 1, std: 0.5), mean: 1, std: 0.5)
    check(.glorotNormal, mean: 0, std: (2.0 / 10).squareRoot())
    check(.heNormal, mean: 0, std: (2.0 / 8).squareRoot())
    check(.lecunNormal, mean: 0, std: (1.0 / 8).squareRoot())
  }

  @Test func valuesDependOnNameAndSeedOnly() {
    let a = Initializer.glorotUniform.values(count: 8, fanIn: 4, fanOut: 2, seed: 1, tensorName: "dense1.weight")
    #expect(a == Initializer.glorotUniform.values(count: 8, fanIn: 4, fanOut: 2, seed: 1, tensorName: "dense1.weight"))
    #expect(a != Initializer.glorotUniform.values(count: 8, fanIn: 4, fanOut: 2, seed: 2, tensorName: "dense1.weight"))
    #expect(a != Initializer.glorotUniform.values(count: 8, fanIn: 4, fanOut: 2, seed: 1, tensorName: "dense2.weight"))
  }

  @Test func heNormalHasTheRightSpread() {
    let values = Initializer.heNormal.values(count: 20_000, fanIn: 50, fanOut: 10, seed: 0, tensorName: "big")
    let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
    let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
    #expect(abs(mean) < 0.01)
    #expect(abs(variance.squareRoot() - (2.0 / 50).squareRoot()) < 0.005)
  }
}
