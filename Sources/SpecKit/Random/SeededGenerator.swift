import Foundation

/// FNV-1a, 64-bit: names a generator stream after a tensor (`dense1.weight`).
public enum FNV1a {
  public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
  public static let prime: UInt64 = 0x100_0000_01b3

  /// The hash of the UTF-8 bytes of `text`.
  public static func hash64(_ text: String) -> UInt64 {
    var hash = offsetBasis
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* prime
    }
    return hash
  }
}

/// SplitMix64: the one generator behind every seeded value in SpecBench, chosen because any
/// language reproduces it in six lines, so initial weights are the same everywhere.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
  /// The whole state: saving it and restoring it continues the stream exactly.
  public var state: UInt64

  public init(state: UInt64) { self.state = state }

  /// The generator for the stream `name` under `seed`: state = seed XOR fnv1a64(name).
  public init(seed: UInt64, stream name: String) { state = seed ^ FNV1a.hash64(name) }

  public mutating func next() -> UInt64 {
    state = state &+ 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  /// A float32 uniform in [0, 1) from the top 24 bits: `Float(next() >> 40) · 2⁻²⁴`.
  public mutating func nextUniform() -> Float {
    Float(next() >> 40) * 0x1p-24
  }

  /// A standard normal by Box–Muller from two uniforms drawn in order (u1 = 1 − uₐ, u2 = u_b):
  /// `sqrt(−2 ln u1)·cos(2π u2)` in double precision, rounded to float32. One normal per pair.
  public mutating func nextNormal() -> Float {
    Float(nextNormalDouble())
  }

  /// The Box–Muller value before rounding to float32 (`nextNormal` rounds this).
  mutating func nextNormalDouble() -> Double {
    let u1 = Double(1 - nextUniform())
    let u2 = Double(nextUniform())
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
  }
}

/// The named streams of a session's seed, besides one per tensor.
public enum SeedStreams {
  /// The permutation seed of the first epoch; each next epoch's seed is the first output of a
  /// SplitMix64 whose state is the previous seed.
  public static func initialEpochOrderSeed(trainingSeed: UInt64) -> UInt64 { trainingSeed ^ FNV1a.hash64("data.order") }

  /// The next epoch's permutation seed.
  public static func nextEpochOrderSeed(after seed: UInt64) -> UInt64 {
    var generator = SplitMix64(state: seed)
    return generator.next()
  }

  /// The dropout generator's starting state.
  public static func initialDropoutState(trainingSeed: UInt64) -> UInt64 { trainingSeed ^ FNV1a.hash64("dropout") }
}
