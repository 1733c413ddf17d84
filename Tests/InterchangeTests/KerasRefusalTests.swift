import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Interchange

/// Keras archives built to break the importer — cut short, members missing or damaged, wrong
/// shapes, sizes declared past any limit, layers SpecBench has no counterpart for — and sessions
/// Keras cannot hold. Each is refused with the member, path or layer named; nothing is written.
@Suite("Keras files refused")
struct KerasRefusalTests {
  /// A two-layer MLP (input 4, dense1 8 relu, dense2 3) and its archive's members.
  static func mlp() throws -> (bundle: SessionBundle, config: [UInt8], weights: [UInt8], archive: [UInt8]) {
    let spec = SessionSpec(
      name: "mlp",
      model: ModelSpec(
        input: [4],
        layers: [
          LayerSpec(name: "dense1", kind: .dense(DenseLayer(units: 8, activation: .relu))),
          LayerSpec(name: "dense2", kind: .dense(DenseLayer(units: 3))),
        ]),
      loss: .softmaxCrossEntropy, optimizer: .adam(.init(weightDecay: 0)),
      data: DataSpec(source: .blobs(samples: 30, centers: 3, features: 4, std: 1, seed: 1)))
    let state = try spec.initialTrainingState()
    let bundle = SessionBundle(spec: spec, state: state)
    let layers = try KerasExport.kerasLayers(spec: spec, state: state, standardization: nil)
    let config = Array(JSONWriter.compact(KerasExport.configJSON(spec: spec, layers: layers)).utf8)
    let weights = try HDF5Image.bytes(of: KerasExport.weightsTree(layers), attributes: KerasExport.weightsAttributes(layers))
    let archive = try KerasExport.export(spec: spec, state: state).bytes
    return (bundle, config, weights, archive)
  }

  static func refusal(_ bytes: [UInt8]) -> String? {
    do {
      _ = try KerasImport.session(from: bytes, file: "m.keras", name: "m")
      return nil
    } catch {
      return error.description
    }
  }

