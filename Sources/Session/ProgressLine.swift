import Foundation

/// The one-line progress of a run, as `specbench run` shows it on a terminal:
/// `step 1200/3000  batch loss 0.0312  lr 0.0042  412 steps/s  ETA 0:04` (the loss of the last
/// batch; the whole training set's and the validation loss are labelled as such where shown).
public enum ProgressLine {
  /// - Parameters:
  ///   - planned: the step the run will stop at, when a step limit says so.
  ///   - stepsPerSecond: the recent rate, or nil before it is known.
  public static func format(step: Int, planned: Int?, loss: Float, learningRate: Double, stepsPerSecond: Double?) -> String {
    var parts = ["step \(step)" + (planned.map { "/\($0)" } ?? "")]
    parts.append("batch loss \(significant(Double(loss)))")
    parts.append("lr \(significant(learningRate))")
    if let rate = stepsPerSecond, rate > 0 {
      parts.append("\(rate >= 100 ? String(Int(rate.rounded())) : significant(rate)) steps/s")
      if let planned, planned > step { parts.append("ETA \(duration(Double(planned - step) / rate))") }
    }
    return parts.joined(separator: "  ")
  }

  /// Four significant digits: `0.03121`, `412.3`, `1.2e-05`.
  public static func significant(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    if x == 0 { return "0" }
    let magnitude = abs(x)
    if magnitude >= 1e-3 && magnitude < 1e5 {
      let decimals = max(0, 3 - Int(magnitude.log10Floor))
      return trimZeros(String(format: "%.\(decimals)f", x))
    }
    return String(format: "%.3g", x)
  }

  /// `m:ss`, or `h:mm:ss` past an hour.
  public static func duration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded(.up))
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60)
    return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
  }

  private static func trimZeros(_ text: String) -> String {
    guard text.contains(".") else { return text }
    var t = text
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t
  }
}

extension Double {
  fileprivate var log10Floor: Double { Foundation.floor(Foundation.log10(self)) }
}
