import ArgumentParser
import Backends
import Foundation
import Interchange
import Session
import SpecKit

struct Import: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Make a session from an ONNX model: its layers, and its weights as the state.",
    discussion: """
      Reads MLP graphs as PyTorch's and Keras' exporters write them (Gemm, or MatMul + Add, \
      with either weight layout; Relu, LeakyRelu, Sigmoid, Tanh, Softplus, Elu, Gelu, Softmax, \
      Flatten, Identity, Dropout, LayerNormalization, BatchNormalization). Anything else is \
      refused, naming the node and its op, and nothing is written. The session's data is a \
      placeholder to replace before training. See docs/interchange.md.
      """
  )

  @Argument(help: "The ONNX model (.onnx).")
  var model: String

  @Option(help: "Where to write the session: PATH.json and PATH.safetensors (PATH may end in .json).")
  var out: String

  @Option(help: "The session's name (default: the model file's name).")
  var name: String?

  func run() throws {
    // Protobuf messages are at most 2 GiB.
    let data: [UInt8]
    do { data = try FileAccess.read(model, limit: 2 << 30) } catch { throw fail(error) }
    let sessionName = name ?? PathText.deletingExtension(PathText.lastComponent(model))
    do {
      let (bundle, notes) = try ONNXImport.session(from: data, file: model, name: sessionName)
      let saved = try SessionFile.save(bundle, to: out)
      let paths = SessionFile.paths(for: out)
      say("wrote \(paths.json) and \(paths.tensors): \(saved.model.layers.count) layers, \(saved.model.parameterCount) parameters")
      for note in notes { say("  \(note)") }
    } catch let error as InterchangeError {
      throw failWith(error.description)
    } catch let error as SpecError {
      throw fail(error)
    }
  }
}