  static func archive(config: [UInt8]?, weights: [UInt8]?) throws -> [UInt8] {
    var members: [(String, [UInt8])] = [("metadata.json", Array(#"{"keras_version": "3.15.1"}"#.utf8))]
    if let config { members.append(("config.json", config)) }
    if let weights { members.append(("model.weights.h5", weights)) }
    return try KerasArchive.zip(members)
  }

  @Test func theExportReadsBackAndItsWeightsAreWhereKerasLooks() throws {
    let (bundle, _, weights, archive) = try Self.mlp()
    let tree = try HDF5Image.tree(of: weights)
    #expect(tree["layers"]?.children?.keys.sorted() == ["dense", "dense_1"])
    guard case .floats(let shape, _)? = HDF5Image.Node.group(tree).at("layers/dense/vars/0") else {
      Issue.record("no kernel at layers/dense/vars/0")
      return
    }
    #expect(shape == [4, 8], "Keras' kernel is [in, out]")
    let (imported, _) = try KerasImport.session(from: archive, file: "m.keras", name: "m")
    #expect(imported.spec.model == bundle.spec.model)
    #expect(try imported.trainingState().tensors["param/dense1.weight"] == bundle.trainingState().tensors["param/dense1.weight"])
    #expect(
      KerasExport.snakeCase("LeakyReLU") == "leaky_re_lu" && KerasExport.snakeCase("GlobalAveragePooling2D") == "global_average_pooling2d")
    #expect(KerasExport.snakeCase("Conv2D") == "conv2d" && KerasExport.snakeCase("BatchNormalization") == "batch_normalization")
  }

  /// Cut anywhere, the archive is refused: not a zip any more, or a member cut short.
  @Test func truncatedArchivesAreRefused() throws {
    let archive = try Self.mlp().archive
    for length in [0, 3, 100, archive.count / 2, archive.count - 30, archive.count - 1] {
      let text = Self.refusal(Array(archive.prefix(length)))
      #expect(
        text?.hasPrefix("m.keras") == true && text?.hasSuffix("nothing was written") == true, "cut at \(length): \(text ?? "accepted")")
    }
  }

  @Test func missingAndDamagedMembersAreNamed() throws {
    let (_, config, weights, archive) = try Self.mlp()
    #expect(
      Self.refusal(try Self.archive(config: config, weights: nil))?.contains("(model.weights.h5): the archive has no model.weights.h5")
        == true)
    #expect(
      Self.refusal(try Self.archive(config: nil, weights: weights))?.contains("(config.json): the archive has no config.json") == true)
    // A byte of the stored weights flipped: its CRC-32 no longer matches.
    var damaged = archive
    let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46]
    let start = try #require((0..<(damaged.count - 4)).first { Array(damaged[$0..<($0 + 4)]) == signature })
    damaged[start + 600] ^= 0xFF
    let text = Self.refusal(damaged)
    #expect(text?.contains("(model.weights.h5): its data is damaged or cut short") == true, "\(text ?? "accepted")")
    // Not HDF5 at all, and HDF5 cut short.
    #expect(
      Self.refusal(try Self.archive(config: config, weights: Array("not hdf5".utf8)))?.contains("not an HDF5 file") == true)
    let cut = Self.refusal(try Self.archive(config: config, weights: Array(weights.prefix(weights.count / 2))))
    #expect(
      cut?.contains("(model.weights.h5): HDF5 cannot open it (a damaged or truncated file)") == true,
      "\(cut ?? "accepted")")
    #expect(
      Self.refusal(try Self.archive(config: Array("{not json".utf8), weights: weights))?.contains("(config.json): not valid JSON") == true)
  }

  /// A weight of the wrong shape, a missing layer group, a missing variable, a NaN.
  @Test func weightsThatDoNotFitAreNamedByTheirPath() throws {
    let (_, config, _, _) = try Self.mlp()
    func weights(_ dense: [String: HDF5Image.Node], _ dense1: [String: HDF5Image.Node]?) throws -> [UInt8] {
      var layers: [String: HDF5Image.Node] = ["dense": .group(["vars": .group(dense)])]
      if let dense1 { layers["dense_1"] = .group(["vars": .group(dense1)]) }
      return try HDF5Image.bytes(of: ["layers": .group(layers), "vars": .group([:])])
    }
    let good1: [String: HDF5Image.Node] = [
      "0": .floats(shape: [8, 3], values: .init(repeating: 0.1, count: 24)), "1": .floats(shape: [3], values: [0, 0, 0]),
    ]
    let cases: [([UInt8], String)] = [
      (
        try weights(
          [
            "0": .floats(shape: [8, 4], values: .init(repeating: 1, count: 32)),
            "1": .floats(shape: [8], values: .init(repeating: 0, count: 8)),
          ], good1),
        "layers/dense/vars/0 has shape [8, 4], but layer \"dense1\" needs [4, 8]"
      ),
      (
        try weights(
          [
            "0": .floats(shape: [4, 8], values: .init(repeating: 1, count: 32)),
            "1": .floats(shape: [8], values: .init(repeating: 0, count: 8)),
          ], nil),
        "it has no group layers/dense_1/vars for layer \"dense2\" (Dense)"
      ),
      (
        try weights(["0": .floats(shape: [4, 8], values: .init(repeating: 1, count: 32))], good1),
        "layers/dense/vars holds 1 variables; Dense \"dense1\" as configured has 2"
      ),
      (
        try weights(
          [
            "0": .floats(shape: [4, 8], values: [.nan] + .init(repeating: 1, count: 31)),
            "1": .floats(shape: [8], values: .init(repeating: 0, count: 8)),
          ], good1),
        "layers/dense/vars/0 holds a NaN or an infinity"
      ),
      (
        try weights(
          [
            "0": .integers(shape: [4, 8], values: .init(repeating: 1, count: 32)),
            "1": .floats(shape: [8], values: .init(repeating: 0, count: 8)),
          ], good1),
        "layers/dense/vars/0 is missing or is not a float dataset"
      ),
    ]
    for (bytes, message) in cases {
      let text = Self.refusal(try Self.archive(config: config, weights: bytes))
      #expect(text?.contains(message) == true && text?.contains("(model.weights.h5)") == true, "\(text ?? "accepted"), expected \(message)")
    }
  }

  /// Sizes declared past every limit are refused before anything is allocated: a member of
  /// 4 GB in the zip's directory, a dataset of 2^40 floats in the HDF5 file.
  @Test func declaredSizesAreCheckedBeforeAllocating() throws {
    let (_, config, _, archive) = try Self.mlp()
    var patched = archive
    // The central directory record of model.weights.h5: its uncompressed size at offset 24.
    let name = Array("model.weights.h5".utf8)
    func isRecord(_ at: Int) -> Bool {
      let signature: [UInt8] = [0x50, 0x4B, 0x01, 0x02]
      guard patched[at..<(at + 4)].elementsEqual(signature), at + 46 + name.count <= patched.count else { return false }
      return patched[(at + 46)..<(at + 46 + name.count)].elementsEqual(name)
    }
    let record = try #require((0..<(patched.count - 46)).first(where: isRecord))
    for offset in 24..<28 { patched[record + offset] = 0xF0 }
    let text = Self.refusal(patched)
    #expect(
      text?.contains("(model.weights.h5): it declares 4042322160 bytes, more than the 2147483648 SpecBench reads") == true,
      "\(text ?? "accepted")")

    let huge = try HDF5Image.bytes(of: [
      "layers": .group(["dense": .group(["vars": .group(["0": .floats(shape: [1 << 20, 1 << 20], values: [])])])]), "vars": .group([:]),
    ])
    #expect(huge.count < 1 << 20, "the declared dataset is not stored")
    let hugeText = Self.refusal(try Self.archive(config: config, weights: huge))
    #expect(hugeText?.contains("layers/dense/vars/0: the dataset declares shape [1048576, 1048576]") == true, "\(hugeText ?? "accepted")")
  }

  static func config(layers: String, input: String = "[null, 4]") -> [UInt8] {
    Array(
      """
      {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": \(input), "name": "input_layer"}}, \(layers)]}}
      """.utf8)
  }

  /// Layers SpecBench has no counterpart for name themselves and their class; control
  /// characters in a name arrive escaped.
  @Test(arguments: [
    (#"{"class_name": "LSTM", "config": {"name": "lstm_7", "units": 4}}"#, "layer \"lstm_7\" (LSTM): SpecBench has no such layer"),
    (
      #"{"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": [3, 3], "data_format": "channels_last"}}"#,
      "layer \"c\" (Conv2D): data_format channels_last: SpecBench's images are channels first"
    ),
    (
      #"{"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "selu"}}"#,
      "layer \"d\" (Dense): activation \"selu\" has no SpecBench function"
    ),
    (#"{"class_name": "Dense", "config": {"name": "evil\u001b[2J", "units": 3}}"#, #"Dense "evil\u{1B}[2J""#),
    (
      #"{"class_name": "Reshape", "config": {"name": "r", "target_shape": [1099511627776, 1099511627776]}}"#,
      "layer \"r\" (Reshape): target_shape"
    ),
    (
      #"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": 1, "data_format": "channels_first"}}"#,
      "layer \"z\" (ZeroPadding2D): it needs [C, H, W] images, but its input is [4]"
    ),
  ])
  func unsupportedLayersAreNamed(layer: String, message: String) throws {
    // Every layer's (empty) group is there, so that what is refused is the layer itself.
    let groups = ["lstm", "conv2d", "dense", "reshape", "zero_padding2d"].map { ($0, HDF5Image.Node.group(["vars": .group([:])])) }
    let text = Self.refusal(
      try Self.archive(
        config: Self.config(layers: layer), weights: try HDF5Image.bytes(of: ["layers": .group(Dictionary(uniqueKeysWithValues: groups))])))
    #expect(text?.contains(message) == true, "\(text ?? "accepted")")
    #expect(text?.contains("\u{1B}") != true, "a control character reached the message")
  }

  @Test func onlySequentialModelsWithAFixedInputImport() throws {
    let weights = try HDF5Image.bytes(of: ["layers": .group([:])])
    let functional = Array(#"{"class_name": "Functional", "config": {"layers": []}}"#.utf8)
    #expect(
      Self.refusal(try Self.archive(config: functional, weights: weights))?.contains(
        "the model is a Functional; SpecBench imports Keras Sequential models") == true)
    let open = Self.config(layers: #"{"class_name": "Dense", "config": {"name": "d", "units": 3}}"#, input: "[null, null]")
    #expect(Self.refusal(try Self.archive(config: open, weights: weights))?.contains("SpecBench needs fixed sample sizes") == true)
    // Zero padding with nothing after it to take it.
    let dangling = Self.config(
      layers: #"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": 1, "data_format": "channels_first"}}"#,
      input: "[null, 1, 8, 8]")
    let padded = try HDF5Image.bytes(of: ["layers": .group(["zero_padding2d": .group(["vars": .group([:])])])])
    let text = Self.refusal(try Self.archive(config: dangling, weights: padded))
    #expect(text?.contains("layer \"z\" (ZeroPadding2D): zero padding must be followed by a Conv2D") == true, "\(text ?? "accepted")")
  }

  /// Sessions Keras cannot hold are refused on export, naming the layer, and nothing is written.
  @Test(arguments: [
    (
      #"{"type": "max_pool2d", "kernel": 3, "stride": 2, "padding": 1}"#,
      "max_pool2d1: a max_pool2d with padding [1, 1] over 8×8 has no Keras equivalent"
    ),
    (
      #"{"type": "conv2d", "filters": 2, "kernel": 2, "stride": 2, "dilation": 2}"#,
      "conv2d1: Keras' Conv2D does not take strides greater than 1 together with a dilation"
    ),
  ])
  func sessionsKerasCannotHoldAreRefused(layer: String, message: String) throws {
    let text = """
      {"format": "specbench/session", "version": 6, "name": "images", "model": {"input": [1, 8, 8], "layers": [\(layer), {"type": "flatten"}, {"type": "dense", "units": 10}]},
       "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "sgd", "lr": 0.1}, "data": {"type": "builtin", "name": "digits"}}
      """
    let spec = try SessionSpec.decode(Array(text.utf8))
    let folder = temporaryFolder("specbench-keras-refused")
    do {
      _ = try Exporter.export(SessionBundle(spec: spec), to: .keras, path: folder + "/m", folder: "")
      Issue.record("the session was exported")
    } catch let error as InterchangeError {
      #expect(error.description.contains(message), "\(error)")
    }
    #expect(!FileManager.default.fileExists(atPath: folder + "/m.keras"))
  }
}

extension KerasRefusalTests {
  /// Bytes of the weights file damaged at random (seeded): each damaged file is refused with the
  /// member named, or read (a flipped bit inside a weight's value is still a float) — never a
  /// crash or a hang.
  @Test func randomlyDamagedWeightFilesNeverCrash() throws {
    let (_, config, weights, _) = try Self.mlp()
    var generator = SplitMix64(seed: 19, stream: "damaged-h5")
    var refused = 0
    for _ in 0..<300 {
      var damaged = weights
      for _ in 0..<(1 + Int(generator.next() % 4)) {
        let at = 8 + Int(generator.next() % UInt64(damaged.count - 8))
        damaged[at] = UInt8(truncatingIfNeeded: generator.next())
      }
      if let text = Self.refusal(try Self.archive(config: config, weights: damaged)) {
        refused += 1
        #expect(text.hasPrefix("m.keras"), "\(text)")
      }
    }
    #expect(refused > 0, "no damage was noticed")
  }
}
