import Backends
import Bayes
import SpecKit

/// A parsed command line. Spec parts travel as JSON objects (`{"type": "adam", "lr": 0.003}`)
/// that the engine reads with the format's own reader, so commands and files share every rule.
public enum Command: Equatable, Sendable {
  /// A change to the spec: journaled (as `line`, the command as typed) and undoable.
  case edit(Edit, line: String)
  /// Starting, pausing, stopping training, and the backend it runs on.
  case training(TrainingCommand)
  /// A look at the session; changes nothing.
  case query(Query)
  /// Saving, loading, exporting, undo and redo.
  case file(FileCommand)
  /// What only a front end can do; the engine only says so.
  case frontEnd(FrontEndCommand)
  /// Several runs in one workbench: fork, list, switch, drop, sweep, compare (`Workbench`).
  case runs(RunCommand)

  /// Whether the command changes the spec (and so is journaled and can be undone).
  public var changesSpec: Bool { if case .edit = self { true } else { false } }

  /// The command as a user would type it (an edit as it was typed), for logs; it parses back to
  /// the same command.
  public var text: String {
    func word(_ text: String) -> String {
      text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "'" || $0 == "#" })
        ? "\"" + text.replacingOccurrences(of: "\"", with: "'") + "\"" : text
    }
    switch self {
    case .edit(_, let line): return line
    case .training(.train(let steps, let wait)):
      return (["train"] + (steps.map { [String($0)] } ?? []) + (wait ? ["--wait"] : [])).joined(separator: " ")
    case .training(.pause): return "pause"
    case .training(.resume): return "resume"
    case .training(.stop): return "stop"
    case .training(.backend(let name, let options)):
      return (["backend", word(name)] + options.map { word("\($0.key)=\($0.value)") }).joined(separator: " ")
    case .training(.posterior(.off)): return "posterior off"
    case .training(.posterior(.fit(let r))):
      var words = ["posterior", "subset=" + r.subset.rawValue, "hessian=" + r.hessian.rawValue]
      words.append("prior=" + (r.priorPrecision.map { "\($0)" } ?? "tune"))
      if let noise = r.noiseSigma { words.append("noise=\(noise)") }
      words += ["predictive=" + r.predictive.rawValue, "samples=\(r.samples)"]
      return words.joined(separator: " ")
    case .query(.status): return "status"
    case .query(.show(.overview)): return "show"
    case .query(.show(let what)): return "show " + what.rawValue
    case .query(.plot(let what, let logScale, let smoothing)):
      return (["plot", what.rawValue] + (logScale ? ["--log"] : []) + (smoothing.map { ["--smooth", String($0)] } ?? [])).joined(
        separator: " ")
    case .query(.hist(let tensor)): return "hist " + word(tensor)
    case .query(.filters(let layer, let channel)):
      return (["filters", word(layer)] + (channel.map { [String($0)] } ?? [])).joined(separator: " ")
    case .query(.backends): return "backends"
    case .query(.predict(let samples)):
      return (["predict"] + samples.map { $0.map { String($0) }.joined(separator: ",") }).joined(separator: " ")
    case .query(.evaluate(let part)): return (["evaluate"] + (part.map { [$0.rawValue] } ?? [])).joined(separator: " ")
    case .query(.calibration(let part)): return (["calibration"] + (part.map { [$0.rawValue] } ?? [])).joined(separator: " ")
    case .query(.history): return "history"
    case .query(.help(let topic)): return (["help"] + (topic.map { [word($0)] } ?? [])).joined(separator: " ")
    case .file(.save(let path)): return (["save"] + (path.map { [word($0)] } ?? [])).joined(separator: " ")
    case .file(.export(let format, let path, let softmax)):
      return (["export", word(format), word(path)] + (softmax ? ["--softmax"] : [])).joined(separator: " ")
    case .file(.load(let path)): return "load " + word(path)
    case .file(.undo): return "undo"
    case .file(.redo): return "redo"
    case .frontEnd(.dashboard): return "dashboard"
    case .frontEnd(.quit): return "quit"
    case .runs(.fork(let name, let step)):
      return (["fork", word(name)] + (step.map { ["--from-step", String($0)] } ?? [])).joined(separator: " ")
    case .runs(.list): return "runs"
    case .runs(.switchTo(let name)): return "switch " + word(name)
    case .runs(.drop(let name, let force)): return (["drop", word(name)] + (force ? ["--force"] : [])).joined(separator: " ")
    case .runs(.sweep(let axes, let force)):
      return (["sweep"] + axes.map { word($0.text) } + (force ? ["--force"] : [])).joined(separator: " ")
    case .runs(.compare(let names, let axis)):
      return (["compare"] + names.map(word) + (axis == .time ? ["--by", "time"] : [])).joined(separator: " ")
    }
  }
}

