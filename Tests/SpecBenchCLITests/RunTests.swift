import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// Parses `specbench run --json` output: one JSON object per line.
func events(_ stdout: String) throws -> [JSONObject] {
  try stdout.split(separator: "\n").map { line in
    guard let object = try JSONParser.parse(String(line)).objectValue else { throw TestFailure("not an object: \(line)") }
    return object
  }
}

@Suite("specbench run")
struct RunTests {
  @Test func jsonOutputIsOneParsableObjectPerLine() throws {
    let result = try specbench("run", "sessions/spirals.json", "--json")
    #expect(result.status == 0, "\(result.stderr)")
    let lines = try events(result.stdout)
    let steps = lines.filter { $0["event"]?.stringValue == "step" }
    #expect(!steps.isEmpty)
    #expect(steps.map { $0["step"]?.numberValue?.int } == Array(1...steps.count).map { $0 })  // record.every is 1
    for step in steps {
      // spirals has class targets: each step has its batch's accuracy, a whole number of the
      // batch's 64 samples (24 in an epoch's last batch: 600 = 9 · 64 + 24).
      #expect(step.keys == ["event", "step", "loss", "lr", "accuracy"])
      #expect(step["loss"]?.numberValue != nil && step["lr"]?.numberValue != nil)
      let accuracy = try #require(step["accuracy"]?.numberValue?.double)
      #expect(accuracy >= 0 && accuracy <= 1 && [64.0, 24.0].contains { abs(accuracy * $0 - (accuracy * $0).rounded()) < 1e-4 })
    }
    let done = try #require(lines.last)
    #expect(done["event"]?.stringValue == "done")
    #expect(done["step"]?.numberValue?.int == steps.count)
    #expect(["max_steps", "target_loss"].contains(done["reason"]?.stringValue ?? ""))
  }

