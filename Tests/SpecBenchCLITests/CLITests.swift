import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@Suite("specbench command line")
struct CLITests {
  @Test func helpListsTheVerbs() throws {
    let result = try runProcess(specbenchExecutable, ["--help"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("USAGE: specbench <subcommand>"))
    for verb in ["repl", "run", "validate", "inspect", "init", "backends"] { #expect(result.stdout.contains(verb)) }
  }

  @Test(arguments: ["blobs", "circles", "digits-cnn", "digits-mlp", "iris", "moons", "sine", "sine-lbfgs", "spirals", "xor"])
  func exampleSessionsValidate(name: String) throws {
    let result = try specbench("validate", "sessions/\(name).json")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.hasPrefix("sessions/\(name).json: valid"))
  }

  @Test func validateListsEveryProblemWithPathAndPosition() throws {
    let folder = temporaryFolder()
    let text = """
      {"format": "specbench/session", "version": 1,
       "model": {"input": [2], "layers": [{"type": "dense", "units": -3, "activation": "rleu"}]},
       "loss": {"type": "mse"}, "optimizer": {"type": "sgd", "lr": 0.1},
       "data": {"type": "moons", "samples": 10}, "training": {"batch_size": 0}}
      """
    try text.write(toFile: folder + "/bad.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["validate", folder + "/bad.json"])
    #expect(result.status == 1)
    #expect(result.stdout.isEmpty)
    let lines = result.stderr.split(separator: "\n").map(String.init)
    #expect(lines.first == "\(folder)/bad.json has 3 problems:")
    #expect(lines.contains("  \(folder)/bad.json:2:64: model.layers[0].units: must be a positive integer, got -3"))
    #expect(
      lines.contains {
        $0.contains("2:82: model.layers[0].activation: unknown activation \"rleu\"") && $0.hasSuffix("(did you mean \"relu\"?)")
      })
    #expect(lines.contains("  \(folder)/bad.json:4:71: training.batch_size: must be a positive integer, got 0"))
  }

  @Test func validateJSONOutputIsMachineReadable() throws {
    let folder = temporaryFolder()
    try "{\"format\": \"specbench/session\", \"version\": 1, \"model\": 3}".write(
      toFile: folder + "/b.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["validate", "--json", folder + "/b.json"])
    #expect(result.status == 1)
    let report = try JSONParser.parse(result.stdout)
    #expect(report.objectValue?["valid"] == .bool(false))
    let problems = try #require(report.objectValue?["problems"]?.arrayValue)
    let paths = problems.compactMap { $0.objectValue?["path"]?.stringValue }
    // Missing keys are placed at the object that lacks them (1:1), so they come first.
    #expect(paths == ["loss", "optimizer", "data", "model"])
    #expect(problems[3].objectValue?["line"] == .int(1) && problems[3].objectValue?["column"] == .int(56))
    #expect(problems[3].objectValue?["message"]?.stringValue == "must be an object, got 3")
  }

  @Test func validateReportsMalformedJSONWithLineAndColumn() throws {
    let folder = temporaryFolder()
    try "{\n  \"format\": \"specbench/session\",\n  \"version\": 1,\n  \"model\": {\"input\": [2],, }\n}".write(
      toFile: folder + "/m.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["validate", folder + "/m.json"])
    #expect(result.status == 1)
    #expect(result.stderr == "\(folder)/m.json:4:26: not valid JSON: expected a member name in double quotes, found ','\n")
  }

  @Test func validateRefusesANewerVersion() throws {
    let folder = temporaryFolder()
    let text = try String(contentsOfFile: repositoryPath("sessions/xor.json"), encoding: .utf8).replacingOccurrences(
      of: "\"version\": 3", with: "\"version\": 7")
    #expect(text.contains("\"version\": 7"))
    try text.write(toFile: folder + "/v7.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["validate", folder + "/v7.json"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("format version 7, but this SpecBench reads versions up to 6"))
  }

  @Test func missingFileIsNamed() throws {
    let result = try specbench("inspect", "sessions/nope.json")
    #expect(result.status == 1)
    #expect(result.stderr == "cannot read sessions/nope.json: no such file\n")
  }

  @Test func inspectShowsLayersShapesAndCounts() throws {
    let result = try specbench("inspect", "sessions/spirals.json")
    #expect(result.status == 0, "\(result.stderr)")
    let text = result.stdout
    #expect(text.contains("Session \"spirals\""))
    #expect(text.contains("  0  dense1  dense  [64]       192  relu; init he_uniform/zeros"))
    #expect(text.contains("  1  dense2  dense  [64]     4,160  relu; init he_uniform/zeros"))
    #expect(text.contains("  2  dense3  dense  [3]        195  identity; init glorot_uniform/zeros"))
    #expect(text.contains("trainable parameters: 4,547"))
    #expect(text.contains("Optimizer:  adam lr=0.01 beta1=0.9 beta2=0.999 eps=1e-08 weight_decay=0.0 amsgrad=false"))
    #expect(text.contains("Schedule:   cosine t_max=3000 eta_min=0.0005"))
    #expect(text.contains("State:      none"))
  }

  @Test func initWritesTheDocumentedInitialStateAndItValidates() throws {
    let folder = temporaryFolder()
    let result = try specbench("init", "sessions/spirals.json", "--save", folder + "/x/spirals")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout == "wrote \(folder)/x/spirals.json and \(folder)/x/spirals.safetensors (18 tensors, step 0)\n")
    let bundle = try SessionFile.load(folder + "/x/spirals.json")
    #expect(bundle.spec.state?.step == 0)
    #expect(bundle.spec.state?.tensors == "spirals.safetensors")
    let tensors = try #require(bundle.tensors)
    #expect(tensors.count == 18)
    // he_uniform for dense1.weight [64, 2] with training.seed 1, computed here from the generator.
    var g = SplitMix64(seed: 1, stream: "dense1.weight")
    let limit = (6.0 / 2).squareRoot()
    #expect(tensors["param/dense1.weight"]?.scalars == (0..<128).map { _ in Float(-limit + 2 * limit * Double(g.nextUniform())) })
    #expect(tensors["opt/dense3.weight/exp_avg_sq"]?.scalars.allSatisfy { $0 == 0 } == true)
    let check = try specbench("validate", folder + "/x/spirals.json")
    #expect(check.status == 0 && check.stdout.contains("state at step 0"), "\(check.stderr)")
    let inspect = try specbench("inspect", folder + "/x/spirals.json")
    #expect(inspect.stdout.contains("State:      step 0, epoch 0, tensors in spirals.safetensors (hash, names and shapes checked)"))
  }

  /// `dashboard --snapshot`: one frame as text, without a terminal, at the size asked; a
  /// trained session shows its losses; colours as escape sequences on request; bad options say
  /// what to write instead.
  @Test func dashboardSnapshotRendersAFrameWithoutATerminal() throws {
    let folder = temporaryFolder()
    let trained = try specbench("run", "sessions/xor.json", "--steps", "300", "--save", folder + "/xor")
    #expect(trained.status == 0, "\(trained.stderr)")
    let result = try specbench("dashboard", folder + "/xor.json", "--snapshot", folder + "/frame.txt", "--size", "100x30")
    #expect(result.status == 0, "\(result.stderr)")
    let frame = try String(contentsOfFile: folder + "/frame.txt", encoding: .utf8)
    let lines = frame.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    #expect(lines.count == 30 && lines.allSatisfy { $0.count <= 100 })
    #expect(lines[0].hasPrefix(" xor │ reference │ idle │ step 300 │"), "\(lines[0])")
    for title in ["─ model ·", "─ loss ·", "─ histogram · dense1.weight @ step 300", "─ optimizer · rmsprop", "─ events"] {
      #expect(frame.contains(title), "\(title)")
    }
    #expect(frame.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, "the loss chart's braille")
    #expect(!frame.contains("\u{1B}"))
    let coloured = try specbench(
      "dashboard", folder + "/xor.json", "--snapshot", folder + "/c.txt", "--size", "80x24", "--color", "truecolor", "--theme", "solarized")
    #expect(coloured.status == 0, "\(coloured.stderr)")
    #expect(try String(contentsOfFile: folder + "/c.txt", encoding: .utf8).contains(";38;2;"))
    for (arguments, message) in [
      (["--size", "12by4"], "--size 12by4: expected WIDTHxHEIGHT such as 120x40"),
      (["--color", "16"], "--color 16: expected none, 8, 256 or truecolor"),
      (["--theme", "nope"], "no theme named \"nope\"; themes: default-dark, high-contrast, light, mono, solarized"),
    ] {
      let bad = try runProcess(
        specbenchExecutable, ["dashboard", "sessions/xor.json", "--snapshot", folder + "/bad.txt"] + arguments,
        currentDirectory: repositoryRoot.path)
      #expect(bad.status != 0 && bad.stderr.contains(message), "\(bad.stderr)")
      #expect(!FileManager.default.fileExists(atPath: folder + "/bad.txt"))
    }
    // Without a terminal and without --snapshot, it says how to get a frame anyway.
    let noTerminal = try specbench("dashboard", "sessions/xor.json")
    #expect(noTerminal.status != 0 && noTerminal.stderr.contains("the dashboard needs a terminal; --snapshot FILE renders a frame"))
  }

  /// Without OpenBLAS (here: SPECBENCH_OPENBLAS names a library that is not there), SpecBench
  /// still starts; the fast backend says what is missing and what to install, and the reference
  /// backend trains as always.
  @Test func withoutOpenBLASTheFastBackendSaysWhatToInstall() throws {
    let environment = ProcessInfo.processInfo.environment.merging(["SPECBENCH_OPENBLAS": "/nonexistent/libopenblas.so.0"]) { $1 }
    let fast = try runProcess(
      specbenchExecutable, ["run", "sessions/xor.json", "--backend", "fast", "--steps", "10"], environment: environment,
      currentDirectory: repositoryRoot.path)
    #expect(fast.status == 1)
    #expect(fast.stderr.hasPrefix("the fast backend needs OpenBLAS, which could not be loaded (/nonexistent/libopenblas.so.0: "))
    #expect(fast.stderr.contains("install it (Debian: apt-get install libopenblas0, or scripts/setup.sh), or use the reference backend"))
    let reference = try runProcess(
      specbenchExecutable, ["run", "sessions/xor.json", "--backend", "reference", "--steps", "10"], environment: environment,
      currentDirectory: repositoryRoot.path)
    #expect(reference.status == 0 && reference.stdout.contains("stopped by steps at step 10"), "\(reference.stderr)")
    // The REPL refuses the swap and keeps the session as it was.
    let script = try runProcess(
      "/bin/bash", ["-c", "printf 'backend fast\\nstatus\\n' | \"$0\"", specbenchExecutable], environment: environment)
    #expect(script.status == 1 && script.stderr.contains("line 1: backend fast\n  the fast backend needs OpenBLAS"), "\(script.stderr)")
    #expect(script.stdout.contains("backend reference"), "\(script.stdout)")
    let backends = try runProcess(specbenchExecutable, ["backends"], environment: environment)
    #expect(backends.status == 0 && backends.stdout.contains("fast: the fast backend needs OpenBLAS"))
    // With OpenBLAS there, `backends` names the kernels it chose.
    let normal = try specbench("backends")
    #expect(
      normal.stdout.range(of: #"fast: OpenBLAS \w+ kernels; optimizer rules in (avx512f|avx2|baseline)"#, options: .regularExpression)
        != nil)
  }

  /// `export` and `import` from the command line: what was written and what the format leaves
  /// out; a bad format, or an ONNX file SpecBench cannot read, says why and writes nothing.
  @Test func exportAndImportVerbs() throws {
    let folder = temporaryFolder()
    let exported = try specbench("export", "sessions/spirals.json", "--to", "onnx", "--out", folder + "/spirals")
    #expect(exported.status == 0, "\(exported.stderr)")
    #expect(exported.stdout.hasPrefix("wrote \(folder)/spirals.onnx\n  not carried: the optimizer (adam) and its state"))
    let imported = try specbench("import", folder + "/spirals.onnx", "--out", folder + "/back")
    #expect(imported.status == 0, "\(imported.stderr)")
    #expect(imported.stdout.hasPrefix("wrote \(folder)/back.json and \(folder)/back.safetensors: 3 layers, 4547 parameters"))
    let valid = try specbench("validate", folder + "/back.json")
    #expect(valid.status == 0 && valid.stdout.contains("state at step 0"), "\(valid.stdout)\(valid.stderr)")
    let trains = try specbench("run", folder + "/back.json", "--steps", "5")
    #expect(trains.status == 0 && trains.stdout.contains("stopped by steps at step 5"), "\(trains.stderr)")

    let badFormat = try specbench("export", "sessions/spirals.json", "--to", "tflite", "--out", folder + "/x")
    #expect(badFormat.status == 1 && badFormat.stderr == "no format named \"tflite\"; formats: onnx, safetensors, pytorch, keras\n")
    try Data([0x0A, 0x05, 0x01]).write(to: URL(fileURLWithPath: folder + "/broken.onnx"))
    let broken = try specbench("import", folder + "/broken.onnx", "--out", folder + "/broken")
    #expect(broken.status == 1)
    #expect(broken.stderr.hasPrefix("\(folder)/broken.onnx: not a readable ONNX model: field 1 says it holds 5 bytes, but only 1 follow"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/broken.json"))
    let missing = try specbench("import", folder + "/nope.onnx", "--out", folder + "/nope")
    #expect(missing.status == 1 && missing.stderr == "cannot read \(folder)/nope.onnx: no such file\n")

    // Keras: the CNN out and back in; it trains; a file cut short writes nothing.
    let keras = try specbench("export", "sessions/digits-cnn.json", "--to", "keras", "--out", folder + "/cnn")
    #expect(
      keras.status == 0 && keras.stdout.hasPrefix("wrote \(folder)/cnn.keras\n  not carried: the optimizer (adam) and its state"),
      "\(keras.stderr)")
    let fromKeras = try specbench("import", folder + "/cnn.keras", "--out", folder + "/cnn-back")
    #expect(fromKeras.status == 0, "\(fromKeras.stderr)")
    #expect(fromKeras.stdout.contains("6 Keras layers became 6 layers: conv2d1 (conv2d), max_pool2d1 (max_pool2d)"), "\(fromKeras.stdout)")
    #expect(fromKeras.stdout.contains("saved by Keras 3.15.1"))
    let cnnTrains = try specbench("run", folder + "/cnn-back.json", "--steps", "3")
    #expect(cnnTrains.status == 0 && cnnTrains.stdout.contains("stopped by steps at step 3"), "\(cnnTrains.stderr)")
    let whole = try Data(contentsOf: URL(fileURLWithPath: folder + "/cnn.keras"))
    try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: folder + "/cut.keras"))
    let cut = try specbench("import", folder + "/cut.keras", "--out", folder + "/cut")
    #expect(cut.status == 1 && cut.stderr.hasPrefix("\(folder)/cut.keras"), "\(cut.stderr)")
    #expect(cut.stderr.contains("nothing was written"), "\(cut.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/cut.json"))
    let table = try specbench("backends")
    #expect(table.stdout.contains(/export \(specbench export --to …\) +onnx +safetensors +pytorch +keras/), "\(table.stdout)")
  }

