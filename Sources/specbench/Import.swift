import ArgumentParser
import Backends
import Foundation
import Interchange
import Session
import SpecKit

struct Import: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Make a session from an ONNX model or a Keras 3 file: its layers, and its weights as the state.",
    discussion: """
      ONNX (.onnx): graphs as PyTorch's exporters (the default and the legacy one, opsets 13 \
      to 21) and Keras' write them (Gemm, or MatMul + Add, with either weight layout; Conv, \
      MaxPool, AveragePool, GlobalAveragePool, Reshape; Relu, LeakyRelu, Sigmoid, Tanh, \
      Softplus, Elu, Gelu, Softmax, Flatten, Identity, Dropout, LayerNormalization, \
      BatchNormalization), weights in a MODEL.onnx.data file beside the model included; \
      constants and shape arithmetic are folded, and GELU, SiLU, layer norm and PyTorch's \
      Softplus written out in elementary ops are read as what they are. Keras (.keras, a zip): a Sequential of Dense, \
      Conv2D and the pools (channels first), Flatten, Reshape, Dropout, BatchNormalization, \
      LayerNormalization, the activation layers, ZeroPadding2D before a convolution or average \
      pool, and a leading Normalization (folded into the first Dense). Anything else is \
      refused, naming the node or layer, and nothing is written. The session's data is a \
      placeholder to replace before training. See docs/interchange.md.
      """
  )

  @Argument(help: "The model: an ONNX file (.onnx) or a Keras 3 archive (.keras).")
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
      // A zip (a .keras file) by its first bytes, whatever its name; anything else as ONNX.
      let isZip = data.starts(with: [0x50, 0x4B, 0x03, 0x04]) || PathText.pathExtension(model).lowercased() == "keras"
      let (bundle, notes) =
        isZip
        ? try KerasImport.session(from: data, file: model, name: sessionName)
        : try ONNXImport.session(from: data, file: model, name: sessionName)
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
