import ArgumentParser
import Backends
import Foundation
import Interchange
import Session
import SpecKit

struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Write a session in another format: onnx, safetensors (PyTorch's state_dict names), pytorch (a training script) or keras (a Keras 3 file).",
    discussion: """
      onnx: the inference graph with the trained weights (opset 17), input "input" and output \
      "output" with a dynamic batch dimension. safetensors: the parameters and buffers named as \
      the matching torch.nn.Sequential's state_dict. pytorch: PATH.py, a script that builds the \
      model, loads the weights and the optimizer's state and continues training, with \
      PATH.safetensors beside it. keras: PATH.keras, a Keras 3 archive (config.json, \
      model.weights.h5) that keras.saving.load_model opens on JAX, PyTorch or TensorFlow. A \
      session without state exports its seeded initial weights. \
      What a format cannot carry is listed. See docs/interchange.md.
      """
  )

  @Argument(help: "The session file (NAME.json).")
  var file: String

  @Option(help: "The format: onnx, safetensors, pytorch or keras.")
  var to: String

  @Option(help: "Where to write (the format's extension is added when PATH has none).")
  var out: String

  @Flag(help: "onnx: end the graph with a softmax, so that the output is probabilities.")
  var softmax = false

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    access.apply()
    let bundle: SessionBundle
    do { bundle = try SessionFile.load(file) } catch { throw fail(error) }
    do {
      let format = try ExportFormat.named(to)
      let result = try Exporter.export(
        bundle, to: format, path: out, folder: PathText.folder(file), softmax: softmax,
        protecting: [file, SessionFile.paths(for: file).json])
      say("wrote " + result.files.joined(separator: " and "))
      for item in result.leftOut { say("  not carried: \(item)") }
    } catch let error as CustomStringConvertible {
      throw failWith("\(error.description)")
    }
  }
}