  @Test func initNeedsSave() throws {
    let result = try specbench("init", "sessions/spirals.json")
    #expect(result.status != 0)
    #expect(result.stderr.contains("Missing expected argument '--save <save>'"))
  }

}

/// `specbench init` checked by an independent implementation of the format's generator and
/// initializers in Python, reading the file with the safetensors package.
@Suite("init checked from Python", .enabled(if: PythonPeer.isAvailable, "python3 with numpy and safetensors is not installed: skipped"))
struct InitFromPythonTests {
  static let script = #"""
    import json, math, sys
    import numpy as np
    from safetensors.numpy import load_file

    M = (1 << 64) - 1
    def fnv1a64(s):
        h = 0xcbf29ce484222325
        for b in s.encode():
            h = ((h ^ b) * 0x100000001b3) & M
        return h

    class SplitMix:
        def __init__(self, seed, name):
            self.s = seed ^ fnv1a64(name)
        def next(self):
            self.s = (self.s + 0x9e3779b97f4a7c15) & M
            z = self.s
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
            return z ^ (z >> 31)
        def uniform(self):
            return float(np.float32(self.next() >> 40) * np.float32(2.0 ** -24))
        def normal(self):
            u1 = 1.0 - self.uniform(); u2 = self.uniform()
            return float(np.float32(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)))

    def values(init, n, fan_in, fan_out, seed, name):
        g = SplitMix(seed, name); t = init["type"]
        uni = lambda lo, hi: [lo + (hi - lo) * g.uniform() for _ in range(n)]
        nor = lambda mu, sd: [mu + sd * g.normal() for _ in range(n)]
        if t == "zeros": return [0.0] * n
        if t == "ones": return [1.0] * n
        if t == "constant": return [init["value"]] * n
        if t == "uniform": return uni(init["low"], init["high"])
        if t == "normal": return nor(init["mean"], init["std"])
        if t == "glorot_uniform": a = math.sqrt(6 / (fan_in + fan_out)); return uni(-a, a)
        if t == "glorot_normal": return nor(0, math.sqrt(2 / (fan_in + fan_out)))
        if t == "he_uniform": a = math.sqrt(6 / fan_in); return uni(-a, a)
        if t == "he_normal": return nor(0, math.sqrt(2 / fan_in))
        if t == "lecun_normal": return nor(0, math.sqrt(1 / fan_in))
        raise SystemExit("unknown init " + t)

    spec = json.load(open(sys.argv[1]))
    tensors = load_file(sys.argv[2])
    seed = spec["training"]["seed"]
    width = spec["model"]["input"][0]
    checked = 0
    for layer in spec["model"]["layers"]:
        if layer["type"] != "dense":
            continue
        name, units = layer["name"], layer["units"]
        for part, shape in (("weight", (units, width)), ("bias", (units,))):
            if part == "bias" and not layer["use_bias"]:
                continue
            n = int(np.prod(shape))
            want = np.array(values(layer["init"][part], n, width, units, seed, f"{name}.{part}"), dtype=np.float32).reshape(shape)
            got = tensors[f"param/{name}.{part}"]
            assert got.dtype == np.float32 and got.shape == shape, (name, part, got.dtype, got.shape)
            assert np.array_equal(got, want), (name, part, np.abs(got - want).max())
            checked += 1
        width = units
    print(checked)
    """#

  @Test(arguments: ["spirals", "blobs", "circles", "moons"])
  func initialWeightsMatchAnIndependentImplementation(name: String) throws {
    let folder = temporaryFolder()
    let result = try specbench("init", "sessions/\(name).json", "--save", folder + "/\(name)")
    #expect(result.status == 0, "\(result.stderr)")
    let python = try PythonPeer.run(Self.script, [folder + "/\(name).json", folder + "/\(name).safetensors"])
    #expect(python.status == 0, "\(python.stderr)")
    #expect((Int(python.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 2, "\(python.stdout)")
  }

  @Test func initialWeightsForEveryInitializerMatch() throws {
    let folder = temporaryFolder()
    let layers = [
      #"{"type": "dense", "units": 5, "init": {"weight": {"type": "uniform", "low": -0.3, "high": 0.7}, "bias": {"type": "constant", "value": 0.1}}}"#,
      #"{"type": "dense", "units": 6, "init": {"weight": {"type": "normal", "mean": 0.5, "std": 0.02}, "bias": {"type": "ones"}}}"#,
      #"{"type": "dense", "units": 7, "init": {"weight": {"type": "glorot_normal"}, "bias": {"type": "he_uniform"}}}"#,
      #"{"type": "dense", "units": 4, "init": {"weight": {"type": "he_normal"}, "bias": {"type": "lecun_normal"}}}"#,
      #"{"type": "dense", "units": 3, "use_bias": false, "init": {"weight": {"type": "lecun_normal"}}}"#,
    ]
    let text = """
      {"format": "specbench/session", "version": 1, "name": "inits",
       "model": {"input": [4], "layers": [\(layers.joined(separator: ", "))]},
       "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "sgd", "lr": 0.1},
       "data": {"type": "builtin", "name": "iris"}, "training": {"seed": 9876543210123}}
      """
    try text.write(toFile: folder + "/inits.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["init", folder + "/inits.json", "--save", folder + "/out"])
    #expect(result.status == 0, "\(result.stderr)")
    let python = try PythonPeer.run(Self.script, [folder + "/out.json", folder + "/out.safetensors"])
    #expect(python.status == 0, "\(python.stderr)")
    #expect(python.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "9")
  }
}

@Suite("README examples")
struct ReadmeExampleTests {
  /// The README shows the output of validating docs/examples/broken.json; keep them in step.
  @Test func theReadmesValidateOutputIsWhatTheProgramPrints() throws {
    let readme = try String(contentsOfFile: repositoryPath("README.md"), encoding: .utf8)
    let marker = "$ swift run -c release specbench validate docs/examples/broken.json\n"
    let start = try #require(readme.range(of: marker)).upperBound
    let end = try #require(readme.range(of: "\n```", range: start..<readme.endIndex)).lowerBound
    let shown = String(readme[start..<end]) + "\n"
    let result = try specbench("validate", "docs/examples/broken.json")
    #expect(result.status == 1)
    #expect(result.stderr == shown)
  }
}
