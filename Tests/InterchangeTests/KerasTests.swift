import Backends
import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Interchange
@testable import Session

/// Loads a `.keras` file in real Keras 3 (jax backend), predicts the safetensors `input`, and
/// writes `output`; prints what h5py and the loaded model show: each layer's name, class and
/// weight shapes, every dataset of model.weights.h5, the group Keras' own naming expects for each
/// layer, the zip's members, and any warning the load raised.
let loadInKeras = """
  import sys, json, zipfile, warnings, numpy as np, h5py, keras
  from keras.src.utils.naming import to_snake_case
  from safetensors.numpy import load_file, save_file
  path, inputs, outputs = sys.argv[1:4]
  with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      model = keras.saving.load_model(path)
  x = load_file(inputs)["input"]
  y = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
  save_file({"output": np.ascontiguousarray(y)}, outputs)
  archive = zipfile.ZipFile(path)
  archive.extract("model.weights.h5", path + ".d")
  datasets, groups = [], {}
  with h5py.File(path + ".d/model.weights.h5", "r") as h5:
      h5.visititems(lambda name, item: datasets.append([name, list(item.shape)]) if isinstance(item, h5py.Dataset) else None)
      for name in h5["layers"]: groups[name] = h5["layers"][name]["vars"].attrs.get("name")
  expected, seen = [], {}
  for layer in model.layers:
      base = to_snake_case(layer.__class__.__name__)
      expected.append(base if base not in seen else f"{base}_{seen[base]}")
      seen[base] = seen.get(base, 0) + 1
  print(json.dumps({
      "layers": [[l.name, l.__class__.__name__, [list(w.shape) for w in l.weights]] for l in model.layers],
      "datasets": sorted(datasets), "expected_groups": expected, "group_names": groups,
      "members": [[i.filename, i.compress_type] for i in archive.infolist()],
      "keras_version": json.loads(archive.read("metadata.json"))["keras_version"],
      "settings": {l.name: {k: l.get_config().get(k) for k in ("momentum", "epsilon", "negative_slope", "approximate") if k in l.get_config()}
                   for l in model.layers},
      "warnings": [str(w.message) for w in caught]}))
  """

@Suite("Keras 3 files", .enabled(if: KerasPeer.isAvailable, "python3 with keras (jax backend) and h5py is not installed: skipped"))
struct KerasTests {
  static let examples = ONNXRuntimeTests.examples + ["blobs-laplace"]

  /// Every example session, trained, exported and loaded in real Keras 3: the same predictions
  /// within 1e-5; the weights file laid out as Keras' own naming expects (each layer's group its
  /// class in snake case, numbered; each variable the shape of the loaded layer's); no warning
  /// on load; and imported back, the same predictions bit for bit.
  @Test(arguments: examples)
  func everyExampleLoadsInKerasAndComesBack(name: String) throws {
    let (bundle, _) = try trainedExample(name)
    try checkRoundTrip(bundle, name: name, dataFolder: repositoryPath("sessions"))
  }

  /// Every image layer and option Keras can hold: same padding with an even kernel (uneven
  /// pads) and dilation, explicit padding (ZeroPadding2D), groups, strides, dilation (Keras takes
  /// no dilation with strides), a max pool with padding
  /// where Keras' "same" agrees, an average pool with padding (counted, as PyTorch counts it),
  /// batch_norm on images, reshapes, the global pool, a leaky ReLU.
  @Test(arguments: [
    #"[{"type": "conv2d", "filters": 6, "kernel": 2, "padding": "same", "dilation": [1, 2], "activation": "relu"}, {"type": "batch_norm", "momentum": 0.2}, {"type": "max_pool2d", "kernel": 3, "stride": 1, "padding": 1}, {"type": "conv2d", "filters": 8, "kernel": [2, 3], "stride": [1, 2], "padding": 1, "groups": 2, "activation": "tanh"}, {"type": "avg_pool2d", "kernel": 2, "stride": 1, "padding": 1}, {"type": "reshape", "shape": [8, 10, 5]}, {"type": "conv2d", "filters": 4, "kernel": 3, "dilation": 2}, {"type": "global_avg_pool"}, {"type": "dense", "units": 10, "activation": {"type": "leaky_relu", "alpha": 0.05}}]"#,
    #"[{"type": "conv2d", "filters": 4, "kernel": 3, "use_bias": false, "activation": "gelu"}, {"type": "max_pool2d", "kernel": 2}, {"type": "reshape", "shape": [-1]}, {"type": "layer_norm", "eps": 0.0001}, {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 10, "activation": "softmax"}]"#,
  ])
  func everyImageLayerLoadsInKerasAndComesBack(layers: String) throws {
    try checkRoundTrip(try trainedImageSession(layers: layers), name: "images", dataFolder: "")
  }

