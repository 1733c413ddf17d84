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

  /// Auto-named layers are numbered in order by type; a user's names stay; a rename that would
  /// take a user's name is not made.
  @Test func layerNamesInOrder() {
    func model(_ layers: [(String, LayerSpec.Kind)]) -> ModelSpec {
      ModelSpec(input: [2], layers: layers.map { LayerSpec(name: $0.0, kind: $0.1) })
    }
    let dense = LayerSpec.Kind.dense(DenseLayer(units: 4)), dropout = LayerSpec.Kind.dropout(rate: 0.1)
    #expect(
      model([("dense1", dense), ("dense7", dense), ("dropout3", dropout), ("logits", dense), ("dense2", dense)]).namesInOrder()
        == ["dense7": "dense2", "dropout3": "dropout1", "dense2": "dense3"])
    #expect(model([("dense1", dense), ("dense2", dense)]).namesInOrder().isEmpty)
    // "dense01" and "dense" are not SpecBench's names; a dropout named "dense2" blocks the rename.
    #expect(model([("dense01", dense), ("dense", dense), ("dense5", dense)]).namesInOrder() == ["dense5": "dense1"])
    #expect(model([("dense1", dense), ("dense2", dropout), ("dense3", dense)]).namesInOrder().isEmpty)
    // The state follows: parameters, buffers and slots of a renamed layer; nothing else.
    let t = StoredTensor(shape: [1], scalars: [1])
    let state = TrainingState(
      step: 1, epoch: 0, epochOrderSeed: 0, index: 0, dropoutRNG: 0, optimizerSteps: 1,
      tensors: [
        "param/dense7.weight": t, "opt/dense7.weight/exp_avg": t, "buffer/bn7.running_mean": t, "param/dense1.bias": t,
        "engine/x/dense7.weight": t,
      ])
    #expect(
      Set(state.renamingLayers(["dense7": "dense2", "bn7": "bn1"]).tensors.keys)
        == ["param/dense2.weight", "opt/dense2.weight/exp_avg", "buffer/bn1.running_mean", "param/dense1.bias", "engine/x/dense7.weight"])
  }
}
