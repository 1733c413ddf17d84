import Datasets
import Foundation
import SpecKit

/// A session as a Keras 3 archive (`.keras`): `metadata.json`, `config.json` (a `Sequential`
/// with its `InputLayer`) and `model.weights.h5`, laid out as Keras 3's saving library reads
/// them — each layer's variables at `layers/<snake_case class name>[_k]/vars/<i>`, numbered by
/// class in the model's order; dense kernels `[in, out]`, convolution kernels `[kh, kw, in/groups,
/// out]`. Images stay channels first (`data_format: "channels_first"`), as the format's samples
/// are `[C, H, W]`.
///
/// Every setting whose Keras default differs from PyTorch's is written out (batch-norm momentum
/// as `1 − ours` and its epsilon, layer-norm epsilon, leaky ReLU's slope as a `LeakyReLU` layer,
/// GELU exact), so that the Keras model computes what the session does.
public enum KerasExport {
  /// The Keras version whose file layout this writes (and that the tests load it with).
  public static let kerasVersion = "3.15.1"

  /// One Keras layer: its class, its config's own members, and its variables in Keras' order.
  struct Layer {
    var className: String
    var name: String
    var config: [JSONObject.Member]
    var variables: [(shape: [Int], values: [Float])] = []
  }

  /// The archive's bytes and what it leaves out.
  public static func export(
    spec: SessionSpec, state: TrainingState, standardization: Standardization? = nil
  ) throws(InterchangeError) -> (bytes: [UInt8], leftOut: [String]) {
    let layers = try kerasLayers(spec: spec, state: state, standardization: standardization)
    let config = configJSON(spec: spec, layers: layers)
    let now = Date()
    let metadata = JSONValue.object([
      .init(key: "keras_version", value: .string(kerasVersion)), .init(key: "date_saved", value: .string(Self.dateSaved(now))),
    ])
    let weights: [UInt8]
    do { weights = try HDF5Image.bytes(of: weightsTree(layers), attributes: weightsAttributes(layers)) } catch {
      throw .cannotExport(format: "keras", reason: "the weights file could not be written: \(error)")
    }
    let bytes = try KerasArchive.zip(
      [
        (KerasArchive.metadataFile, Array(JSONWriter.compact(metadata).utf8)),
        (KerasArchive.configFile, Array(JSONWriter.compact(config).utf8)),
        (KerasArchive.weightsFile, weights),
      ], date: now)
    var leftOut = [
      "the optimizer (\(spec.optimizer.name)) and its state: Keras' update rules are not PyTorch's (Adam's epsilon outside the bias correction, SGD's momentum holding −lr·v), so a carried state would not continue the same run; compile the model in Keras to train it",
      "the schedule, the data, the loss (\(spec.loss.name)) and the stop rules",
    ]
    if spec.model.layers.contains(where: { if case .batchNorm = $0.kind { true } else { false } }) {
      leftOut.append(
        "batch_norm's running variance is PyTorch's unbiased estimate; it predicts the same, but Keras' own training updates it with the biased batch variance"
      )
    }
    if spec.model.layers.contains(where: { if case .dropout = $0.kind { true } else { false } }) {
      leftOut.append("dropout's mask stream: Keras draws its own masks when it trains")
    }
    return (bytes, leftOut)
  }

  /// `YYYY-MM-DD@HH:MM:SS` in UTC, as Keras writes `date_saved`.
  static func dateSaved(_ date: Date) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    func two(_ value: Int?) -> String { value.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
    return "\(c.year ?? 1970)-\(two(c.month))-\(two(c.day))@\(two(c.hour)):\(two(c.minute)):\(two(c.second))"
  }

  // MARK: Layers