/// A change to the spec.
public enum Edit: Equatable, Sendable {
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
  /// The model's input shape (`set input 1,28,28`).
  case input([Int])
  /// Bayes by Backprop over some dense layers (`model.variational`), or off (nil).
  case variational(JSONValue?)

  /// Whether it may be made while training runs (it takes effect at the next step boundary).
  public var appliesWhileTraining: Bool {
    switch self {
    case .optimizer, .schedule, .stopRules: true
    case .new, .data, .add, .remove, .set, .loss, .batch, .seed, .input, .variational: false
    }
  }
}

public enum TrainingCommand: Equatable, Sendable {
  /// `steps` more (nil: until the stop rules end it); `wait`: the front end waits for the end.
  case train(steps: Int?, wait: Bool)
  case pause
  case resume
  case stop
  /// Train on this backend, with these settings (`devices=2`), from the next step boundary, the
  /// state carried across.
  case backend(String, options: [BackendOption] = [])
  /// Fit a Laplace posterior to the weights as they stand, or remove it.
  case posterior(PosteriorAction)
}

/// What `posterior` does.
public enum PosteriorAction: Equatable, Sendable {
  case fit(LaplaceFit.Request)
  case off
}

public enum Query: Equatable, Sendable {
  /// What `show` prints.
  public enum Part: String, CaseIterable, Sendable { case overview, model, optimizer, data, training, spec }
  /// What `plot` draws.
  public enum Chart: String, CaseIterable, Sendable { case loss, accuracy, mae, r2, lr }

  case status
  case show(Part)
  case plot(Chart, logScale: Bool, smoothing: Double?)
  case hist(tensor: String)
  /// `filters LAYER [CHANNEL]`: a conv2d layer's filters as grey images (input channel 0 unless given).
  case filters(layer: String, channel: Int?)
  case backends
  case history
  case help(topic: String?)
  /// `evaluate [train|validation]`: the model on one split (nil: validation when there is one).
  case evaluate(DataPart?)
  /// `predict 5.1,3.5,1.4,0.2 …`: the model's answer for samples typed as raw rows.
  case predict([[Double]])
  /// `calibration [train|validation]`: the point network against the session's Bayesian
  /// predictive (nil: validation when there is one).
  case calibration(DataPart?)
}

public enum FileCommand: Equatable, Sendable {
  case save(path: String?)
  /// `export FORMAT PATH [--softmax]`: onnx, safetensors, pytorch or keras.
  case export(format: String, path: String, softmax: Bool)
  case load(path: String)
  case undo
  case redo
}

/// The workbench's commands over its runs.
public enum RunCommand: Equatable, Sendable {
  /// A copy of the current run (spec and state) under a new name; `fromStep`: its state as it
  /// was at that step, replayed from the start when the history shows the replay is exact.
  case fork(name: String, fromStep: Int?)
  case list
  case switchTo(String)
  /// Removes a run; `force` drops unsaved work without asking.
  case drop(String, force: Bool)
  /// One run for each combination of the axes' values, trained at once; `force` passes the
  /// grid limit.
  case sweep([SweepAxis], force: Bool)
  /// The loss curves, final metrics and differing fields of these runs (all when empty).
  case compare([String], by: CompareAxis)
}

/// One field of a sweep and its values: `optimizer.lr=0.001,0.003`.
public struct SweepAxis: Equatable, Sendable {
  /// The field as typed (`layers[1].units`, `optimizer.lr`).
  public var field: String
  /// Its place in the spec's JSON (`model.layers[1].units`).
  public var path: JSONPath
  public var values: [JSONValue]
  /// The values as typed, for names and the command's text.
  public var texts: [String]

  public var text: String { field + "=" + texts.joined(separator: ",") }
}

/// What `compare` lines runs up by.
public enum CompareAxis: String, Equatable, Sendable, CaseIterable {
  case step
  /// Seconds since each run's training began in this workbench.
  case time
}

public enum FrontEndCommand: Equatable, Sendable {
  /// Open the dashboard.
  case dashboard
  case quit
}

/// A command line that could not be understood: what and where, and a likely fix.
public struct CommandError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
