import Foundation

/// TensorBoard's debiased exponential moving average, the smoothing users know: for s in
/// [0, 1), `last = s·last + (1 − s)·y; n += 1; out = last / (1 − sⁿ)` over the finite values; a
/// non-finite value passes through unchanged and does not advance n; a constant series is
/// returned as it is.
public enum Smoothing {
  public static func tensorBoard(_ values: [Double], weight s: Double) -> [Double] {
    let finite = values.filter(\.isFinite)
    guard s > 0, let first = finite.first, !finite.allSatisfy({ $0 == first }) else { return values }
    var running = Running(weight: s)
    return values.map { y in y.isFinite ? running.next(y) : y }
  }

  /// The same average one finite value at a time, for a chart that smooths as it draws.
  public struct Running: Sendable {
    public let weight: Double
    private var last = 0.0
    /// sⁿ, kept as a running product rather than a power per value.
    private var decay = 1.0

    public init(weight: Double) { self.weight = weight }

    /// The smoothed value after `y` (finite).
    public mutating func next(_ y: Double) -> Double {
      last = weight * last + (1 - weight) * y
      // Once sⁿ is below 2⁻⁵⁴, 1 − sⁿ rounds to 1: the division is left out from then on (the
      // same bits), and sⁿ never becomes subnormal, which would slow every multiplication.
      guard decay != 0 else { return last }
      decay *= weight
      if decay < 0x1p-54 { decay = 0 }
      return last / (1 - decay)
    }
  }
}
