import Foundation

/// Axis ticks at "nice" values (1, 2 or 5 times a power of ten) and short number labels.
public enum Ticks {
  /// About `count` nice values covering [low, high] (those inside the range).
  public static func nice(low: Double, high: Double, count: Int) -> [Double] {
    guard low.isFinite, high.isFinite, high > low, count > 0 else { return low.isFinite ? [low] : [] }
    let rough = (high - low) / Double(count)
    let magnitude = pow(10, floor(log10(rough)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
    var values: [Double] = []
    var value = ceil(low / step) * step
    while value <= high + step * 1e-9 {
      values.append(abs(value) < step * 1e-9 ? 0 : value)
      value += step
    }
    return values
  }

  /// A label of at most about 7 characters: `0.25`, `1200`, `1.5e-05`, `3e+06`.
  public static func label(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    if x == 0 { return "0" }
    let magnitude = abs(x)
    if magnitude >= 1e-3 && magnitude < 1e6 {
      var text = String(format: "%.4g", x)
      if text.contains("e") { text = String(format: "%.0f", x) }
      return text
    }
    return String(format: "%.2g", x)
  }
}
