import Foundation
import SpecKit

/// The formats a session can be exported to, and what each can carry.
public enum ExportFormat: String, CaseIterable, Sendable {
  /// The inference graph with its weights (opset 17).
  case onnx
  /// The parameters and buffers alone, with PyTorch's `state_dict` names for the matching
  /// `torch.nn.Sequential`.
  case safetensors
  /// A self-contained Python script that builds the `nn.Sequential`, loads the weights,
  /// restores `torch.optim`'s state and continues training; its tensors beside it.
  case pytorch

  /// What each format carries, for the capability matrix (`specbench backends`): rows of
  /// (what, carried?) in the order the table lists them.
  public static let carries: [(what: String, onnx: String, safetensors: String, pytorch: String)] = [
    ("model structure", "yes", "names only", "yes"),
    ("trained weights and buffers", "yes", "yes", "yes"),
    ("dropout", "no (identity)", "-", "yes"),
    ("optimizer state (slots, step)", "no", "no", "yes"),
    ("optimizer hyper-parameters", "no", "no", "yes"),
    ("schedule", "no", "no", "yes"),
    ("loss", "no", "no", "yes"),
    ("training data", "no", "no", "yes (tensors)"),
    ("stop rules", "no", "no", "max_steps, max_epochs"),
  ]

  /// The file name extension of the main file.
  public var fileExtension: String {
    switch self {
    case .onnx: "onnx"
    case .safetensors: "safetensors"
    case .pytorch: "py"
    }
  }

  public static func named(_ name: String) throws(InterchangeError) -> ExportFormat {
    guard let format = ExportFormat(rawValue: name.lowercased()) else {
      throw .unknownFormat(name: name, known: allCases.map(\.rawValue))
    }
    return format
  }
}

/// Writes a session in another format.
public enum Exporter {
  /// What an export wrote and what the format could not carry.
  public struct Result: Sendable {
    public var files: [String]
    public var leftOut: [String]
  }

  /// Exports `bundle` (its state, or the seeded initial state when it has none) to `path`:
  /// `PATH.onnx`; `PATH.safetensors`; or `PATH.py` with `PATH.safetensors` beside it (the
  /// extension is added when `path` has none). Every file is written to a temporary name and
  /// renamed, so a failure leaves nothing half-written. `folder` is where the session file is
  /// (its data paths are relative to it; the pytorch format saves the training data).
  public static func export(_ bundle: SessionBundle, to format: ExportFormat, path: String, folder: String, softmax: Bool = false) throws
    -> Result
  {
    let state = try bundle.trainingState()
    let main = (path as NSString).pathExtension.isEmpty ? path + "." + format.fileExtension : path
    switch format {
    case .onnx:
      let (bytes, leftOut) = try ONNXExport.export(spec: bundle.spec, state: state, softmax: softmax)
      try AtomicFile.write(bytes, to: main)
      return Result(files: [main], leftOut: leftOut)
    case .safetensors:
      guard !softmax else { throw InterchangeError.cannotExport(format: "safetensors", reason: "--softmax applies to onnx only") }
      let (contents, leftOut) = try TorchExport.stateDict(spec: bundle.spec, state: state)
      try AtomicFile.write(SafeTensors.encode(contents), to: main)
      return Result(files: [main], leftOut: leftOut)
    case .pytorch:
      guard !softmax else { throw InterchangeError.cannotExport(format: "pytorch", reason: "--softmax applies to onnx only") }
      let tensorsPath = (main as NSString).deletingPathExtension + ".safetensors"
      let export = try TorchExport.script(
        bundle: bundle, state: state, scriptFile: (main as NSString).lastPathComponent,
        tensorsFile: (tensorsPath as NSString).lastPathComponent, folder: folder)
      try AtomicFile.write(SafeTensors.encode(export.tensors), to: tensorsPath)
      try AtomicFile.write(Array(export.script.utf8), to: main)
      return Result(files: [main, tensorsPath], leftOut: export.leftOut)
    }
  }
}
