import Datasets
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
  /// A Keras 3 archive (`.keras`): the `Sequential`'s config and its weights, which Keras
  /// loads on JAX, PyTorch or TensorFlow.
  case keras

  /// What each format carries, for the capability matrix (`specbench backends`): rows of
  /// (what, carried?) in the order the table lists them.
  public static let carries: [(what: String, onnx: String, safetensors: String, pytorch: String, keras: String)] = [
    ("model structure", "yes", "names only", "yes", "yes (Sequential)"),
    ("trained weights and buffers", "yes", "yes", "yes", "yes"),
    ("dropout", "no (identity)", "-", "yes", "yes (Dropout)"),
    (
      "image layers (conv2d, pools, reshape)", "yes (Conv, MaxPool, AveragePool, GlobalAveragePool, Reshape)", "yes (nn.Conv2d names)",
      "yes (nn.Conv2d, nn.MaxPool2d, …)", "yes (Conv2D, …, channels_first; max pools padded only where \"same\" agrees)"
    ),
    ("data standardisation (csv normalize)", "yes (Sub, Div)", "no", "yes", "yes (Normalization)"),
    ("optimizer state (slots, step)", "no", "no", "yes", "no (Keras' rules differ from PyTorch's)"),
    ("optimizer hyper-parameters", "no", "no", "yes", "no"),
    ("schedule", "no", "no", "yes", "no"),
    ("loss", "no", "no", "yes", "no"),
    ("training data", "no", "no", "yes (tensors)", "no"),
    ("stop rules", "no", "no", "max_steps, max_epochs", "no"),
    ("variational layers (model.variational)", "the mean network", "the mean network", "refused", "the mean network"),
    (
      "Laplace posterior (posterior)", "no (the weights are its mean)", "no (the weights are its mean)", "no (the weights are its mean)",
      "no (the weights are its mean)"
    ),
  ]

  /// The file name extension of the main file.
  public var fileExtension: String {
    switch self {
    case .onnx: "onnx"
    case .safetensors: "safetensors"
    case .pytorch: "py"
    case .keras: "keras"
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
  ///
  /// Every output is checked before anything is computed: a folder, device or FIFO is never
  /// replaced (`export … --out /dev/full` writes nothing, in /dev or elsewhere), and no output
  /// may be one of the files the session is read from (`protecting`, its tensor file, its data
  /// files): an export never overwrites its own input.
  public static func export(
    _ bundle: SessionBundle, to format: ExportFormat, path: String, folder: String, softmax: Bool = false, protecting inputs: [String] = []
  ) throws -> Result {
    let main = PathText.pathExtension(path).isEmpty ? path + "." + format.fileExtension : path
    let outputs = format == .pytorch ? [main, PathText.deletingExtension(main) + ".safetensors"] : [main]
    try checkTargets(format: format, path: path, outputs: outputs, inputs: inputs + sessionFiles(bundle.spec, folder: folder))
    // Missing folders are made, as a save makes them.
    let target = PathText.folder(main)
    if !target.isEmpty, FileAccess.resolvedKind(of: target) == nil {
      do { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true) } catch {
        throw InterchangeError.cannotExport(
          format: format.rawValue, reason: "cannot create the folder \(target) (\(error.localizedDescription))")
      }
    }
    let state = try bundle.trainingState()
    if let variational = bundle.spec.model.variational, format == .pytorch {
      throw InterchangeError.cannotExport(
        format: "pytorch",
        reason:
          "model.variational: the script would train \(variational.layers.joined(separator: ", ")) as point weights, not as Bayes by Backprop's Gaussians; export onnx or safetensors for the mean network (nothing was written)"
      )
    }
    var result = try write(bundle, state: state, format: format, main: main, folder: folder, softmax: softmax)
    if let variational = bundle.spec.model.variational {
      result.leftOut.insert(
        "the variational layers' σ (model.variational: \(variational.layers.joined(separator: ", "))): the file holds the mean network",
        at: 0)
    }
    if bundle.spec.posterior != nil {
      result.leftOut.insert("the Laplace posterior (posterior): the file holds its mean, the trained weights", at: 0)
    }
    return result
  }

  /// Writes the format's files.
  static func write(_ bundle: SessionBundle, state: TrainingState, format: ExportFormat, main: String, folder: String, softmax: Bool) throws
    -> Result
  {
    switch format {
    case .onnx:
      var (standardization, classNames, unread): (Standardization?, [String]?, String?) = (nil, nil, nil)
      do { (standardization, classNames) = try preprocessing(bundle.spec, folder: folder) } catch {
        unread = "\(error)"
      }
      var (bytes, leftOut) = try ONNXExport.export(
        spec: bundle.spec, state: state, softmax: softmax, standardization: standardization, classNames: classNames)
      if let unread {
        let standardizes = if case .csv(let csv) = bundle.spec.data.source { csv.normalize } else { false }
        leftOut.insert(
          (standardizes ? "the data's standardisation (data.normalize): the graph expects standardised inputs, and " : "")
            + "the class names: the data could not be read (\(unread))", at: 0)
      }
      try AtomicFile.write(bytes, to: main, what: "an export")
      return Result(files: [main], leftOut: leftOut)
    case .safetensors:
      guard !softmax else { throw InterchangeError.cannotExport(format: "safetensors", reason: "--softmax applies to onnx only") }
      var (contents, leftOut) = try TorchExport.stateDict(spec: bundle.spec, state: state)
      if case .csv(let csv) = bundle.spec.data.source, csv.normalize {
        leftOut.insert(
          "the data's standardisation (data.normalize): the weights expect rows standardised with the training split's statistics (the onnx and pytorch formats carry them)",
          at: 0)
      }
      try AtomicFile.write(SafeTensors.encode(contents), to: main, what: "an export")
      return Result(files: [main], leftOut: leftOut)
    case .keras:
      guard !softmax else { throw InterchangeError.cannotExport(format: "keras", reason: "--softmax applies to onnx only") }
      var standardization: Standardization?
      var leftOutFirst: [String] = []
      do { standardization = try preprocessing(bundle.spec, folder: folder).0 } catch {
        if case .csv(let csv) = bundle.spec.data.source, csv.normalize {
          leftOutFirst.append(
            "the data's standardisation (data.normalize): the data could not be read (\(error)), so the model expects standardised inputs")
        }
      }
      let (bytes, leftOut) = try KerasExport.export(spec: bundle.spec, state: state, standardization: standardization)
      try AtomicFile.write(bytes, to: main, what: "an export")
      return Result(files: [main], leftOut: leftOutFirst + leftOut)
    case .pytorch:
      guard !softmax else { throw InterchangeError.cannotExport(format: "pytorch", reason: "--softmax applies to onnx only") }
      let tensorsPath = PathText.deletingExtension(main) + ".safetensors"
      let export = try TorchExport.script(
        bundle: bundle, state: state, scriptFile: PathText.lastComponent(main),
        tensorsFile: PathText.lastComponent(tensorsPath), folder: folder)
      try AtomicFile.write(SafeTensors.encode(export.tensors), to: tensorsPath, what: "an export")
      try AtomicFile.write(Array(export.script.utf8), to: main, what: "an export")
      return Result(files: [main, tensorsPath], leftOut: export.leftOut)
    }
  }

  /// What the session does to its data before the model sees it (a csv source's standardisation,
  /// with the training split's statistics), and its class names: part of the model a user hands
  /// over. Synthetic sources need neither (their class names are their label numbers).
  static func preprocessing(_ spec: SessionSpec, folder: String) throws -> (Standardization?, [String]?) {
    switch spec.data.source {
    case .csv, .builtin:
      let (split, names) = try DataSplit.of(spec, relativeTo: folder)
      return (split.standardization, names)
    default:
      return (nil, nil)
    }
  }

  /// The files a session is read from besides its spec: its tensor file and its data files.
  static func sessionFiles(_ spec: SessionSpec, folder: String) -> [String] {
    var files: [String] = []
    let join = { (name: String) in name.hasPrefix("/") ? name : PathText.join(folder, name) }
    if let state = spec.state { files.append(join(state.tensors)) }
    if let metrics = spec.history.metrics { files.append(join(metrics.file)) }
    return files + spec.data.source.files.map(join)
  }

  static func checkTargets(format: ExportFormat, path: String, outputs: [String], inputs: [String]) throws(InterchangeError) {
    do {
      // `--out /dev/full` must not write /dev/full.onnx beside the device.
      if !outputs.contains(path) { _ = try FileAccess.writableTarget(path, what: "an export") }
      for output in outputs { _ = try FileAccess.writableTarget(output, what: "an export") }
    } catch {
      throw .cannotExport(format: format.rawValue, reason: error.description)
    }
    for output in outputs {
      if let input = inputs.first(where: { FileAccess.sameFile(output, $0) }) {
        throw .cannotExport(
          format: format.rawValue,
          reason: "\(output) is \(input), which the session is read from; export to another path (nothing was written)")
      }
    }
  }
}