  static func kerasLayers(spec: SessionSpec, state: TrainingState, standardization: Standardization?) throws(InterchangeError)
    -> [Layer]
  {
    let shapes: [LayerShape]
    do { shapes = try spec.model.layerShapes() } catch {
      throw .cannotExport(format: "keras", reason: "the model's shapes do not chain: \(error.issues.first?.message ?? "\(error)")")
    }
    func tensor(_ key: String) throws(InterchangeError) -> StoredTensor {
      guard let tensor = state.tensors[key] else { throw .cannotExport(format: "keras", reason: "the state has no tensor \(key)") }
      return tensor
    }
    var layers: [Layer] = []
    if let standardization {
      // (x − mean) / sqrt(variance): a constant column (std 0) is only centred, as in training.
      layers.append(
        Layer(
          className: "Normalization", name: "standardize",
          config: [
            .init(key: "axis", value: .array([.int(-1)])), .init(key: "invert", value: .bool(false)),
            .init(key: "mean", value: .array(standardization.mean.map { .double($0) })),
            .init(key: "variance", value: .array(standardization.std.map { .double($0 > 0 ? $0 * $0 : 1) })),
          ]))
    }
    for shape in shapes {
      let name = shape.layer.name
      switch shape.layer.kind {
      case .dense(let dense):
        let weight = try tensor("param/\(name).weight")
        var layer = Layer(
          className: "Dense", name: name,
          config: [
            .init(key: "units", value: .int(dense.units)), .init(key: "activation", value: .string(function(dense.activation))),
            .init(key: "use_bias", value: .bool(dense.useBias)),
          ])
        // PyTorch's [out, in] is Keras' kernel transposed.
        layer.variables.append(
          ([weight.shape[1], weight.shape[0]], WeightLayouts.transpose(weight.scalars, rows: weight.shape[0], columns: weight.shape[1])))
        if dense.useBias { layer.variables.append(try bias("param/\(name).bias")) }
        layers.append(layer)
        if let slope = leakySlope(dense.activation) { layers.append(leakyReLU(name + "_leaky_relu", slope)) }
      case .activation(let activation):
        if let slope = leakySlope(activation) {
          layers.append(leakyReLU(name, slope))
        } else {
          layers.append(
            Layer(className: "Activation", name: name, config: [.init(key: "activation", value: .string(function(activation)))]))
        }
      case .dropout(let rate):
        layers.append(
          Layer(className: "Dropout", name: name, config: [.init(key: "rate", value: .double(rate)), .init(key: "seed", value: .null)]))
      case .flatten:
        // channels_last: a plain row-major flatten (channels_first would move the channels last first).
        layers.append(Layer(className: "Flatten", name: name, config: [.init(key: "data_format", value: .string("channels_last"))]))
      case .layerNorm(let eps):
        var layer = Layer(
          className: "LayerNormalization", name: name,
          config: [
            .init(key: "axis", value: .array([.int(-1)])), .init(key: "epsilon", value: .double(eps)),
            .init(key: "center", value: .bool(true)), .init(key: "scale", value: .bool(true)),
            .init(key: "rms_scaling", value: .bool(false)),
          ])
        layer.variables = [try bias("param/\(name).weight"), try bias("param/\(name).bias")]
        layers.append(layer)
      case .batchNorm(let eps, let momentum):
        // The first sample axis (Keras' axis 1); Keras' momentum weighs the old running value.
        var layer = Layer(
          className: "BatchNormalization", name: name,
          config: [
            .init(key: "axis", value: .int(1)), .init(key: "momentum", value: .double(complement(momentum))),
            .init(key: "epsilon", value: .double(eps)), .init(key: "center", value: .bool(true)), .init(key: "scale", value: .bool(true)),
          ])
        layer.variables = [
          try bias("param/\(name).weight"), try bias("param/\(name).bias"), try bias("buffer/\(name).running_mean"),
          try bias("buffer/\(name).running_var"),
        ]
        layers.append(layer)
      case .conv2d(let conv):
        let window = conv.window
        if (window.stride.height > 1 || window.stride.width > 1) && (window.dilation.height > 1 || window.dilation.width > 1) {
          throw .cannotExport(
            format: "keras",
            reason:
              "\(name): Keras' Conv2D does not take strides greater than 1 together with a dilation greater than 1 (this one has stride \(window.stride), dilation \(window.dilation)); nothing was written"
          )
        }
        var padding = "valid"
        switch window.padding {
        case .same: padding = "same"
        case .explicit(let pad) where pad == Pair(0): break
        case .explicit(let pad): layers.append(zeroPadding(name + "_pad", pad))
        }
        let weight = try tensor("param/\(name).weight")
        var layer = Layer(
          className: "Conv2D", name: name,
          config: [
            .init(key: "filters", value: .int(conv.filters)), .init(key: "kernel_size", value: pair(window.kernel)),
            .init(key: "strides", value: pair(window.stride)), .init(key: "padding", value: .string(padding)),
            .init(key: "data_format", value: .string("channels_first")), .init(key: "dilation_rate", value: pair(window.dilation)),
            .init(key: "groups", value: .int(conv.groups)), .init(key: "activation", value: .string(function(conv.activation))),
            .init(key: "use_bias", value: .bool(conv.useBias)),
          ])
        layer.variables.append(convolutionKernel(weight))
        if conv.useBias { layer.variables.append(try bias("param/\(name).bias")) }
        layers.append(layer)
        if let slope = leakySlope(conv.activation) { layers.append(leakyReLU(name + "_leaky_relu", slope)) }
      case .maxPool2d(let pool):
        let padding = try maxPoolPadding(pool.window, input: shape.inputShape, layer: name)
        layers.append(pooling("MaxPooling2D", name, pool.window, padding: padding))
      case .avgPool2d(let pool):
        // Zeros padded first and counted in the mean: PyTorch's count_include_pad.
        if case .explicit(let pad) = pool.window.padding, pad != Pair(0) { layers.append(zeroPadding(name + "_pad", pad)) }
        layers.append(pooling("AveragePooling2D", name, pool.window, padding: "valid"))
      case .globalAvgPool:
        layers.append(
          Layer(
            className: "GlobalAveragePooling2D", name: name,
            config: [.init(key: "data_format", value: .string("channels_first")), .init(key: "keepdims", value: .bool(false))]))
      case .reshape(let target):
        // As written (Keras takes one -1 too).
        layers.append(Layer(className: "Reshape", name: name, config: [.init(key: "target_shape", value: .array(target.map { .int($0) }))]))
      }
    }
    return layers

    func bias(_ key: String) throws(InterchangeError) -> (shape: [Int], values: [Float]) {
      let stored = try tensor(key)
      return (stored.shape, stored.scalars)
    }
  }

