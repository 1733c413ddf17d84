import Backends
import Bayes
import SpecKit

/// Turns one line of the command language into a `Command`. Pure: no session needed.
///
/// Words are separated by spaces; `"…"` or `'…'` quote a word; `#` starts a comment.
/// `key=value` words become fields of the spec part; a value is read as JSON when it is JSON
/// (`0.003`, `true`, `[2, 3]`, `"x y"`), otherwise as a plain string (`relu`).
public enum CommandParser {
  public static func parse(_ line: String) throws(CommandError) -> Command? {
    let words = try split(line)
    guard let head = words.first else { return nil }
    let args = Array(words.dropFirst())
    switch head.lowercased() {
    case "new":
      guard let name = args.first, !name.hasPrefix("-") else { throw usage("new") }
      var input: [Int]?
      var rest = args.dropFirst()
      while let word = rest.first {
        rest = rest.dropFirst()
        guard word == "--input", let dims = rest.first else {
          throw CommandError("new: unknown option \(word); usage: \(CommandTable.info("new")!.usage)")
        }
        rest = rest.dropFirst()
        input = try sizes(dims, what: "new: --input")
      }
      return .edit(.new(name: name, input: input), line: line)
    case "data":
      return .edit(.data(try typed(args, command: "data")), line: line)
    case "add":
      return .edit(.add(layer: try layer(args), index: nil), line: line)
    case "insert":
      guard let first = args.first, let index = Int(first), index >= 0 else { throw usage("insert") }
      return .edit(.add(layer: try layer(Array(args.dropFirst()), command: "insert"), index: index), line: line)
    case "remove":
      guard args.count == 1 else { throw usage("remove") }
      return .edit(.remove(layer: args[0]), line: line)
    case "set":
      guard args.count >= 2 else { throw usage("set") }
      // `set input 1,28,28`: the model's input shape (a layer is never set without key=value).
      if args[0] == "input", args.count == 2, !args[1].contains("=") {
        return .edit(.input(try sizes(args[1], what: "set input")), line: line)
      }
      return .edit(.set(layer: args[0], fields: try fields(Array(args.dropFirst()), command: "set")), line: line)
    case "loss":
      return .edit(.loss(try typed(args, command: "loss")), line: line)
    case "optimizer":
      guard !args.isEmpty else { throw usage("optimizer") }
      return .edit(
        .optimizer(args[0].contains("=") ? try fields(args, command: "optimizer") : try typed(args, command: "optimizer")), line: line)
    case "schedule":
      return .edit(.schedule(try typed(args, command: "schedule")), line: line)
    case "stop":
      guard !args.isEmpty else { return .training(.stop) }
      return .edit(.stopRules(try stopRules(args)), line: line)
    case "batch":
      guard args.count == 1, let size = Int(args[0]), size > 0 else {
        throw CommandError("batch: the size must be a positive integer, such as batch 64")
      }
      return .edit(.batch(size), line: line)
    case "seed":
      guard args.count == 1, let seed = UInt64(args[0]) else {
        throw CommandError("seed: the seed must be an integer from 0 to 2^64 − 1, such as seed 7")
      }
      return .edit(.seed(seed), line: line)
    case "train":
      var steps: Int?
      var wait = false
      for word in args {
        if word == "--wait" {
          wait = true
        } else if let n = Int(word), n > 0, steps == nil {
          guard n <= StateSpec.stepLimit else {
            throw CommandError("train: \(word) steps is more than a session counts (at most 2^53 = \(StateSpec.stepLimit))")
          }
          steps = n
        } else {
          throw CommandError("train: expected a number of steps and/or --wait, got \(word); usage: train [STEPS] [--wait]")
        }
      }
      return .training(.train(steps: steps, wait: wait))
    case "pause": return try bare(.training(.pause), "pause", args)
    case "resume": return try bare(.training(.resume), "resume", args)
    case "status": return try bare(.query(.status), "status", args)
    case "show":
      // `show` alone is the overview; a word names a part.
      let targets = Query.Part.allCases.filter { $0 != .overview }.map(\.rawValue)
      if args.isEmpty { return .query(.show(.overview)) }
      guard args.count == 1, targets.contains(args[0]), let part = Query.Part(rawValue: args[0]) else {
        throw CommandError(
          "show: expected one of \(targets.joined(separator: ", "))"
            + (args.first.flatMap { Suggestion.nearest(to: $0, in: targets) }.map { " — did you mean \"\($0)\"?" } ?? ""))
      }
      return .query(.show(part))
    case "plot":
      guard let what = args.first.flatMap(Query.Chart.init(rawValue:)) else {
        let charts = Query.Chart.allCases.map(\.rawValue)
        throw CommandError(
          "plot: expected one of \(charts.joined(separator: ", "))"
            + (args.first.flatMap { Suggestion.nearest(to: $0, in: charts) }.map { " — did you mean \"\($0)\"?" } ?? ""))
      }
      var logScale = false
      var smoothing: Double?
      var rest = args.dropFirst()
      while let word = rest.first {
        rest = rest.dropFirst()
        switch word {
        case "--log": logScale = true
        case "--smooth":
          guard let text = rest.first, let value = Double(text), value >= 0, value < 1 else {
            throw CommandError("plot: --smooth needs a weight in [0, 1), such as --smooth 0.6")
          }
          smoothing = value
          rest = rest.dropFirst()
        default: throw CommandError("plot: unknown option \(word); usage: \(CommandTable.info("plot")!.usage)")
        }
      }
      return .query(.plot(what, logScale: logScale, smoothing: smoothing))
    case "hist":
      guard args.count == 1 else { throw usage("hist") }
      return .query(.hist(tensor: args[0]))
    case "filters":
      guard args.count == 1 || args.count == 2 else { throw usage("filters") }
      var channel: Int?
      if args.count == 2 {
        guard let c = Int(args[1]), c >= 0 else {
          throw CommandError("filters: the input channel must be a whole number from 0, got \(TextExcerpt.quoted(args[1]))")
        }
        channel = c
      }
      return .query(.filters(layer: args[0], channel: channel))
    case "backend":
      guard let name = args.first else { throw usage("backend") }
      var options: [BackendOption] = []
      for word in args.dropFirst() {
        guard let equals = word.firstIndex(of: "="), equals != word.startIndex, word.index(after: equals) != word.endIndex else {
          throw CommandError("backend: \(word) is not KEY=VALUE; usage: \(CommandTable.info("backend")!.usage)")
        }
        options.append(BackendOption(key: String(word[..<equals]), value: String(word[word.index(after: equals)...])))
      }
      return .training(.backend(name, options: options))
    case "backends": return try bare(.query(.backends), "backends", args)
    case "export":
      let softmax = args.contains("--softmax")
      let rest = args.filter { $0 != "--softmax" }
      guard rest.count == 2 else { throw usage("export") }
      return .file(.export(format: rest[0], path: rest[1], softmax: softmax))
    case "save":
      guard args.count <= 1 else { throw usage("save") }
      return .file(.save(path: args.first))
    case "load":
      guard args.count == 1 else { throw usage("load") }
      return .file(.load(path: args[0]))
    case "undo": return try bare(.file(.undo), "undo", args)
    case "redo": return try bare(.file(.redo), "redo", args)
    case "history": return try bare(.query(.history), "history", args)
    case "predict":
      guard !args.isEmpty else { throw usage("predict") }
      return .query(
        .predict(
          try args.map { word throws(CommandError) -> [Double] in
            let values = word.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            guard !values.isEmpty, values.allSatisfy({ $0?.isFinite == true }) else {
              throw CommandError(
                "predict: a sample is finite numbers separated by commas, such as 5.1,3.5,1.4,0.2; got \(TextExcerpt.quoted(word))")
            }
            return values.map { $0! }
          }))
    case "calibration":
      return .query(.calibration(try split(args, command: "calibration")))
    case "posterior":
      return .training(.posterior(try posterior(args)))
    case "variational":
      return .edit(.variational(try variational(args)), line: line)
    case "evaluate":
      return .query(.evaluate(try split(args, command: "evaluate")))
    case "help":
      guard args.count <= 1 else { throw usage("help") }
      return .query(.help(topic: args.first))
    case "fork":
      guard let name = args.first, !name.hasPrefix("-") else { throw usage("fork") }
      var step: Int?
      var rest = args.dropFirst()
      while let word = rest.first {
        rest = rest.dropFirst()
        guard word == "--from-step", let text = rest.first, let k = Int(text), k >= 0, k <= StateSpec.stepLimit else {
          throw CommandError(
            "fork: expected --from-step STEP (a step from 0), got \(TextExcerpt.quoted(word)); usage: \(CommandTable.info("fork")!.usage)")
        }
        rest = rest.dropFirst()
        step = k
      }
      return .runs(.fork(name: try runName(name, command: "fork"), fromStep: step))
    case "runs": return try bare(.runs(.list), "runs", args)
    case "switch":
      guard args.count == 1 else { throw usage("switch") }
      return .runs(.switchTo(args[0]))
    case "drop":
      let force = args.contains("--force")
      let rest = args.filter { $0 != "--force" }
      guard rest.count == 1 else { throw usage("drop") }
      return .runs(.drop(rest[0], force: force))
    case "sweep":
      let force = args.contains("--force")
      let rest = args.filter { $0 != "--force" }
      guard !rest.isEmpty else { throw usage("sweep") }
      var axes: [SweepAxis] = []
      for word in rest {
        let axis = try sweepAxis(word)
        guard !axes.contains(where: { $0.path == axis.path }) else {
          throw CommandError("sweep: \(axis.field) is given twice; give each field once with all its values")
        }
        axes.append(axis)
      }
      return .runs(.sweep(axes, force: force))
    case "compare":
      var names: [String] = []
      var axis = CompareAxis.step
      var rest = args[...]
      while let word = rest.first {
        rest = rest.dropFirst()
        if word == "--by" {
          guard let text = rest.first, let chosen = CompareAxis(rawValue: text) else {
            throw CommandError("compare: --by takes step or time")
          }
          axis = chosen
          rest = rest.dropFirst()
        } else if word.hasPrefix("-") {
          throw CommandError("compare: unknown option \(TextExcerpt.quoted(word)); usage: \(CommandTable.info("compare")!.usage)")
        } else {
          names.append(word)
        }
      }
      return .runs(.compare(names, by: axis))
    case "quit", "exit": return try bare(.frontEnd(.quit), head, args)
    case "dashboard": return try bare(.frontEnd(.dashboard), head, args)
    default:
      throw CommandError("unknown command \"\(head)\"" + CommandTable.hint(head))
    }
  }

