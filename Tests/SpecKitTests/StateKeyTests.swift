import Testing

@testable import SpecKit

@Suite("State keys")
struct StateKeyTests {
  @Test(arguments: [
    (StateKey.parameter("dense1.weight"), "param/dense1.weight"), (.buffer("bn.running_var"), "buffer/bn.running_var"),
    (.slot(parameter: "dense1.weight", .expAvgSq), "opt/dense1.weight/exp_avg_sq"),
    (.slot(parameter: "a/b.weight", .momentumBuffer), "opt/a/b.weight/momentum_buffer"),
    (.engine(backend: "laplace", name: "dense1.weight/precision"), "engine/laplace/dense1.weight/precision"),
  ])
  func keysAreTheFormatsNamesBothWays(_ key: StateKey, _ name: String) {
    #expect(key.name == name)
    #expect(StateKey(name: name) == key)
  }

  @Test(arguments: [
    "weights/x", "opt/x", "opt/x/nope", "opt//exp_avg", "param", "param/", "buffer/", "engine/x", "engine//y", "engine/x/", "",
  ])
  func otherNamesAreNoKeys(_ name: String) {
    #expect(StateKey(name: name) == nil)
  }

  @Test func everySlotTheOptimizersUseIsNamedOnce() {
    #expect(Set(OptimizerSlot.allCases.map(\.rawValue)).count == OptimizerSlot.allCases.count)
    #expect(OptimizerSlot.allCases.filter(\.holdsSquares) == [.expAvgSq, .maxExpAvgSq, .squareAvg, .sum])
  }
}
