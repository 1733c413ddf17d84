import Testing

@testable import SpecKit

@Suite("Spec decoding and validation")
struct SpecDecodingTests {
  @Test func baseDocumentDecodesWithDefaults() throws {
    let spec = try SessionSpec.decode(baseDocument())
    #expect(spec.model.layers.map(\.name) == ["dense1", "dense2"])
    #expect(spec.schedule == .constant)
    #expect(spec.backend == "reference")
    #expect(spec.state == nil && spec.journal.isEmpty && spec.history.isEmpty)
    #expect(spec.optimizer == .adam(.init(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, amsgrad: false)))
    #expect(
      spec.training
        == TrainingSpec(
          batchSize: 16, shuffle: true, seed: 0, stop: [.maxSteps(steps: 1000)], record: RecordSpec(every: 1, histogramsEvery: 50)))
    #expect(spec.data == DataSpec(source: .spirals(samples: 90, classes: 3, noise: 0.1, seed: 0), validationFraction: 0))
    guard case .dense(let dense) = spec.model.layers[1].kind else {
      Issue.record("not dense")
      return
    }
    #expect(
      dense == DenseLayer(units: 3, activation: .identity, useBias: true, initializer: DenseInit(weight: .glorotUniform, bias: .zeros)))
  }

  /// Every documented default, field by field, read from a minimal object.
  @Test(arguments: [
    (
      "optimizer", #"{"type": "sgd", "lr": 0.5}"#,
      OptimizerSpec.sgd(.init(lr: 0.5, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0))
    ),
    ("optimizer", #"{"type": "adamw"}"#, .adamw(.init(lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, amsgrad: false))),
    ("optimizer", #"{"type": "rmsprop"}"#, .rmsprop(.init(lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0, centered: false, weightDecay: 0))),
    ("optimizer", #"{"type": "adagrad"}"#, .adagrad(.init(lr: 0.01, lrDecay: 0, eps: 1e-10, initialAccumulatorValue: 0, weightDecay: 0))),
  ])
  func optimizerDefaults(key: String, text: String, expected: OptimizerSpec) throws {
    let spec = try SessionSpec.decode(baseDocument().setting(JSONPath(key), to: json(text)))
    #expect(spec.optimizer == expected)
  }

  @Test func otherDefaults() throws {
    var doc = baseDocument()
    doc = doc.setting(
      "model.layers",
      to: json(
        #"[{"type": "batch_norm"}, {"type": "layer_norm"}, {"type": "dropout", "rate": 0}, {"type": "activation", "function": "leaky_relu"}, {"type": "dense", "units": 3}]"#
      ))
    doc = doc.setting("schedule", to: json(#"{"type": "step", "step_size": 10}"#))
    doc = doc.setting("loss", to: json(#"{"type": "huber"}"#))
    doc = doc.setting("data", to: json(#"{"type": "circles", "samples": 10}"#))
    doc = doc.setting("model.layers[4].units", to: .int(2))
    let spec = try SessionSpec.decode(doc)
    #expect(
      spec.model.layers.map(\.kind) == [
        .batchNorm(eps: 1e-5, momentum: 0.1), .layerNorm(eps: 1e-5), .dropout(rate: 0), .activation(function: .leakyReLU(alpha: 0.01)),
        .dense(DenseLayer(units: 2)),
      ])
    #expect(spec.model.layers.map(\.name) == ["batch_norm1", "layer_norm1", "dropout1", "activation1", "dense1"])
    #expect(spec.schedule == .step(stepSize: 10, gamma: 0.1))
    #expect(spec.loss == .huber(delta: 1))
    #expect(spec.data.source == .circles(samples: 10, noise: 0.05, factor: 0.5, seed: 0))
  }

  @Test func dataSourceDefaults() throws {
    // Read the data object alone: these sources do not fit the base model, which is checked elsewhere.
    func source(_ text: String) throws -> DataSource {
      let log = IssueLog()
      let data = DataSpec.read(json(text), at: "data", log: log)
      guard let data, log.isEmpty else { throw TestFailureIssues(issues: log.issues) }
      return data.source
    }
    #expect(try source(#"{"type": "spirals", "samples": 90}"#) == .spirals(samples: 90, classes: 2, noise: 0.1, seed: 0))
    #expect(try source(#"{"type": "moons", "samples": 9}"#) == .moons(samples: 9, noise: 0.1, seed: 0))
    #expect(try source(#"{"type": "xor", "samples": 9}"#) == .xor(samples: 9, noise: 0, seed: 0))
    #expect(try source(#"{"type": "blobs", "samples": 9}"#) == .blobs(samples: 9, centers: 3, features: 2, std: 1, seed: 0))
    #expect(
      try source(#"{"type": "csv", "path": "a.csv", "target": "y", "task": "regression"}"#)
        == .csv(.init(path: "a.csv", target: .name("y"), header: true, delimiter: ",", task: .regression, normalize: false)))
    #expect(try source(#"{"type": "idx", "images": "i", "labels": "l"}"#) == .idx(images: "i", labels: "l"))
    #expect(try source(#"{"type": "builtin", "name": "iris"}"#) == .builtin(name: "iris"))
  }

  @Test func omittedNamesSkipNamesTakenExplicitly() throws {
    let doc = baseDocument().setting(
      "model.layers",
      to: json(
        #"[{"type": "dense", "units": 8, "name": "dense1"}, {"type": "dense", "units": 8}, {"type": "dense", "units": 3, "name": "dense2"}]"#
      ))
    #expect(try SessionSpec.decode(doc).model.layers.map(\.name) == ["dense1", "dense3", "dense2"])
  }

  @Test func seedsAreReadExactly() throws {
    let doc = baseDocument().setting("training.seed", to: json("18446744073709551615"))
    #expect(try SessionSpec.decode(doc).training.seed == UInt64.max)
  }

  /// One row per kind of problem: where it is put, and a fragment of what is said.
  static let problemCases: [(String, String?, String?, String)] = [
    // type and range errors
    ("model.layers[0].units", "-3", "model.layers[0].units", "must be a positive integer, got -3"),
    ("model.layers[0].units", "0", "model.layers[0].units", "must be a positive integer, got 0"),
    ("model.layers[0].units", "2.5", "model.layers[0].units", "must be a positive integer, got 2.5"),
    ("model.layers[0].units", "\"8\"", "model.layers[0].units", "must be a positive integer, got \"8\""),
    ("model.layers[0]", #"{"type": "dropout", "rate": 1.5}"#, "model.layers[0].rate", "must be a number in [0, 1), got 1.5"),
    ("optimizer.lr", "0", "optimizer.lr", "must be a number > 0, got 0"),
    ("optimizer.lr", "-0.1", "optimizer.lr", "must be a number > 0"),
    ("optimizer.beta1", "1", "optimizer.beta1", "must be a number in [0, 1), got 1"),
    ("optimizer.amsgrad", "1", "optimizer.amsgrad", "must be true or false, got 1"),
    ("training.batch_size", "0", "training.batch_size", "must be a positive integer, got 0"),
    ("training.seed", "-1", "training.seed", "an integer in [0, 2^64 − 1]"),
    ("training.shuffle", "\"yes\"", "training.shuffle", "must be true or false"),
    ("training.record", #"{"every": 0}"#, "training.record.every", "must be a positive integer, got 0"),
    ("data.validation_fraction", "1", "data.validation_fraction", "must be a number in [0, 1), got 1"),
    ("data.samples", "0", "data.samples", "must be a positive integer"),
    ("data.classes", "1", "data.classes", "must be an integer ≥ 2, got 1"),
    ("model.input", "[0]", "model.input", "non-empty array of positive integers"),
    ("model.input", "[]", "model.input", "non-empty array of positive integers"),
    ("model.layers", "[]", "model.layers", "at least one layer"),
    ("model.layers[0].name", "\"a.b\"", "model.layers[0].name", "letters, digits"),
    ("model", "[1]", "model", "must be an object, got [1]"),
    // unknown keys and names
    (
      "model.layers[0].unit", "3", "model.layers[0].unit",
      "unknown key; expected one of activation, init, name, type, units, use_bias (did you mean \"units\"?)"
    ),
    ("optimizer.learning_rate", "0.1", "optimizer.learning_rate", "unknown key"),
    ("extra", "1", "extra", "unknown key"),
    (
      "model.layers[0].activation", "\"rleu\"", "model.layers[0].activation",
      "unknown activation \"rleu\"; expected one of identity, relu, leaky_relu, sigmoid, tanh, gelu, silu, softplus, elu, softmax (did you mean \"relu\"?)"
    ),
    ("model.layers[0].type", "\"desne\"", "model.layers[0].type", "unknown layer type \"desne\""),
    ("optimizer.type", "\"adma\"", "optimizer.type", "(did you mean \"adam\"?)"),
    ("loss.type", "\"cross_entropy\"", "loss.type", "unknown loss"),
    ("schedule", #"{"type": "cosin", "t_max": 3}"#, "schedule.type", "(did you mean \"cosine\"?)"),
    ("data.type", "\"spiral\"", "data.type", "(did you mean \"spirals\"?)"),
    ("data", #"{"type": "builtin", "name": "irsi"}"#, "data.name", "unknown builtin dataset \"irsi\"; expected one of digits, iris"),
    ("training.stop", #"[{"type": "max_step", "steps": 3}]"#, "training.stop[0].type", "(did you mean \"max_steps\"?)"),
    ("model.layers[0].init", #"{"weight": {"type": "he"}}"#, "model.layers[0].init.weight.type", "unknown initializer"),
    ("model.layers[0].init", #"{"weight": "uniform"}"#, "model.layers[0].init.weight", "needs fields"),
    // missing required fields
    ("model", nil, "model", "is required but missing"),
    ("optimizer.lr", nil, nil, ""),  // adam has a default lr: no problem
    ("data.samples", nil, "data.samples", "is required but missing"),
    ("format", nil, "format", "is required but missing"),
    ("optimizer", #"{"type": "sgd"}"#, "optimizer.lr", "is required but missing"),
    // values and rules across fields
    ("format", "\"specbench/other\"", "format", "must be \"specbench/session\""),
    ("version", "0", "version", "must be a format version from 1 to 6, got 0"),
    (
      "model.layers", #"[{"type": "dense", "units": 8, "name": "a"}, {"type": "dense", "units": 3, "name": "a"}]"#, "model.layers[1].name",
      "\"a\" is already the name of layers[0]"
    ),
    ("model.input", "[3]", "model.input", "must be [2] to match the samples of data \"spirals\", got [3]"),
    ("model.layers[1].units", "4", "loss.type", "softmax_cross_entropy over 3 classes needs the last layer to output [3]"),
    ("loss.type", "\"sigmoid_binary_cross_entropy\"", "loss.type", "has 3 classes; use softmax_cross_entropy"),
    ("data", #"{"type": "sine", "samples": 10}"#, "loss.type", "needs class labels"),
    ("optimizer", #"{"type": "sgd", "lr": 0.1, "nesterov": true}"#, "optimizer.nesterov", "needs momentum > 0 and dampening 0"),
    ("schedule", #"{"type": "warmup_cosine", "warmup_steps": 10, "t_max": 10}"#, "schedule.t_max", "must be greater than warmup_steps"),
    ("training.stop", #"[{"type": "early_stopping", "patience": 3}]"#, "training.stop[0]", "data.validation_fraction is 0"),
    ("training.stop", "[]", "training.stop", "at least one rule"),
    ("model.layers[0].init", #"{"weight": {"type": "uniform", "low": 1, "high": 0}}"#, "model.layers[0].init.weight.high", "must be ≥ low"),
    ("data", #"{"type": "csv", "path": "a.csv", "target": "y", "header": false, "task": "regression"}"#, "data.target", "header is false"),
    (
      "data", #"{"type": "csv", "path": "a.csv", "target": 0, "delimiter": ";;", "task": "regression"}"#, "data.delimiter",
      "a single character"
    ),
    ("state", #"{"step": 1}"#, "state.epoch", "is required but missing"),
    (
      "state",
      #"{"step": 0, "epoch": 0, "tensors": "t.safetensors", "sha256": "xyz", "position": {"epoch_order_seed": "1", "index": 0}, "rng": {"dropout": "2"}}"#,
      "state.sha256", "64 lowercase hexadecimal digits"
    ),
    (
      "state",
      #"{"step": 0, "epoch": 0, "tensors": "../t.safetensors", "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "position": {"epoch_order_seed": 1, "index": 0}, "rng": {"dropout": "2"}}"#,
      "state.position.epoch_order_seed", "decimal string"
    ),
    ("history", #"{"train_loss": [[1, 0.5], [0, 0.4]]}"#, "history.train_loss[1]", "steps must not decrease"),
    ("history", #"{"train_loss": [[1]]}"#, "history.train_loss[0]", "must be a pair [step, value]"),
    ("journal", #"["new x", 3]"#, "journal[1]", "must be a command line (a string)"),
    // the image layers (version 6): each problem names the layer, the field and the dimension
    (
      "model",
      #"{"input": [2], "layers": [{"type": "conv2d", "filters": 2, "kernel": 3}, {"type": "flatten"}, {"type": "dense", "units": 3}]}"#,
      "model.layers[0]",
      "conv2d1 is conv2d and needs an image input [channels, height, width], but its input has shape [2]; a reshape layer"
    ),
    (
      "model",
      #"{"input": [1, 5, 6], "layers": [{"type": "conv2d", "filters": 2, "kernel": [3, 7]}, {"type": "flatten"}, {"type": "dense", "units": 3}]}"#,
      "model.layers[0].kernel", "conv2d1's window reaches 7 on the width axis, more than its input's 6 (6 padded; input [1, 5, 6])"
    ),
    (
      "model", #"{"input": [3, 5, 5], "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "groups": 2}, {"type": "flatten"}]}"#,
      "model.layers[0].groups", "conv2d1 has groups 2, which must divide its input's 3 channels (input [3, 5, 5])"
    ),
    (
      "model", #"{"input": [2, 5, 5], "layers": [{"type": "conv2d", "filters": 3, "kernel": 3, "groups": 2}, {"type": "flatten"}]}"#,
      "model.layers[0].groups", "must divide filters (3), got 2"
    ),
    (
      "model", #"{"input": [1, 5, 5], "layers": [{"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": "same"}]}"#,
      "model.layers[0].padding", "\"same\" needs stride 1 (as PyTorch's), but stride is [2, 2]"
    ),
    (
      "model", #"{"input": [1, 5, 5], "layers": [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "samee"}]}"#,
      "model.layers[0].padding", "(did you mean \"same\"?)"
    ),
    (
      "model", #"{"input": [1, 5, 5], "layers": [{"type": "conv2d", "filters": 3, "kernel": [3]}]}"#, "model.layers[0].kernel",
      "must be a positive integer, or a pair [height, width] of them, got [3]"
    ),
    (
      "model", #"{"input": [1, 5, 5], "layers": [{"type": "max_pool2d", "kernel": 2, "padding": 2}]}"#, "model.layers[0].padding",
      "must be at most half the kernel on each axis (PyTorch's rule), got [2, 2] for kernel [2, 2]"
    ),
    (
      "model", #"{"input": [2], "layers": [{"type": "reshape", "shape": [3, 3]}]}"#, "model.layers[0].shape",
      "reshape1 cannot reshape [2] (2 values) to [3, 3] (9 values); the counts must be equal"
    ),
    ("model", #"{"input": [2], "layers": [{"type": "reshape", "shape": [-1, -1]}]}"#, "model.layers[0].shape", "at most one -1"),
    (
      "model", #"{"input": [2], "layers": [{"type": "global_avg_pool"}]}"#, "model.layers[0]",
      "global_avg_pool1 is global_avg_pool and needs an image input"
    ),
    ("data", #"{"type": "npz", "path": "d.npz", "task": "sorting"}"#, "data.task", "unknown task \"sorting\""),
    ("data", #"{"type": "npy", "inputs": "x.npy"}"#, "data.targets", "is required but missing"),
  ]

  @Test(arguments: problemCases)
  func everyProblemNamesItsPath(target: String, value: String?, path: String?, fragment: String) {
    let document = baseDocument().setting(JSONPath(target), to: value.map(json))
    let found = issues(of: document)
    guard let path else {
      #expect(found.isEmpty, "\(found)")
      return
    }
    let match = found.first { $0.path.description == path && $0.message.contains(fragment) }
    #expect(match != nil, "expected \(path): …\(fragment)… in \(found.map(\.description))")
  }

  @Test func allProblemsOfAFileAreReportedInTextOrder() {
    let text = """
      {"format": "specbench/session", "version": 1,
       "model": {"input": [2], "layers": [{"type": "dense", "units": -1}]},
       "loss": {"type": "mse"}, "optimizer": {"type": "sgd", "lr": -1},
       "data": {"type": "moons", "samples": 0}, "training": {"batch_size": 0, "sede": 1}}
      """
    do {
      _ = try SessionSpec.decode(Array(text.utf8), file: "f.json")
      Issue.record("expected problems")
    } catch {
      let lines = error.issues.map { $0.formatted(file: "f.json") }
      #expect(
        lines == [
          "f.json:2:64: model.layers[0].units: must be a positive integer, got -1",
          "f.json:3:62: optimizer.lr: must be a number > 0, got -1",
          "f.json:4:39: data.samples: must be a positive integer, got 0",
          "f.json:4:70: training.batch_size: must be a positive integer, got 0",
          "f.json:4:73: training.sede: unknown key; expected one of batch_size, record, seed, shuffle, stop (did you mean \"seed\"?)",
        ])
      #expect(error.description.hasPrefix("f.json has 5 problems:"))
    }
  }

  @Test func malformedJSONReportsLineAndColumn() {
    do {
      _ = try SessionSpec.decode(Array("{\n  \"format\": \"specbench/session\",\n  \"version\" 1\n}".utf8), file: "s.json")
      Issue.record("expected a syntax error")
    } catch {
      #expect(error.description == "s.json:3:13: not valid JSON: expected ':' after the member name, found '1'")
    }
  }

  @Test func newerVersionIsRefusedNamingBothVersions() {
    do {
      _ = try SessionSpec.decode(baseDocument().setting("version", to: .int(7)), file: "n.json")
      Issue.record("expected a refusal")
    } catch {
      guard case .newerVersion(_, let found, let supported) = error else {
        Issue.record("wrong error \(error)")
        return
      }
      #expect(found == 7 && supported == 6)
      #expect(error.description.contains("version 7") && error.description.contains("up to 6"))
    }
  }

  @Test func migrationStepsRunInOrderAndSetTheVersion() throws {
    // A pretend format history: version 1 → 2 renames "model" to "network", 2 → 3 adds a key.
    let steps: [Int: Migration] = [
      1: { (doc: JSONValue) throws(SpecIssue) -> JSONValue in
        guard case .object(var object) = doc.kind, let i = object.members.firstIndex(where: { $0.key == "model" }) else {
          throw SpecIssue(path: "model", message: "missing")
        }
        object.members[i].key = "network"
        return JSONValue(.object(object))
      },
      2: { (doc: JSONValue) throws(SpecIssue) -> JSONValue in doc.setting("added", to: .bool(true)) },
    ]
    let migrated = try SpecMigrations.migrate(baseDocument(), from: 1, to: 3, steps: steps)
    #expect(migrated.objectValue?["network"] != nil && migrated.objectValue?["model"] == nil)
    #expect(migrated.objectValue?["added"] == .bool(true))
    #expect(migrated.objectValue?["version"] == .int(3))
    #expect(throws: SpecIssue.self) { try SpecMigrations.migrate(baseDocument(), from: 1, to: 4, steps: steps) }
  }

  @Test func decodeRunsMigrationsForOlderVersions() throws {
    // With a step from 0 to 1, a version-0 document (which called the loss "objective") reads.
    let steps: [Int: Migration] = [
      0: { (doc: JSONValue) throws(SpecIssue) -> JSONValue in
        guard case .object(var object) = doc.kind, let i = object.members.firstIndex(where: { $0.key == "objective" }) else { return doc }
        object.members[i].key = "loss"
        return JSONValue(.object(object))
      }
    ]
    let old = baseDocument().setting("loss", to: nil).setting("objective", to: json(#"{"type": "softmax_cross_entropy"}"#)).setting(
      "version", to: .int(0))
    // Version 0 is below the first real version, so the reader refuses it without the hook…
    #expect(!issues(of: old).isEmpty)
    // …and reads it through the hook. (The hook only runs for versions ≥ 1 in files, so call it.)
    let spec = try SessionSpec.decode(try SpecMigrations.migrate(old, from: 0, to: 1, steps: steps))
    #expect(spec.loss == .softmaxCrossEntropy)
  }

  @Test func leakyReluAcceptsStringOrObject() throws {
    let a = try SessionSpec.decode(baseDocument().setting("model.layers[0].activation", to: .string("leaky_relu")))
    let b = try SessionSpec.decode(baseDocument().setting("model.layers[0].activation", to: json(#"{"type": "leaky_relu", "alpha": 0.2}"#)))
    guard case .dense(let da) = a.model.layers[0].kind, case .dense(let db) = b.model.layers[0].kind else {
      Issue.record()
      return
    }
    #expect(da.activation == .leakyReLU(alpha: 0.01))
    #expect(db.activation == .leakyReLU(alpha: 0.2))
  }

  @Test func suggestionsNeedToBeClose() {
    #expect(Suggestion.nearest(to: "rleu", in: Activation.names) == "relu")
    #expect(Suggestion.nearest(to: "qqqqqqq", in: Activation.names) == nil)
    #expect(Suggestion.editDistance("abc", "acb") == 1)
  }
}

struct TestFailureIssues: Error {
  var issues: [SpecIssue]
}
