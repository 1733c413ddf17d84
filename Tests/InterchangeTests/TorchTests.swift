import Backends
import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Interchange

/// The safetensors and PyTorch exports. PyTorch itself is not installed for the tests (its
/// Linux wheels with their CUDA libraries are gigabytes); the script is checked for syntax, and
/// run against a stand-in `torch` that builds `nn.Sequential` with PyTorch's naming and shape
/// rules, so that the names and shapes its model would have are compared with what it expects
/// and with the tensors written beside it.
@Suite(
  "PyTorch and safetensors export", .enabled(if: PythonPeer.isAvailable, "python3 with numpy and safetensors is not installed: skipped"))
struct TorchExportTests {
  static let examples = ["blobs", "circles", "digits-cnn", "digits-mlp", "iris", "moons", "sine", "sine-lbfgs", "spirals", "xor"]

  @Test func stateDictNamesForTheSequential() throws {
    let (bundle, _) = try trainedExample("iris", steps: 20)
    let folder = temporaryFolder("specbench-torch")
    let result = try Exporter.export(bundle, to: .safetensors, path: folder + "/iris", folder: repositoryPath("sessions"))
    #expect(result.files == [folder + "/iris.safetensors"])
    let tensors = try readTensors(folder + "/iris.safetensors")
    let shapes = tensors.mapValues(\.shape)
    #expect(
      shapes == [
        "0.weight": [4], "0.bias": [4], "0.running_mean": [4], "0.running_var": [4], "0.num_batches_tracked": [],
        "1.weight": [16, 4], "1.bias": [16], "4.weight": [3, 16], "4.bias": [3],
      ])
    let state = try bundle.trainingState()
    #expect(tensors["1.weight"]?.scalars == state.tensors["param/dense1.weight"]?.scalars)
    #expect(tensors["0.running_var"]?.scalars == state.tensors["buffer/batch_norm1.running_var"]?.scalars)
    #expect(tensors["0.num_batches_tracked"]?.scalars == [20])
    // Python reads it as it is.
    let read = try PythonPeer.run(
      "import sys; from safetensors.numpy import load_file; t = load_file(sys.argv[1]); print(sorted((k, list(v.shape)) for k, v in t.items()))",
      [folder + "/iris.safetensors"])
    #expect(read.stdout.contains("('4.weight', [3, 16])"), "\(read.stdout) \(read.stderr)")
  }

  @Test(arguments: examples)
  func theScriptBuildsTheModelItsTensorsFit(name: String) throws {
    let (bundle, _) = try trainedExample(name, steps: 25)
    let folder = temporaryFolder("specbench-torch")
    let result = try Exporter.export(bundle, to: .pytorch, path: folder + "/train_\(name)", folder: repositoryPath("sessions"))
    #expect(result.files == [folder + "/train_\(name).py", folder + "/train_\(name).safetensors"])
    let run = try PythonPeer.run(Self.standIn, [folder + "/train_\(name).py", folder + "/train_\(name).safetensors"])
    #expect(run.status == 0, "\(run.stderr)")
    let report = try #require(
      try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "the stand-in's report: \(run.stdout) \(run.stderr)")
    let built = report["built"] as? [String: [Int]], expected = report["expected"] as? [String: [Int]]
    let file = report["file"] as? [String: [Int]]
    #expect(built != nil && built == expected, "the Sequential the script builds has the names and shapes it expects")
    #expect(expected == file, "the tensors beside the script are the ones it expects")
    #expect((report["missing_slots"] as? [String]) == [], "every parameter has its optimizer slots")
    // Its learning rate is the session's schedule.
    let rates = report["lr"] as? [Double] ?? []
    let base = bundle.spec.optimizer.learningRate
    #expect(rates.count == 300)
    for (index, rate) in rates.enumerated() {
      let t = index + 1
      #expect(abs(rate - bundle.spec.schedule.learningRate(at: t, base: base)) <= 1e-12 * max(1, rate), "lr at \(t)")
    }
    // The training data is there, shaped as the model takes it.
    let inputShape = report["inputs"] as? [Int]
    #expect(inputShape.map { Array($0.dropFirst()) } == bundle.spec.model.input)
    #expect((report["step"] as? Int) == 25)
    // Without --steps it trains up to the session's next limit; --steps N trains N.
    #expect((report["planned"] as? Int).map { $0 > 0 } == true && (report["planned_note"] as? String) == "")
    #expect((report["requested"] as? Int) == 7)
  }

  /// A session that standardises its data: the script carries the statistics (the training
  /// split's) and a `standardize` for raw rows; the data it saves is standardised already.
  @Test func theScriptCarriesTheDataStandardisation() throws {
    let folder = temporaryFolder("specbench-torch")
    let (spec, bundle, raw, _) = try normalisedCSVSession(in: folder)
    _ = try Exporter.export(bundle, to: .pytorch, path: folder + "/rows", folder: folder)
    let split = DataSplit(try DatasetLoader.load(spec.data, relativeTo: folder), validationFraction: 0.25, seed: spec.training.seed)
    let statistics = try #require(split.standardization)
    let read = try PythonPeer.run(
      """
      import ast, json, sys
      from safetensors.numpy import load_file
      tree = ast.parse(open(sys.argv[1]).read())
      value = lambda name: next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == name)
      print(json.dumps({"mean": value("INPUT_MEAN"), "std": value("INPUT_STD"), "first": [float(x) for x in load_file(sys.argv[2])["data/inputs"][0]]}))
      """, [folder + "/rows.py", folder + "/rows.safetensors"])
    #expect(read.status == 0, "\(read.stderr)")
    let report = try #require(try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: [Double]], "\(read.stdout)")
    // (As Python reads the literals and Foundation's JSON reader reads them back: equal to 1e-12.)
    let close = { (a: [Double]?, b: [Double]) in
      a.map { zip($0, b).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) } && $0.count == b.count } == true
    }
    #expect(close(report["mean"], statistics.mean) && close(report["std"], statistics.std), "\(report) \(statistics)")
    // The saved training data is the standardised rows: the first training row is raw row
    // split.train's first, standardised.
    #expect(report["first"]?.map(Float.init) == Array(split.train.inputs.scalars.prefix(2)))
    #expect(split.train.inputs.scalars[0] != raw[0] || split.train.inputs.scalars[1] != raw[1], "the saved rows are not the raw ones")
  }

  /// A session already past its own max_steps: the script trains a stated default, says so, and
  /// the export lists it (it used to train 0 steps without a word).
  @Test func aSessionPastItsLimitsTrainsTheDefaultAndSaysSo() throws {
    var (bundle, _) = try trainedExample("xor", steps: 25)
    bundle.spec.training.stop = [.maxSteps(steps: 10)]
    let folder = temporaryFolder("specbench-torch")
    let result = try Exporter.export(bundle, to: .pytorch, path: folder + "/past", folder: repositoryPath("sessions"))
    #expect(result.leftOut.contains { $0.contains("it is at step 25, past them): the script trains 1000 more steps") }, "\(result.leftOut)")
    let run = try PythonPeer.run(Self.standIn, [folder + "/past.py", folder + "/past.safetensors"])
    #expect(run.status == 0, "\(run.stderr)")
    let report = try #require(
      try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout) \(run.stderr)")
    #expect((report["planned"] as? Int) == 1000)
    #expect(
      (report["planned_note"] as? String)
        == "at step 25 the session is past its limits (max_steps 10, max_epochs None); training 1000 more steps (--steps N trains N)\n")
  }

  /// Checks a generated script without PyTorch: compiles it, reads its EXPECTED table, and runs
  /// `build_model()` and `learning_rate()` with a stand-in `torch` whose modules name and shape
  /// their parameters as PyTorch's do. Prints a JSON report.
  static let standIn = #"""
    import ast, json, sys, types
    from safetensors.numpy import load_file
    script, tensors_path = sys.argv[1:3]
    source = open(script).read()
    code = compile(source, script, "exec")
    tree = ast.parse(source)
    expected = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "EXPECTED")
    step = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "STEP")

    class Module:
        def __init__(self, *args, **kwargs):
            self.tensors = {}
        def shapes(self):
            return dict(self.tensors)
    class Linear(Module):
        def __init__(self, inputs, outputs, bias=True):
            self.tensors = {"weight": [outputs, inputs], **({"bias": [outputs]} if bias else {})}
    class LayerNorm(Module):
        def __init__(self, features, eps=1e-5):
            self.tensors = {"weight": [features], "bias": [features]}
    class BatchNorm(Module):
        def __init__(self, features, eps=1e-5, momentum=0.1):
            self.tensors = {"weight": [features], "bias": [features], "running_mean": [features], "running_var": [features],
                            "num_batches_tracked": []}
    def pair(v):
        return list(v) if isinstance(v, (tuple, list)) else [v, v]
    class Conv2d(Module):
        def __init__(self, inputs, outputs, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
            assert padding == "same" or len(pair(padding)) == 2 and inputs % groups == 0 and outputs % groups == 0
            self.tensors = {"weight": [outputs, inputs // groups] + pair(kernel_size), **({"bias": [outputs]} if bias else {})}
    class Sequential(Module):
        def __init__(self, *children):
            self.children = children
        def shapes(self):
            return {f"{i}.{k}": v for i, child in enumerate(self.children) for k, v in child.shapes().items()}
    nn = types.ModuleType("torch.nn")
    nn.Sequential, nn.Linear, nn.LayerNorm = Sequential, Linear, LayerNorm
    nn.BatchNorm1d = nn.BatchNorm2d = nn.BatchNorm3d = BatchNorm
    nn.Conv2d = Conv2d
    for name in ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "Softplus", "ELU", "Softmax", "Identity", "Dropout", "Flatten",
                 "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Unflatten"]:
        setattr(nn, name, type(name, (Module,), {}))
    torch = types.ModuleType("torch")
    torch.nn = nn
    stand_in = types.ModuleType("safetensors.torch")
    stand_in.load_file = lambda path: None
    sys.modules.update({"torch": torch, "torch.nn": nn, "safetensors.torch": stand_in})
    namespace = {"__name__": "exported", "__file__": script}
    exec(code, namespace)
    built = namespace["build_model"]().shapes()
    tensors = load_file(tensors_path)
    file = {k[len("model/"):]: list(v.shape) for k, v in tensors.items() if k.startswith("model/")}
    slots = ast.literal_eval(source.split("for slot in ")[1].split("}")[0])
    parameters = [k for k in built if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    missing = [f"optimizer/{p}/{s}" for p in parameters for s in slots if f"optimizer/{p}/{s}" not in tensors]
    import contextlib, io
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        planned = namespace["planned_steps"](tensors["data/inputs"].shape[0], None)
    print(json.dumps({"built": built, "expected": expected, "file": file, "missing_slots": missing, "step": step,
                      "lr": [namespace["learning_rate"](t) for t in range(1, 301)], "inputs": list(tensors["data/inputs"].shape),
                      "planned": planned, "planned_note": said.getvalue(),
                      "requested": namespace["planned_steps"](tensors["data/inputs"].shape[0], 7)}))
    """#
}