  func checkRoundTrip(_ bundle: SessionBundle, name: String, dataFolder: String) throws {
    let folder = temporaryFolder("specbench-keras")
    let result = try Exporter.export(bundle, to: .keras, path: folder + "/model", folder: dataFolder)
    #expect(result.files == [folder + "/model.keras"])
    #expect(result.leftOut.contains { $0.hasPrefix("the optimizer (\(bundle.spec.optimizer.name)) and its state") })
    let inputs = randomInputs(bundle.spec.model.input, count: 17, seed: 7)
    let expected = try predictions(bundle, inputs, folder: dataFolder)
    try writeTensors(["input": inputs], to: folder + "/inputs.safetensors")
    let ran = try KerasPeer.run(loadInKeras, [folder + "/model.keras", folder + "/inputs.safetensors", folder + "/outputs.safetensors"])
    try #require(ran.status == 0, "\(ran.stderr)")
    let output = try #require(try readTensors(folder + "/outputs.safetensors")["output"])
    #expect(output.shape == expected.shape)
    #expect(agree(output.scalars, expected.scalars), "Keras and SpecBench differ for \(name)")

    let report = try #require(try JSONParser.parse(ran.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).objectValue)
    #expect(report["warnings"]?.arrayValue == [], "Keras warned on load: \(ran.stdout)")
    #expect(report["keras_version"]?.stringValue == KerasExport.kerasVersion)
    let members = report["members"]?.arrayValue?.compactMap { $0.arrayValue } ?? []
    #expect(members.map { $0[0].stringValue ?? "" } == ["metadata.json", "config.json", "model.weights.h5"])
    #expect(members.allSatisfy { $0[1].numberValue?.literal == "0" }, "Keras stores its members uncompressed")
    // The groups are the ones Keras' naming gives the loaded layers, and every variable has the
    // shape of the loaded layer's weight of that index.
    let layers = report["layers"]?.arrayValue?.compactMap { $0.arrayValue } ?? []
    let groups = report["expected_groups"]?.arrayValue?.compactMap(\.stringValue) ?? []
    try #require(layers.count == groups.count && !layers.isEmpty)
    var expectedDatasets: [String] = []
    for (layer, group) in zip(layers, groups) {
      for (index, shape) in (layer[2].arrayValue ?? []).enumerated() {
        expectedDatasets.append("layers/\(group)/vars/\(index) \(JSONWriter.compact(shape))")
      }
      #expect(report["group_names"]?.objectValue?[group]?.stringValue == group, "the vars group of \(group) is named after it")
    }
    let datasets = (report["datasets"]?.arrayValue ?? []).compactMap { $0.arrayValue }.map {
      "\($0[0].stringValue ?? "") \(JSONWriter.compact($0[1]))"
    }
    #expect(datasets == expectedDatasets.sorted(), "the weights file's datasets")
    // The Keras layers keep SpecBench's names (and the helpers', after their layer), and the
    // settings whose defaults differ are the session's: momentum as Keras' complement.
    let kerasNames = layers.map { $0[0].stringValue ?? "" }
    let settings = report["settings"]?.objectValue
    func setting(_ layer: String, _ key: String) -> Double? {
      settings?[layer]?.objectValue?[key]?.numberValue.flatMap { Double($0.literal) }
    }
    for layer in bundle.spec.model.layers {
      #expect(kerasNames.contains(layer.name), "\(layer.name) is not among \(kerasNames)")
      switch layer.kind {
      case .batchNorm(let eps, let momentum):
        #expect(setting(layer.name, "momentum").map { abs($0 - (1 - momentum)) < 1e-12 } == true, "\(layer.name): \(ran.stdout)")
        #expect(setting(layer.name, "epsilon") == eps)
      case .layerNorm(let eps):
        #expect(setting(layer.name, "epsilon") == eps)
      case .dense(let dense) where dense.activation != .identity && dense.activation != .relu:
        if case .leakyReLU(let alpha) = dense.activation { #expect(setting(layer.name + "_leaky_relu", "negative_slope") == alpha) }
      default: break
      }
    }

    // Back in: the same predictions, bit for bit.
    let bytes = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/model.keras")))
    let (imported, _) = try KerasImport.session(from: bytes, file: "model.keras", name: name)
    #expect(imported.spec.model.layers.map(\.name) == bundle.spec.model.layers.map(\.name))
    #expect(imported.spec.model.layers.map(\.kind.withoutInitializers) == bundle.spec.model.layers.map(\.kind.withoutInitializers))
    try expectSamePredictions(imported, inputs, expected, folder: folder, name: name)
  }

  /// A CSV session with `normalize`: the Keras file starts with a Normalization layer holding the
  /// training split's statistics, so Keras on raw rows predicts what SpecBench predicts on the
  /// standardised rows; imported back, the Normalization folds into the first dense layer and
  /// the session takes raw rows too.
  @Test func aNormalisedCSVSessionTakesRawRowsInKeras() throws {
    let folder = temporaryFolder("specbench-keras-csv")
    let (spec, bundle, raw, _) = try normalisedCSVSession(in: folder)
    let result = try Exporter.export(bundle, to: .keras, path: folder + "/rows", folder: folder)
    #expect(!result.leftOut.contains { $0.contains("standardisation") }, "\(result.leftOut)")
    let dataset = try DatasetLoader.load(spec.data, relativeTo: folder)
    let statistics = try #require(DataSplit(dataset, validationFraction: 0.25, seed: spec.training.seed).standardization)
    let rawRows = Tensor(shape: [120, 2], scalars: raw)
    let expected = try predictions(bundle, statistics.apply(to: rawRows), folder: folder)
    try writeTensors(["input": rawRows], to: folder + "/inputs.safetensors")
    let ran = try KerasPeer.run(loadInKeras, [folder + "/rows.keras", folder + "/inputs.safetensors", folder + "/outputs.safetensors"])
    try #require(ran.status == 0, "\(ran.stderr)")
    #expect(ran.stdout.contains(#"["standardize", "Normalization", []]"#), "\(ran.stdout)")
    let output = try #require(try readTensors(folder + "/outputs.safetensors")["output"])
    #expect(agree(output.scalars, expected.scalars), "Keras on raw rows and SpecBench differ")
    let bytes = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/rows.keras")))
    let (imported, notes) = try KerasImport.session(from: bytes, file: "rows.keras", name: "rows")
    #expect(notes.contains { $0.contains("the Normalization standardize is folded into d1") }, "\(notes)")
    #expect(agree(try predictions(imported, rawRows, folder: folder).scalars, expected.scalars, tolerance: 1e-4))
  }

  /// A weights file that reaches outside itself — an external link, a dataset whose values are
  /// stored in another file of the machine — is refused, naming the path, and nothing of that
  /// other file is read; so is a dataset that claims more values than the file holds.
  @Test func aWeightsFileThatReachesOutsideItselfIsRefused() throws {
    let folder = temporaryFolder("specbench-keras-outside")
    let (bundle, _) = try trainedExample("xor", steps: 1)
    _ = try Exporter.export(bundle, to: .keras, path: folder + "/model", folder: repositoryPath("sessions"))
    try String(repeating: "secret ", count: 64).write(toFile: folder + "/secret.txt", atomically: true, encoding: .utf8)
    let script = """
      import sys, zipfile, shutil, h5py
      folder, kind = sys.argv[1:3]
      source = zipfile.ZipFile(folder + "/model.keras")
      source.extract("model.weights.h5", folder + "/x")
      with h5py.File(folder + "/x/model.weights.h5", "r+") as h5:
          shape = h5["layers/dense/vars/0"].shape
          del h5["layers/dense/vars/0"]
          if kind == "link":
              h5["layers/dense/vars/0"] = h5py.ExternalLink(folder + "/other.h5", "/w")
              with h5py.File(folder + "/other.h5", "w") as other: other["w"] = [[1.0] * shape[1]] * shape[0]
          elif kind == "soft":
              h5["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense/vars/1")
          else:
              h5.create_dataset("layers/dense/vars/0", shape=shape, dtype="f4", external=[(folder + "/secret.txt", 0, 4 * shape[0] * shape[1])])
      with zipfile.ZipFile(folder + "/" + kind + ".keras", "w") as out:
          for name in ("metadata.json", "config.json"): out.writestr(name, source.read(name))
          out.write(folder + "/x/model.weights.h5", "model.weights.h5")
      """
    for (kind, message) in [
      ("link", "layers/dense/vars/0: a link to another file; SpecBench reads only the file's own objects"),
      ("soft", "layers/dense/vars/0: a soft link"),
      ("external", "layers/dense/vars/0: the dataset's values are stored in other files"),
    ] {
      let ran = try KerasPeer.run(script, [folder, kind])
      try #require(ran.status == 0, "\(ran.stderr)")
      let bytes = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/\(kind).keras")))
      do {
        _ = try KerasImport.session(from: bytes, file: "\(kind).keras", name: kind)
        Issue.record("the \(kind) file was imported")
      } catch {
        #expect(error.description.contains(message), "\(error)")
      }
    }
  }

  /// Models built in Keras with `keras.Sequential` (random weights and statistics) import, and
  /// predict what Keras predicts within 1e-5: an MLP with an adapted Normalization (folded into
  /// the first Dense), BatchNormalization, LayerNormalization, Dropout and the activation
  /// layers; a channels-first CNN with ZeroPadding2D, Conv2D in every padding, dilation,
  /// groups, both pools with "same", the global pool and a Reshape.
  @Test(arguments: ["mlp", "cnn"])
  func modelsBuiltInKerasImport(kind: String) throws {
    let folder = temporaryFolder("specbench-keras-built")
    let script = """
      import sys, numpy as np, keras
      from keras import layers as L
      from safetensors.numpy import save_file
      kind, folder = sys.argv[1:3]
      rng = np.random.default_rng(3)
      if kind == "mlp":
          norm = L.Normalization()
          norm.adapt(rng.normal(5, 3, size=(64, 5)).astype("f"))
          model = keras.Sequential([keras.Input((5,)), norm, L.Dense(16, activation="tanh"), L.BatchNormalization(momentum=0.8, epsilon=1e-4),
              L.Dense(12), L.LeakyReLU(negative_slope=0.1), L.Dropout(0.2), L.LayerNormalization(epsilon=1e-5), L.Dense(8, activation="gelu"),
              L.Activation("swish"), L.Dense(6), L.ReLU(), L.Dense(3, activation="softmax")])
          x = rng.normal(5, 3, size=(9, 5)).astype("f")
      else:
          f = "channels_first"
          model = keras.Sequential([keras.Input((2, 9, 9)), L.ZeroPadding2D(1, data_format=f), L.Conv2D(4, 3, data_format=f, activation="relu"),
              L.Conv2D(6, (2, 3), padding="same", dilation_rate=(1, 2), groups=2, data_format=f), L.BatchNormalization(axis=1),
              L.MaxPooling2D(3, strides=1, padding="same", data_format=f), L.ZeroPadding2D(((1, 1), (1, 1)), data_format=f),
              L.AveragePooling2D(2, data_format=f), L.Conv2D(8, 3, strides=2, data_format=f, activation="elu"),
              L.Reshape((8, 4)), L.Flatten(), L.Dense(4), L.Softmax()])
          x = rng.normal(size=(9, 2, 9, 9)).astype("f")
      # Random weights and running statistics (variances positive); the adapted statistics kept.
      values = []
      for v in model.weights:
          w = np.asarray(v.numpy())
          if v.path.startswith("normalization/"): values.append(w)
          elif "variance" in v.path: values.append((np.abs(rng.normal(size=w.shape)) + 0.5).astype(w.dtype))
          else: values.append((rng.normal(size=w.shape) * 0.5).astype(w.dtype))
      model.set_weights(values)
      model.save(folder + "/model.keras")
      save_file({"input": x, "output": np.asarray(model.predict(x, verbose=0), dtype=np.float32)}, folder + "/io.safetensors")
      """
    let ran = try KerasPeer.run(script, [kind, folder])
    try #require(ran.status == 0, "\(ran.stderr)")
    let bytes = [UInt8](try #require(FileManager.default.contents(atPath: folder + "/model.keras")))
    let (imported, notes) = try KerasImport.session(from: bytes, file: "model.keras", name: kind)
    let io = try readTensors(folder + "/io.safetensors")
    let input = try #require(io["input"]), output = try #require(io["output"])
    let ours = try predictions(imported, Tensor(shape: input.shape, scalars: input.scalars), folder: folder)
    #expect(ours.shape == output.shape)
    #expect(
      agree(ours.scalars, output.scalars),
      "SpecBench and Keras differ for the \(kind): \(ours.scalars.prefix(8)) vs \(output.scalars.prefix(8))")
    if kind == "mlp" {
      #expect(notes.contains { $0.contains("the Normalization normalization is folded into dense") }, "\(notes)")
      // The activation layers became the dense layers' own.
      #expect(
        imported.spec.model.layers.map(\.kind.typeName) == [
          "dense", "batch_norm", "dense", "dropout", "layer_norm", "dense", "activation", "dense", "dense",
        ])
      if case .batchNorm(let eps, let momentum) = imported.spec.model.layers[1].kind {
        #expect(eps == 1e-4 && abs(momentum - 0.2) < 1e-12)
      } else {
        Issue.record("the second layer is not batch_norm")
      }
    } else {
      #expect(imported.spec.model.layers.filter { if case .conv2d = $0.kind { true } else { false } }.count == 3)
    }
  }
}

extension LayerSpec.Kind {
  /// The kind with its initializers at their defaults (an import cannot know them; the state
  /// carries the weights).
  var withoutInitializers: LayerSpec.Kind {
    switch self {
    case .dense(var dense):
      dense.initializer = DenseInit()
      return .dense(dense)
    case .conv2d(var conv):
      conv.initializer = DenseInit()
      return .conv2d(conv)
    default: return self
    }
  }
}
