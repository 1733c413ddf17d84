import Foundation

/// TensorBoard's debiased exponential moving average, the smoothing users know: for s in
/// [0, 1), `last = s·last + (1 − s)·y; n += 1; out = last / (1 − sⁿ)` over the finite values; a
/// non-finite value passes through unchanged and does not advance n; a constant series is
/// returned as it is.
public enum Smoothing {
  public static func tensorBoard(_ values: [Double], weight s: Double) -> [Double] {
    let finite = values.filter(\.isFinite)
    guard s > 0, let first = finite.first, !finite.allSatisfy({ $0 == first }) else { return values }
    var last = 0.0
    // sⁿ, kept as a running product: a chart smooths every point of a long run each frame.
    var decay = 1.0
    return values.map { y in
      guard y.isFinite else { return y }
      last = s * last + (1 - s) * y
      decay *= s
      return last / (1 - decay)
    }
  }
}