  /// 1 − `momentum`, rounded to 15 significant digits (0.1 ↔ 0.9, not 0.09999999999999998):
  /// Keras' momentum weighs the old running value, PyTorch's the new batch's.
  static func complement(_ momentum: Double) -> Double {
    let value = 1 - momentum
    return Double(String(format: "%.15g", value)) ?? value
  }

  /// Keras' name of an activation function (leaky ReLU is a layer of its own, after a linear one).
  static func function(_ activation: Activation) -> String {
    switch activation {
    case .identity, .leakyReLU: "linear"
    default: activation.name
    }
  }

  static func leakySlope(_ activation: Activation) -> Double? { if case .leakyReLU(let alpha) = activation { alpha } else { nil } }

  static func leakyReLU(_ name: String, _ slope: Double) -> Layer {
    Layer(className: "LeakyReLU", name: name, config: [.init(key: "negative_slope", value: .double(slope))])
  }

  static func zeroPadding(_ name: String, _ pad: Pair) -> Layer {
    Layer(
      className: "ZeroPadding2D", name: name,
      config: [
        .init(key: "padding", value: .array([.array([.int(pad.height), .int(pad.height)]), .array([.int(pad.width), .int(pad.width)])])),
        .init(key: "data_format", value: .string("channels_first")),
      ])
  }

  static func pooling(_ className: String, _ name: String, _ window: Window, padding: String) -> Layer {
    Layer(
      className: className, name: name,
      config: [
        .init(key: "pool_size", value: pair(window.kernel)), .init(key: "strides", value: pair(window.stride)),
        .init(key: "padding", value: .string(padding)), .init(key: "data_format", value: .string("channels_first")),
      ])
  }

  static func pair(_ pair: Pair) -> JSONValue { .array([.int(pair.height), .int(pair.width)]) }

  /// A max pool's padding in Keras' terms: "valid" without padding; with padding, "same" when
  /// Keras' same padding puts the windows where the layer's does (its −∞ padding is PyTorch's);
  /// otherwise Keras has no such pool, and the export is refused.
  static func maxPoolPadding(_ window: Window, input: [Int], layer: String) throws(InterchangeError) -> String {
    guard case .explicit(let pad) = window.padding, pad != Pair(0) else { return "valid" }
    func sameMatches(size: Int, kernel: Int, stride: Int, pad: Int) -> Bool {
      let ours = (size + 2 * pad - kernel) / stride + 1
      let kerasOut = (size + stride - 1) / stride
      let total = max((kerasOut - 1) * stride + kernel - size, 0)
      return ours == kerasOut && total / 2 == pad
    }
    if input.count == 3,
      sameMatches(size: input[1], kernel: window.kernel.height, stride: window.stride.height, pad: pad.height),
      sameMatches(size: input[2], kernel: window.kernel.width, stride: window.stride.width, pad: pad.width)
    {
      return "same"
    }
    throw .cannotExport(
      format: "keras",
      reason:
        "\(layer): a max_pool2d with padding \(pad) over \(input.dropFirst().map(String.init).joined(separator: "×")) has no Keras equivalent (Keras pads max pools only as \"same\", which places these windows elsewhere); use padding 0, or a size where \"same\" agrees (nothing was written)"
    )
  }

