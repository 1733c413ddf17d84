/// What a field's value must be, phrased for messages: `must be a positive integer, got -3`.
struct Rule<Value> {
  /// The noun phrase after "must be": "a positive integer", "a number in [0, 1)".
  let expected: String
  let accepts: (Value) -> Bool

  init(_ expected: String, _ accepts: @escaping (Value) -> Bool) {
    self.expected = expected
    self.accepts = accepts
  }
}

extension Rule where Value == Int {
  static var any: Rule { Rule("an integer") { _ in true } }
  static var positive: Rule { Rule("a positive integer") { $0 > 0 } }
  static var nonNegative: Rule { Rule("a non-negative integer") { $0 >= 0 } }
  static func atLeast(_ low: Int) -> Rule { Rule("an integer ≥ \(low)") { $0 >= low } }
}

extension Rule where Value == Double {
  static var any: Rule { Rule("a number") { _ in true } }
  static var positive: Rule { Rule("a number > 0") { $0 > 0 } }
  static var nonNegative: Rule { Rule("a number ≥ 0") { $0 >= 0 } }
  /// A number float32 holds: |x| ≤ 3.4e38 (training computes in float32, where a larger one is ±inf).
  static var float32: Rule {
    Rule("a number float32 can hold (magnitude at most 3.4e38)") { abs($0) <= Double(Float.greatestFiniteMagnitude) }
  }
  /// A non-negative number float32 holds: 0 ≤ x ≤ 3.4e38.
  static var nonNegativeFloat32: Rule { Rule("a number from 0 to 3.4e38") { $0 >= 0 && $0 <= Double(Float.greatestFiniteMagnitude) } }
  /// A positive number that stays positive and finite in float32: 1.2e-38 ≤ x ≤ 3.4e38.
  static var positiveFloat32: Rule {
    Rule("a number from 1.2e-38 to 3.4e38 (positive, and still positive in float32)") {
      $0 >= Double(Float.leastNormalMagnitude) && $0 <= Double(Float.greatestFiniteMagnitude)
    }
  }
  /// low ≤ x < high
  static func halfOpen(_ low: Double, _ high: Double) -> Rule { Rule("a number in [\(fmt(low)), \(fmt(high)))") { $0 >= low && $0 < high } }
  /// low ≤ x ≤ high
  static func closed(_ low: Double, _ high: Double) -> Rule { Rule("a number in [\(fmt(low)), \(fmt(high))]") { $0 >= low && $0 <= high } }
  /// low < x < high
  static func open(_ low: Double, _ high: Double) -> Rule { Rule("a number in (\(fmt(low)), \(fmt(high)))") { $0 > low && $0 < high } }

  private static func fmt(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : "\(x)" }
}

extension Rule where Value == String {
  static var any: Rule { Rule("a string") { _ in true } }
  static var nonEmpty: Rule { Rule("a non-empty string") { !$0.isEmpty } }
}