  @Test func savingThenRunningAgainContinuesFromTheSavedStep() throws {
    let folder = temporaryFolder()
    let first = try specbench("run", "sessions/iris.json", "--steps", "500", "--save", folder + "/iris", "--json")
    #expect(first.status == 0, "\(first.stderr)")
    #expect(try events(first.stdout).last?["step"]?.numberValue?.int == 500)
    let second = try runProcess(specbenchExecutable, ["run", folder + "/iris.json", "--steps", "500", "--json"])
    #expect(second.status == 0, "\(second.stderr)")
    let lines = try events(second.stdout)
    #expect(lines.first?["step"]?.numberValue?.int == 501)
    #expect(lines.last?["step"]?.numberValue?.int == 1000)
    #expect(lines.last?["reason"]?.stringValue == "steps")
    // The same 1000 steps straight give the same last losses (exact resume through the files).
    let straight = try events(try specbench("run", "sessions/iris.json", "--steps", "1000", "--json").stdout)
    #expect(
      straight.filter { $0["event"]?.stringValue == "step" }.suffix(500).map { $0["loss"] }
        == lines.filter { $0["event"]?.stringValue == "step" }.map { $0["loss"] })
    // inspect draws the recorded losses.
    let inspect = try runProcess(specbenchExecutable, ["inspect", folder + "/iris.json"])
    #expect(inspect.stdout.contains("loss  ━ train  ━ validation"))
    #expect(inspect.stdout.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, "braille dots")
    #expect(!inspect.stdout.contains("\u{1B}"), "no colour codes when not a terminal")
    // The saved session holds the history and a state at step 500.
    let saved = try SessionFile.load(folder + "/iris.json")
    #expect(saved.spec.state?.step == 500)
    #expect(saved.spec.history.trainLoss.count == 500)
    #expect(saved.spec.history.valLoss.count > 0)
  }

  /// A session saved by a SpecBench of format version 1 (its long history in the JSON)
  /// continues exactly as the same session in the current version, and its next save is the
  /// current version. Version 1 recorded only the losses: the rates and accuracies of the steps
  /// before the migration are not invented.
  @Test func aVersion1SessionWithALongHistoryContinuesExactlyAndIsSavedAsTheCurrentVersion() throws {
    let folder = temporaryFolder()
    let made = try specbench("run", "sessions/iris.json", "--steps", "20000", "--backend", "fast", "--save", folder + "/v3/iris")
    #expect(made.status == 0, "\(made.stderr)")
    let saved = try SessionFile.load(folder + "/v3/iris.json")
    #expect(saved.spec.history.trainLoss.count == 20000 && !saved.spec.history.valLoss.isEmpty)
    try FileManager.default.createDirectory(atPath: folder + "/v1", withIntermediateDirectories: true)
    let v1 = FormatVersion1.text(of: saved.spec)
    #expect(v1.utf8.count > 400_000, "a long history in the JSON")
    try v1.write(toFile: folder + "/v1/iris.json", atomically: true, encoding: .utf8)
    try FileManager.default.copyItem(atPath: folder + "/v3/iris.safetensors", toPath: folder + "/v1/iris.safetensors")
    for version in ["v1", "v3"] {
      let more = try runProcess(
        specbenchExecutable, ["run", "\(folder)/\(version)/iris.json", "--steps", "200", "--save", "\(folder)/\(version)/iris"])
      #expect(more.status == 0, "\(version): \(more.stderr)")
    }
    // The same state, byte for byte (compared as a Bool: a diff of two large files is slow).
    let sameState =
      try Data(contentsOf: URL(fileURLWithPath: "\(folder)/v1/iris.safetensors"))
      == Data(contentsOf: URL(fileURLWithPath: "\(folder)/v3/iris.safetensors"))
    #expect(sameState, "iris.safetensors differs")
    let fromV1 = try SessionFile.load(folder + "/v1/iris.json").spec
    let fromV3 = try SessionFile.load(folder + "/v3/iris.json").spec
    #expect(fromV1.state == fromV3.state && fromV1.state?.step == 20200)
    // The same losses; the other metrics from the continuation on only.
    let sameLosses = fromV1.history.trainLoss == fromV3.history.trainLoss && fromV1.history.valLoss == fromV3.history.valLoss
    #expect(sameLosses && fromV1.history.trainLoss.count == 20200)
    for metric in [Metric.learningRate, .trainAccuracy] {
      #expect(fromV3.history[metric].count == 20200)
      let continued = fromV3.history[metric].suffix(200)
      #expect(Array(fromV1.history[metric]) == Array(continued), "\(metric.rawValue) of the 200 steps after the migration")
    }
    #expect(fromV1.history.events == fromV3.history.events)
    #expect(try String(contentsOfFile: folder + "/v1/iris.json", encoding: .utf8).contains("\"version\": \(SessionSpec.currentVersion)"))
  }

  @Test func aRunPastItsSchedulesEndSaysSo() throws {
    let folder = temporaryFolder()
    #expect(try specbench("run", "sessions/xor.json", "--steps", "20", "--save", folder + "/x").status == 0)
    var bundle = try SessionFile.load(folder + "/x.json")
    bundle.spec.schedule = .cosine(tMax: 10, etaMin: 0)
    try SessionFile.save(bundle, to: folder + "/x")
    let result = try runProcess(specbenchExecutable, ["run", folder + "/x.json", "--steps", "3"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(
      result.stderr.contains(
        "warning: the cosine schedule ended at update 10 (it starts at update 0), so every update of this run uses its final rate 0.0, which is 0"
      ),
      "\(result.stderr)")
  }

  /// The results sessions/README.md promises.
  static let promised: [(String, String, Double)] = [
    ("spirals", "train_accuracy", 0.95), ("iris", "val_accuracy", 0.93), ("moons", "val_accuracy", 0.95), ("xor", "train_accuracy", 0.95),
    ("circles", "train_accuracy", 0.97), ("blobs", "train_accuracy", 0.97), ("sine", "val_loss", -0.02),
    ("sine-lbfgs", "train_loss", -0.0002), ("digits-mlp", "val_accuracy", 0.96), ("digits-cnn", "val_accuracy", 0.98),
  ]

  /// sessions/README.md's "Convolutions on digits": the CNN, with fewer parameters than the MLP,
  /// classifies more of the same held-out digits.
  @Test func theDigitsCNNBeatsTheMLPWithFewerParameters() throws {
    var accuracy: [String: Double] = [:]
    for name in ["digits-mlp", "digits-cnn"] {
      let result = try specbench("run", "sessions/\(name).json", "--json")
      #expect(result.status == 0, "\(result.stderr)")
      accuracy[name] = try #require(try events(result.stdout).last?["val_accuracy"]?.numberValue?.double)
    }
    let (mlp, cnn) = (
      try SessionFile.load(repositoryPath("sessions/digits-mlp.json")), try SessionFile.load(repositoryPath("sessions/digits-cnn.json"))
    )
    #expect(cnn.spec.model.parameterCount <= mlp.spec.model.parameterCount)
    #expect(accuracy["digits-cnn"]! > accuracy["digits-mlp"]!, "\(accuracy)")
  }

  /// `run --optimizer` takes the workbench's command text: a bad field is refused by its path,
  /// control characters are shown escaped, another command cannot ride along, nothing is saved.
  @Test(arguments: [
    ("lbfgs history_size=0", "--optimizer: optimizer.history_size: must be an integer from 1 to 2147483647, got 0"),
    ("lbfgs line_search=\u{1B}[31mred", "unknown line search (or null for none) \"\\u001b[31mred\""),
    ("lbfgs\nsave /tmp/x", "--optimizer: optimizer: expected key=value, got save"),
    ("lbgfs", "unknown optimizer \"lbgfs\""),
  ])
  func aBadOptimizerIsRefusedAndNothingIsSaved(text: String, message: String) throws {
    let folder = temporaryFolder()
    let result = try specbench("run", "sessions/sine-lbfgs.json", "--optimizer", text, "--steps", "1", "--save", folder + "/out")
    #expect(result.status == 1)
    #expect(result.stderr.contains(message), "\(result.stderr)")
    #expect(!result.stderr.contains("\u{1B}"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/out.json"))
  }

  /// sessions/README.md's "Adam first, L-BFGS to finish": Adam's 300 steps, then L-BFGS with a
  /// strong Wolfe line search, against Adam alone with as many gradient evaluations (the same
  /// work: a timing bound would not be a test).
  @Test func adamThenLBFGSBeatsAdamAloneAtTheSameEvaluations() throws {
    let folder = temporaryFolder()
    let warm = try specbench("run", "sessions/sine-lbfgs.json", "--save", folder + "/warm", "--json")
    #expect(warm.status == 0, "\(warm.stderr)")
    let finish = try specbench(
      "run", folder + "/warm.json", "--optimizer", "lbfgs line_search=strong_wolfe", "--steps", "30", "--save", folder + "/done", "--json")
    #expect(finish.status == 0, "\(finish.stderr)")
    let steps = try events(finish.stdout).filter { $0["event"]?.stringValue == "step" }
    let evaluations = steps.compactMap { $0["func_evals"]?.numberValue?.int }.reduce(0, +)
    #expect(steps.count == 30 && evaluations >= 30)
    let lbfgs = try #require(try events(finish.stdout).last?["train_loss"]?.numberValue?.double)
    let alone = try specbench("run", "sessions/sine-lbfgs.json", "--steps", String(300 + evaluations), "--json")
    let adam = try #require(try events(alone.stdout).last?["train_loss"]?.numberValue?.double)
    #expect(lbfgs <= 2e-6, "Adam then L-BFGS ends at \(lbfgs)")
    #expect(lbfgs * 10 < adam, "Adam then L-BFGS: \(lbfgs); Adam alone with the same \(300 + evaluations) evaluations: \(adam)")
    // The saved session says what happened, and loads as an L-BFGS session.
    let saved = try SessionFile.load(folder + "/done.json")
    #expect(saved.spec.optimizer.name == "lbfgs")
    #expect(saved.spec.history.events.contains { $0.kind == "optimizer" && $0.detail.hasPrefix("adam -> lbfgs") })
  }

  @Test(arguments: promised)
  func exampleSessionsReachTheirDocumentedResults(name: String, metric: String, bound: Double) throws {
    let result = try specbench("run", "sessions/\(name).json", "--json")
    #expect(result.status == 0, "\(result.stderr)")
    let done = try #require(try events(result.stdout).last)
    let value = try #require(done[metric]?.numberValue?.double, "\(done)")
    // A negative bound is an upper bound on a loss.
    if bound < 0 {
      #expect(value <= -bound, "\(name) \(metric) = \(value)")
    } else {
      #expect(value >= bound, "\(name) \(metric) = \(value)")
    }
  }

  @Test func plainProgressLinesWhenNotATerminal() throws {
    let result = try specbench("run", "sessions/xor.json", "--steps", "300")
    #expect(result.status == 0, "\(result.stderr)")
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.first?.hasPrefix("step 30/300  batch loss ") == true, "\(lines)")
    #expect(lines.contains { $0.hasPrefix("stopped by steps at step 300 (300 steps in ") })
    #expect(lines.contains { $0.hasPrefix("train:      loss ") && $0.contains("accuracy") })
    #expect(!result.stdout.contains("\u{1B}"))
  }

  @Test func aDivergingRunStopsWithStatus1AndSavesTheLastFiniteState() throws {
    let folder = temporaryFolder()
    let text = try String(contentsOfFile: repositoryPath("sessions/sine.json"), encoding: .utf8)
      .replacingOccurrences(
        of: "\"optimizer\": {\"type\": \"adamw\", \"lr\": 0.005, \"weight_decay\": 0.0001}",
        with: "\"optimizer\": {\"type\": \"sgd\", \"lr\": 1000000}"
      )
      .replacingOccurrences(of: "{\"type\": \"layer_norm\"},", with: "")
    #expect(text.contains("\"lr\": 1000000"))
    try text.write(toFile: folder + "/boom.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["run", folder + "/boom.json", "--save", folder + "/after"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("training diverged at step "))
    #expect(result.stderr.contains("; the state is kept from step "))
    let saved = try SessionFile.load(folder + "/after.json")
    #expect(saved.tensors!.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
    #expect(saved.spec.history.events.contains { $0.kind == "diverged" })
  }

  @Test func unknownBackendsAreNamedWithTheKnownOnes() throws {
    let result = try specbench("run", "sessions/xor.json", "--backend", "refrence")
    #expect(result.status == 1)
    #expect(result.stderr == "no backend named \"refrence\"; backends: reference, fast, jax (did you mean \"reference\"?)\n")
  }

  @Test func csvDataThatDoesNotFitTheModelIsExplained() throws {
    let folder = temporaryFolder()
    try "a,b,c,label\n1,2,3,x\n4,5,6,y\n".write(toFile: folder + "/d.csv", atomically: true, encoding: .utf8)
    let spec = """
      {"format": "specbench/session", "version": 1, "model": {"input": [2], "layers": [{"type": "dense", "units": 2}]},
       "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "sgd", "lr": 0.1},
       "data": {"type": "csv", "path": "d.csv", "target": "label", "task": "classification"}}
      """
    try spec.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["run", folder + "/s.json"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("model.input: must be [3] to match the samples of data \"csv\", got [2]"))
    // Fixed, it trains.
    try spec.replacingOccurrences(of: "[2]", with: "[3]").write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    let fixed = try runProcess(specbenchExecutable, ["run", folder + "/s.json", "--steps", "3"])
    #expect(fixed.status == 0, "\(fixed.stderr)")
  }

  /// Unless the user chose (OPENBLAS_CORETYPE), the fast backend's OpenBLAS kernels follow the
  /// CPU's features, not OpenBLAS's table of models (where a newer CPU falls back to "Prescott").
  @Test func openBLASKernelsFollowTheCPUUnlessTheUserChose() throws {
    let cpu = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
    let flags = Set(cpu.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
    func fastLine(_ environment: [String]) throws -> String {
      let result = try runProcess("/usr/bin/env", environment + [specbenchExecutable, "backends"])
      return result.stdout.split(separator: "\n").first { $0.hasPrefix("fast:") }.map(String.init) ?? result.stderr
    }
    let chosen = try fastLine(["-u", "OPENBLAS_CORETYPE"])
    if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) {
      #expect(chosen.contains("OpenBLAS SkylakeX kernels"), "\(chosen)")
    } else if flags.contains("avx2") && flags.contains("fma") {
      #expect(chosen.contains("OpenBLAS Haswell kernels"), "\(chosen)")
    }
    #expect(try fastLine(["OPENBLAS_CORETYPE=Haswell"]).contains("OpenBLAS Haswell kernels"))
  }

  @Test func backendsPrintsTheCapabilityMatrix() throws {
    let result = try specbench("backends")
    #expect(result.status == 0)
    #expect(result.stdout.contains("reference: plain, readable loops"))
    for row in ["layer batch_norm", "activation gelu", "loss huber", "optimizer adagrad", "schedule warmup_cosine"] {
      #expect(result.stdout.split(separator: "\n").contains { $0.hasPrefix(row) && $0.hasSuffix("yes") }, "\(row)")
    }
  }
}

@Suite("specbench bench")
struct BenchTests {
  @Test func benchReportsEveryBackendOnAPreset() throws {
    let result = try specbench("bench", "--preset", "spirals", "--steps", "20", "--warmup", "2", "--repeats", "3", "--json")
    #expect(result.status == 0, "\(result.stderr)")
    let lines = try events(result.stdout)
    // Every backend that can run here; jax where Python has it (its compilation timed apart).
    #expect(lines.compactMap { $0["backend"]?.stringValue } == ["reference", "fast"] + (JaxPython.interpreter != nil ? ["jax"] : []))
    for line in lines {
      #expect((line["setup_seconds"]?.numberValue?.double ?? -1) >= 0)
      #expect((line["compile_seconds"]?.numberValue != nil) == (line["backend"]?.stringValue == "jax"), "\(line)")
    }
    for line in lines {
      #expect(line["preset"]?.stringValue == "spirals")
      for key in ["steps_per_sec", "ms_per_step", "samples_per_sec", "gflops"] {
        #expect((line[key]?.numberValue?.double ?? 0) > 0, "\(key) in \(line)")
      }
      #expect(line["runs"]?.arrayValue?.count == 3)
      let rate = line["steps_per_sec"]!.numberValue!.double
      #expect(abs(line["ms_per_step"]!.numberValue!.double - 1000 / rate) < 1e-6 * 1000 / rate)
      #expect(abs(line["samples_per_sec"]!.numberValue!.double - 64 * rate) < 1e-6 * 64 * rate)
    }
  }

  /// `--peak` measures OpenBLAS's sgemm in the same process and gives each preset's share of it.
  @Test func benchMeasuresTheSgemmPeakBesideThePresets() throws {
    let result = try specbench(
      "bench", "--preset", "mlp-mnist", "--backend", "fast", "--steps", "5", "--warmup", "1", "--repeats", "1", "--json", "--peak")
    #expect(result.status == 0, "\(result.stderr)")
    let lines = try events(result.stdout)
    try #require(lines.count == 2, "\(result.stdout)")
    #expect(lines[0]["preset"]?.stringValue == "sgemm-peak" && lines[0]["n"]?.numberValue?.double == 1024)
    let peak = try #require(lines[0]["gflops"]?.numberValue?.double)
    let gflops = try #require(lines[1]["gflops"]?.numberValue?.double)
    #expect(peak > 0 && gflops > 0)
    #expect(abs((lines[1]["share_of_peak"]?.numberValue?.double ?? -1) - gflops / peak) < 1e-9 * gflops / peak)
    // The products alone, timed in the same run: a part of the step, not more than all of it by
    // much (both are medians of noisy runs).
    let products = try #require(lines[1]["products_ms_per_step"]?.numberValue?.double, "\(lines[1])")
    let step = try #require(lines[1]["ms_per_step"]?.numberValue?.double)
    #expect(products > 0 && products < 3 * step, "products \(products) ms, step \(step) ms")
    let text = try specbench(
      "bench", "--preset", "spirals", "--backend", "fast", "--steps", "5", "--warmup", "1", "--repeats", "1", "--peak")
    #expect(text.stdout.hasPrefix("sgemm peak (OpenBLAS, n = 1024, every core): "), "\(text.stdout)")
    #expect(text.stdout.contains(/spirals +fast +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ %/), "\(text.stdout)")
    #expect(text.stdout.contains(/products alone [0-9.]+ ms a step \([0-9]+ %\)/), "\(text.stdout)")
  }

  /// `--frame` renders the dashboard with 10 thousand and with the asked-for recorded steps, and
  /// says what the history holds a step.
  @Test func benchTimesADashboardFrameAtTwoHistoryLengths() throws {
    let result = try specbench("bench", "--frame", "50000", "--repeats", "1", "--json")
    #expect(result.status == 0, "\(result.stderr)")
    let lines = try events(result.stdout)
    try #require(lines.count == 2, "\(result.stdout)")
    #expect(lines.map { $0["steps"]?.numberValue?.double } == [10_000, 50_000])
    for line in lines {
      #expect((line["ms_per_frame"]?.numberValue?.double ?? 0) > 0)
      // Three points a step and a validation point every 100th, at 16 to 40 bytes a point.
      let bytes = try #require(line["bytes_per_step"]?.numberValue?.double)
      #expect(bytes > 3 * 16 && bytes < 3.01 * 40, "\(bytes) bytes a step")
    }
    let short = try specbench("bench", "--frame", "500")
    #expect(short.status != 0 && short.stderr.contains("--frame must be at least 10000"), "\(short.stderr)")
    // A length past what memory could hold is refused before any history is built.
    let long = try specbench("bench", "--frame", "1000000000000")
    #expect(long.status != 0 && long.stderr.contains("--frame must be at most 100000000"), "\(long.stderr)")
  }

  @Test func benchRefusesUnknownPresetsAndBackends() throws {
    let preset = try specbench("bench", "--preset", "mnist")
    #expect(preset.status != 0 && preset.stderr.contains("unknown preset mnist; presets: mlp-mnist, spirals, cnn-digits, lenet, all"))
    let backend = try specbench("bench", "--backend", "gpu")
    #expect(backend.status == 1 && backend.stderr.contains("no backend named \"gpu\""))
  }
}
