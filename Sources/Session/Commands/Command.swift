import SpecKit

/// A parsed command line. Spec parts travel as JSON objects (`{"type": "adam", "lr": 0.003}`)
/// that the engine reads with the format's own reader, so commands and files share every rule.
public enum Command: Equatable, Sendable {
  case new(name: String, input: [Int]?)
  case data(JSONValue)
  /// A layer object; `index` nil appends.
  case add(layer: JSONValue, index: Int?)
  case remove(layer: String)
  case set(layer: String, fields: JSONValue)
  case loss(JSONValue)
  /// An optimizer object; without `type` the current optimizer's type is kept (hot-swap of lr).
  case optimizer(JSONValue)
  case schedule(JSONValue)
  case stopRules([JSONValue])
  case batch(Int)
  case seed(UInt64)
  case train(steps: Int?, wait: Bool)
  case pause
  case resume
  case stopTraining
  case status
  case show(String)
  case plot(what: String, logScale: Bool, smoothing: Double?)
  case hist(tensor: String)
  case backend(String)
  case backends
  case save(path: String?)
  /// `export FORMAT PATH [--softmax]`: onnx, safetensors or pytorch.
  case export(format: String, path: String, softmax: Bool)
  case load(path: String)
  case undo
  case redo
  case history
  case help(topic: String?)
  /// Open the dashboard (a front end's business: the engine only says so).
  case dashboard
  case quit

  /// Whether the command changes the spec (and so is journaled and can be undone).
  public var changesSpec: Bool {
    switch self {
    case .new, .data, .add, .remove, .set, .loss, .optimizer, .schedule, .stopRules, .batch, .seed: true
    default: false
    }
  }
}

/// A command line that could not be understood: what and where, and a likely fix.
public struct CommandError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
