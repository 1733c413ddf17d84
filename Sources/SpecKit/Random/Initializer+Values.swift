extension Initializer {
  /// The initial values of one tensor, in row-major order.
  ///
  /// Random initializers draw from `SplitMix64(seed: seed, stream: tensorName)`; a uniform `u`
  /// or normal `z` is float32, and what follows (`low + (high − low)·u`, `mean + std·z`, the
  /// Glorot/He/LeCun scales) is computed in double precision and rounded once to float32.
  public func values(count: Int, fanIn: Int, fanOut: Int, seed: UInt64, tensorName: String) -> [Float] {
    var generator = SplitMix64(seed: seed, stream: tensorName)
    func uniform(_ low: Double, _ high: Double) -> [Float] {
      (0..<count).map { _ in Float(low + (high - low) * Double(generator.nextUniform())) }
    }
    func normal(_ mean: Double, _ std: Double) -> [Float] {
      (0..<count).map { _ in Float(mean + std * Double(generator.nextNormal())) }
    }
    let fanIn = Double(fanIn), fanOut = Double(fanOut)
    switch self {
    case .zeros: return Array(repeating: 0, count: count)
    case .ones: return Array(repeating: 1, count: count)
    case .constant(let value): return Array(repeating: Float(value), count: count)
    case .uniform(let low, let high): return uniform(low, high)
    case .normal(let mean, let std): return normal(mean, std)
    case .glorotUniform:
      let limit = (6 / (fanIn + fanOut)).squareRoot()
      return uniform(-limit, limit)
    case .glorotNormal: return normal(0, (2 / (fanIn + fanOut)).squareRoot())
    case .heUniform:
      let limit = (6 / fanIn).squareRoot()
      return uniform(-limit, limit)
    case .heNormal: return normal(0, (2 / fanIn).squareRoot())
    case .lecunNormal: return normal(0, (1 / fanIn).squareRoot())
    }
  }
}