  // MARK: Bayes

  /// `posterior [off] [subset=…] [hessian=…] [prior=NUMBER|tune] [noise=NUMBER] [predictive=…] [samples=N]`.
  public static func posterior(_ args: [String]) throws(CommandError) -> PosteriorAction {
    if args == ["off"] { return .off }
    var request = LaplaceFit.Request()
    for word in args {
      guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
        throw CommandError(
          "posterior: expected key=value or off, got \(TextExcerpt.quoted(word)); usage: \(CommandTable.info("posterior")!.usage)")
      }
      let (key, text) = (String(word[..<equals]), String(word[word.index(after: equals)...]))
      func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws(CommandError) -> T where T.RawValue == String {
        guard let value = T(rawValue: text) else {
          let names = T.allCases.map(\.rawValue)
          throw CommandError(
            "posterior: \(key) must be one of \(names.joined(separator: ", ")), got \(TextExcerpt.quoted(text))"
              + (Suggestion.nearest(to: text, in: names).map { " — did you mean \"\($0)\"?" } ?? ""))
        }
        return value
      }
      func positive() throws(CommandError) -> Double {
        guard let value = Double(text), value.isFinite, value >= Double(Float.leastNormalMagnitude),
          value <= Double(Float.greatestFiniteMagnitude)
        else {
          throw CommandError("posterior: \(key) must be a positive number, got \(TextExcerpt.quoted(text))")
        }
        return value
      }
      switch key {
      case "subset": request.subset = try choice(PosteriorSpec.Subset.self)
      case "hessian": request.hessian = try choice(PosteriorSpec.Hessian.self)
      case "predictive": request.predictive = try choice(PosteriorSpec.Predictive.self)
      case "prior": request.priorPrecision = text == "tune" ? nil : try positive()
      case "noise": request.noiseSigma = try positive()
      case "samples":
        guard let n = Int(text), n >= 1, n <= PosteriorSpec.maxSamples else {
          throw CommandError("posterior: samples must be an integer from 1 to \(PosteriorSpec.maxSamples), got \(TextExcerpt.quoted(text))")
        }
        request.samples = n
      default:
        let keys = ["subset", "hessian", "prior", "noise", "predictive", "samples"]
        throw CommandError(
          "posterior: unknown setting \(TextExcerpt.quoted(key)); settings: \(keys.joined(separator: ", "))"
            + (Suggestion.nearest(to: key, in: keys).map { " — did you mean \"\($0)\"?" } ?? ""))
      }
    }
    return .fit(request)
  }

  /// `variational LAYER[,LAYER…] [prior=gaussian|scale_mixture] [sigma=…] [pi=…] [sigma1=…]
  /// [sigma2=…] [kl_weight=…] [rho_init=…] [train_samples=…] [predict_samples=…]`, or `off`.
  static func variational(_ args: [String]) throws(CommandError) -> JSONValue? {
    guard let first = args.first else { throw usage("variational") }
    if args == ["off"] { return nil }
    guard !first.contains("=") else { throw usage("variational") }
    let layers = first.split(separator: ",").map { JSONValue.string(String($0)) }
    var prior: [JSONObject.Member] = []
    var rest: [String] = []
    for word in args.dropFirst() {
      if let equals = word.firstIndex(of: "="), ["prior", "sigma", "pi", "sigma1", "sigma2"].contains(String(word[..<equals])) {
        let key = String(word[..<equals])
        prior.append(.init(key: key == "prior" ? "type" : key, value: value(String(word[word.index(after: equals)...]))))
      } else {
        rest.append(word)
      }
    }
    var members: [JSONObject.Member] = [.init(key: "layers", value: .array(layers))]
    if !prior.isEmpty {
      if !prior.contains(where: { $0.key == "type" }) { prior.insert(.init(key: "type", value: .string("gaussian")), at: 0) }
      members.append(.init(key: "prior", value: .object(prior)))
    }
    return try fields(rest, command: "variational", into: members)
  }

  // MARK: words

  /// Splits a line into words: quotes group, `#` outside quotes ends the line.
  static func split(_ line: String) throws(CommandError) -> [String] {
    var words: [String] = []
    var current = ""
    var quote: Character?
    var inWord = false
    for ch in line {
      if let q = quote {
        if ch == q { quote = nil } else { current.append(ch) }
      } else if ch == "\"" || ch == "'" {
        quote = ch
        inWord = true
      } else if ch == "#" {
        break
      } else if ch.isWhitespace {
        if inWord { words.append(current) }
        current = ""
        inWord = false
      } else {
        current.append(ch)
        inWord = true
      }
    }
    if quote != nil { throw CommandError("a quote is not closed") }
    if inWord { words.append(current) }
    return words
  }

  /// A `key=value` word's value: JSON when it parses as JSON, otherwise the text itself.
  /// A JSON value as typed; integers separated by commas (`3,3`, `16,-1`) are an array of them
  /// (a kernel, a stride, a shape).
  static func value(_ text: String) -> JSONValue {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    if parts.count > 1, case let numbers = parts.compactMap({ Int($0) }), numbers.count == parts.count {
      return .array(numbers.map { .int($0) })
    }
    return (try? JSONParser.parse(text)).map { JSONValue($0.kind) } ?? .string(text)
  }

  static func fields(_ words: [String], command: String, into members: [JSONObject.Member] = []) throws(CommandError) -> JSONValue {
    var members = members
    for word in words {
      guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
        throw CommandError("\(command): expected key=value, got \(word); usage: \(CommandTable.info(command)?.usage ?? command)")
      }
      let key = String(word[..<equals])
      let member = JSONObject.Member(key: key, value: value(String(word[word.index(after: equals)...])))
      if let i = members.firstIndex(where: { $0.key == key }) { members[i] = member } else { members.append(member) }
    }
    return .object(members)
  }

  /// `TYPE key=value ...` as `{"type": TYPE, key: value, ...}`.
  static func typed(_ words: [String], command: String) throws(CommandError) -> JSONValue {
    guard let type = words.first, !type.contains("=") else { throw usage(command) }
    return try fields(Array(words.dropFirst()), command: command, into: [.init(key: "type", value: .string(type))])
  }

  /// A layer: `dense 64 relu`, `dropout 0.2`, `activation tanh`, `conv2d 16 3 relu`,
  /// `max_pool2d 2`, `reshape 1,8,8`, or `TYPE key=value ...`.
  static func layer(_ words: [String], command: String = "add") throws(CommandError) -> JSONValue {
    guard let type = words.first else { throw usage(command) }
    // An unknown type is the one mistake to report: its arguments cannot be read without it.
    guard LayerSpec.typeNames.contains(type) else {
      throw CommandError(
        "\(command): unknown layer type \(TextExcerpt.quoted(type)); types: \(LayerSpec.typeNames.joined(separator: ", "))"
          + (Suggestion.nearest(to: type, in: LayerSpec.typeNames).map { " — did you mean \"\($0)\"?" } ?? ""))
    }
    var members: [JSONObject.Member] = [.init(key: "type", value: .string(type))]
    var rest = Array(words.dropFirst())
    let positional: [String] =
      switch type {
      case "dense": ["units", "activation"]
      case "dropout": ["rate"]
      case "activation": ["function"]
      case "conv2d": ["filters", "kernel", "activation"]
      case "max_pool2d", "avg_pool2d": ["kernel"]
      case "reshape": ["shape"]
      default: []
      }
    for key in positional {
      guard let word = rest.first, !word.contains("=") else { break }
      members.append(.init(key: key, value: value(word)))
      rest.removeFirst()
    }
    return try fields(rest, command: command, into: members)
  }

  /// `max_steps 2000, target_loss value=0.02`: rules separated by commas; the first value of
  /// max_steps, max_epochs, time_limit and target_loss may be given without its key.
  static func stopRules(_ words: [String]) throws(CommandError) -> [JSONValue] {
    var groups: [[String]] = [[]]
    for word in words {
      var piece = word
      let endsGroup = piece.hasSuffix(",")
      if endsGroup { piece.removeLast() }
      if !piece.isEmpty { groups[groups.count - 1].append(piece) }
      if endsGroup { groups.append([]) }
    }
    let firstKey = ["max_steps": "steps", "max_epochs": "epochs", "time_limit": "seconds", "target_loss": "value"]
    return try groups.filter { !$0.isEmpty }.map { group throws(CommandError) -> JSONValue in
      var words = group
      if words.count >= 2, let key = firstKey[words[0]], !words[1].contains("=") { words[1] = "\(key)=\(words[1])" }
      return try typed(words, command: "stop")
    }
  }

  /// `2` or `1,28,28`: positive sizes separated by commas.
  static func sizes(_ text: String, what: String) throws(CommandError) -> [Int] {
    let parsed = text.split(separator: ",", omittingEmptySubsequences: false).compactMap { Int($0) }
    guard !parsed.isEmpty, parsed.count == text.split(separator: ",", omittingEmptySubsequences: false).count, parsed.allSatisfy({ $0 > 0 })
    else {
      throw CommandError("\(what) must be positive sizes separated by commas, such as 2 or 1,28,28; got \(text)")
    }
    return parsed
  }

  /// `[train|validation]`: the split a command looks at, nil when not given.
  static func split(_ args: [String], command: String) throws(CommandError) -> DataPart? {
    guard args.count <= 1 else { throw usage(command) }
    guard let word = args.first else { return nil }
    guard let part = DataPart(rawValue: word) else {
      throw CommandError("\(command): expected train or validation, got \(TextExcerpt.quoted(word))")
    }
    return part
  }

  /// Parses `line` and hands its command to `perform`; a line without a command (empty, a
  /// comment) calls `blank` and is done; a line that does not parse fails with why.
  static func run(_ line: String, perform: (Command) -> CommandOutcome, blank: () -> Void) -> CommandOutcome {
    do {
      guard let command = try parse(line) else {
        blank()
        return .done("")
      }
      return perform(command)
    } catch {
      return .failed(error.message)
    }
  }

  // MARK: runs

  /// A run's name (`WorkspaceIndex.isRunName`: letters, digits and `. _ = , + -`, at most 64,
  /// not starting with `.` or `-`): it is also the stem of its file in a saved workspace.
  public static func runName(_ text: String, command: String) throws(CommandError) -> String {
    guard WorkspaceIndex.isRunName(text) else {
      throw CommandError(
        "\(command): a run's name is 1 to \(WorkspaceIndex.nameLimit) letters, digits and . _ = , + - (not starting with . or -), got \(TextExcerpt.quoted(text))"
      )
    }
    return text
  }

  /// `FIELD=V1,V2,…`: the field as a path into the spec's JSON (a path that does not start at
  /// the spec's top level is read under `model`, so `layers[1].units` works), the values split
  /// at the commas outside brackets and quotes, each JSON when it parses as JSON.
  static func sweepAxis(_ word: String) throws(CommandError) -> SweepAxis {
    guard let equals = word.firstIndex(of: "="), equals != word.startIndex, word.index(after: equals) != word.endIndex else {
      throw CommandError("sweep: expected FIELD=V1,V2,…, got \(TextExcerpt.quoted(word)); usage: \(CommandTable.info("sweep")!.usage)")
    }
    let field = String(word[..<equals])
    var components: [JSONPath.Component] = []
    for piece in field.split(separator: ".", omittingEmptySubsequences: false) {
      var rest = Substring(piece)
      let key = rest.prefix { $0 != "[" }
      guard !key.isEmpty else {
        throw CommandError("sweep: \(TextExcerpt.quoted(field)) is not a field path such as optimizer.lr or layers[1].units")
      }
      components.append(.key(String(key)))
      rest = rest.dropFirst(key.count)
      while rest.hasPrefix("[") {
        guard let close = rest.firstIndex(of: "]"), let index = Int(rest[rest.index(after: rest.startIndex)..<close]), index >= 0 else {
          throw CommandError("sweep: \(TextExcerpt.quoted(field)) has a bad index; write layers[1].units")
        }
        components.append(.index(index))
        rest = rest[rest.index(after: close)...]
      }
      guard rest.isEmpty else {
        throw CommandError("sweep: \(TextExcerpt.quoted(field)) is not a field path such as optimizer.lr or layers[1].units")
      }
    }
    var texts: [String] = []
    var current = ""
    var depth = 0
    var quoted = false
    for ch in word[word.index(after: equals)...] {
      if ch == "\"" { quoted.toggle() }
      if !quoted && (ch == "[" || ch == "{") { depth += 1 }
      if !quoted && (ch == "]" || ch == "}") { depth -= 1 }
      if ch == ",", depth == 0, !quoted {
        texts.append(current)
        current = ""
      } else {
        current.append(ch)
      }
    }
    texts.append(current)
    guard texts.allSatisfy({ !$0.isEmpty }) else { throw CommandError("sweep: \(field) has an empty value; write \(field)=V1,V2") }
    guard Set(texts).count == texts.count else { throw CommandError("sweep: \(field) repeats a value") }
    let values = texts.map { text in (try? JSONParser.parse(text)).map { JSONValue($0.kind) } ?? .string(text) }
    return SweepAxis(field: field, path: JSONPath(components), values: values, texts: texts)
  }

  static func bare(_ command: Command, _ name: String, _ args: [String]) throws(CommandError) -> Command {
    guard args.isEmpty else { throw CommandError("\(name) takes no arguments, got \(args.joined(separator: " "))") }
    return command
  }

  static func usage(_ name: String) -> CommandError {
    CommandError("\(name): usage: \(CommandTable.info(name)?.usage ?? name)")
  }
}