  /// PyTorch's `[out, in/groups, kh, kw]` as Keras' `[kh, kw, in/groups, out]`.
  static func convolutionKernel(_ weight: StoredTensor) -> (shape: [Int], values: [Float]) {
    let (out, inner, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    return ([kh, kw, inner, out], WeightLayouts.convolutionKernel(weight.scalars, out: out, inner: inner, kh: kh, kw: kw, toKeras: true))
  }

  // MARK: Files

  static let dtypePolicy = JSONValue.object([
    .init(key: "module", value: .string("keras")), .init(key: "class_name", value: .string("DTypePolicy")),
    .init(key: "config", value: .object([.init(key: "name", value: .string("float32"))])), .init(key: "registered_name", value: .null),
  ])

  static func configJSON(spec: SessionSpec, layers: [Layer]) -> JSONValue {
    let batchShape = JSONValue.array([.null] + spec.model.input.map { .int($0) })
    var members: [JSONValue] = [
      .object([
        .init(key: "module", value: .string("keras.layers")), .init(key: "class_name", value: .string("InputLayer")),
        .init(
          key: "config",
          value: .object([
            .init(key: "batch_shape", value: batchShape), .init(key: "dtype", value: .string("float32")),
            .init(key: "sparse", value: .bool(false)), .init(key: "ragged", value: .bool(false)),
            .init(key: "name", value: .string("input_layer")), .init(key: "optional", value: .bool(false)),
          ])),
        .init(key: "registered_name", value: .null),
      ])
    ]
    for layer in layers {
      let config: [JSONObject.Member] =
        [
          .init(key: "name", value: .string(layer.name)), .init(key: "trainable", value: .bool(true)),
          .init(key: "dtype", value: dtypePolicy),
        ] + layer.config
      members.append(
        .object([
          .init(key: "module", value: .string("keras.layers")), .init(key: "class_name", value: .string(layer.className)),
          .init(key: "config", value: .object(config)), .init(key: "registered_name", value: .null),
        ]))
    }
    return .object([
      .init(key: "module", value: .string("keras")), .init(key: "class_name", value: .string("Sequential")),
      .init(
        key: "config",
        value: .object([
          .init(key: "name", value: .string("sequential")), .init(key: "trainable", value: .bool(true)),
          .init(key: "dtype", value: dtypePolicy), .init(key: "layers", value: .array(members)),
          .init(key: "build_input_shape", value: batchShape),
        ])),
      .init(key: "registered_name", value: .null),
      .init(key: "build_config", value: .object([.init(key: "input_shape", value: batchShape)])),
      .init(key: "compile_config", value: .null),
    ])
  }

  /// Each layer's group path in the weights file: its class in snake case, then `_1`, `_2`… for
  /// the second and later layers of that class.
  static func groupNames(_ classNames: [String]) -> [String] {
    var seen: [String: Int] = [:]
    return classNames.map { className in
      let base = snakeCase(className)
      let count = seen[base, default: 0]
      seen[base] = count + 1
      return count == 0 ? base : "\(base)_\(count)"
    }
  }

  /// Keras' `to_snake_case`: `Conv2D` → `conv2d`, `LeakyReLU` → `leaky_re_lu`,
  /// `GlobalAveragePooling2D` → `global_average_pooling2d`.
  static func snakeCase(_ name: String) -> String {
    let characters = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
    // Step one: an underscore before each capital followed by lower-case letters (not at the start).
    var first: [Character] = []
    for (index, character) in characters.enumerated() {
      if index > 0, character.isUppercase, index + 1 < characters.count, characters[index + 1].isLowercase { first.append("_") }
      first.append(character)
    }
    // Step two: an underscore between a lower-case letter and a capital.
    var second: [Character] = []
    for (index, character) in first.enumerated() {
      if index > 0, first[index - 1].isLowercase, character.isUppercase { second.append("_") }
      second.append(character)
    }
    return String(second).lowercased()
  }

  static func weightsTree(_ layers: [Layer]) -> [String: HDF5Image.Node] {
    var groups: [String: HDF5Image.Node] = [:]
    for (layer, group) in zip(layers, groupNames(layers.map(\.className))) {
      var variables: [String: HDF5Image.Node] = [:]
      for (index, variable) in layer.variables.enumerated() {
        variables[String(index)] = .floats(shape: variable.shape, values: variable.values)
      }
      groups[group] = .group(["vars": .group(variables)])
    }
    return ["layers": .group(groups), "vars": .group([:])]
  }

  /// The `name` attribute Keras gives each `vars` group: the layer's group name, and the model's.
  static func weightsAttributes(_ layers: [Layer]) -> [String: [String: String]] {
    var attributes = ["vars": ["name": "sequential"]]
    for group in groupNames(layers.map(\.className)) { attributes["layers/\(group)/vars"] = ["name": group] }
    return attributes
  }
}
