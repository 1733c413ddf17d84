import Foundation
import SpecKit

/// What every importer ends with: the layers and weights read from another format made into a
/// session that `validate` accepts, with placeholder data the model fits.
enum ImportedSession {
  /// The session (its weights as the state at step 0) and a note on its placeholder data.
  ///
  /// The loss fits the output: one output is a binary classifier, a model ending in a softmax
  /// compares its probabilities with one-hot targets (mse), any other a softmax cross-entropy
  /// over its logits. The spec goes through the same reader and checks as a file (every field
  /// rule, shapes, sizes) and the weights through the state checks: an import writes only what
  /// `validate` accepts.
  static func make(
    name: String, file: String, input: [Int], layers: [LayerSpec], tensors: [String: StoredTensor], outputWidth: Int,
    endsWithSoftmax: Bool, optimizer: OptimizerSpec = .adam(.init(weightDecay: 0))
  ) throws(InterchangeError) -> (bundle: SessionBundle, placeholderNote: String) {
    let loss: LossSpec = outputWidth == 1 ? .sigmoidBinaryCrossEntropy : endsWithSoftmax ? .mse : .softmaxCrossEntropy
    let data = placeholderData(input: input, width: outputWidth, name: name)
    var spec = SessionSpec(
      name: name, model: ModelSpec(input: input, layers: layers), loss: loss, optimizer: optimizer, data: DataSpec(source: data),
      journal: ["import \(PathText.lastComponent(file))"])
    // The state's layout, filled with the file's tensors and a fresh optimizer state: no
    // seeded initial weights are drawn only to be replaced.
    let layout: [StateTensorInfo]
    do { layout = try spec.stateLayout() } catch {
      throw .unsupportedGraph("the imported layers do not chain: \(error.issues.first?.message ?? "\(error)")")
    }
    let names = Set(layout.map(\.name))
    if let stray = tensors.keys.sorted().first(where: { !names.contains($0) }) {
      throw .unsupportedGraph("internal: no tensor \(stray) in the session's layout")
    }
    var values: [String: StoredTensor] = [:]
    for info in layout {
      if info.isOptimizerState {
        values[info.name] = info.freshTensor
        continue
      }
      guard let tensor = tensors[info.name] else { throw .unsupportedGraph("internal: the file gave no \(info.name)") }
      guard info.shape == tensor.shape else {
        throw .unsupportedGraph("\(info.name) has shape \(tensor.shape) in the file, but the layers need \(info.shape)")
      }
      values[info.name] = tensor
    }
    let record = spec.initialStateRecord()
    let state = TrainingState(
      step: 0, epoch: 0, epochOrderSeed: record.epochOrderSeed, index: 0, dropoutRNG: record.dropoutRNG, optimizerSteps: 0,
      tensors: values)
    spec.state = nil
    do { _ = try SessionSpec.decode(Array(spec.canonicalText.utf8), file: file, defaultName: name) } catch {
      let problems = error.issues.isEmpty ? [error.description] : error.issues.map(\.description)
      throw .unsupportedGraph("the model does not make a valid session:\n" + problems.map { "  " + $0 }.joined(separator: "\n"))
    }
    let stateProblems = spec.stateProblems(state.tensors)
    guard stateProblems.isEmpty else {
      throw .unsupportedGraph("the model's weights do not make a valid state:\n" + stateProblems.map { "  " + $0 }.joined(separator: "\n"))
    }
    let note =
      input.count == 1
      ? "the data is a placeholder (blobs of the model's input and output widths); set the session's own with `data …` before training"
      : input == [1, 8, 8] && outputWidth == 10
        ? "the data is a placeholder (the built-in digits, whose images are [1, 8, 8]); set the session's own with `data …` before training"
        : "the data is a placeholder (\(data.files[0]), a NumPy archive of [\(input.map(String.init).joined(separator: ", "))] samples for you to provide); set the session's own with `data …` before training"
    return (SessionBundle(spec: spec, state: state), note)
  }

  /// A data source the model fits where there is one: blobs of its input and output widths for
  /// flat samples, the built-in digits for `[1, 8, 8]` images with ten outputs, otherwise an
  /// `.npz` archive named after the session (its shape is checked when the user provides it).
  static func placeholderData(input: [Int], width: Int, name: String) -> DataSource {
    if input.count == 1 { return .blobs(samples: 300, centers: max(2, width), features: input[0], std: 1, seed: 0) }
    if input == [1, 8, 8] && width == 10 { return .builtin(name: "digits") }
    return .numpy(.init(files: .npz(path: "\(name)-data.npz", inputs: "x", targets: "y")))
  }
}
