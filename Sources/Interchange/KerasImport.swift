import Foundation
import SpecKit

/// A Keras 3 archive (`.keras`) as a SpecBench session: a `Sequential` of `Dense`, `Conv2D`,
/// the pools, `GlobalAveragePooling2D`, `Flatten`, `Reshape`, `Dropout`, `BatchNormalization`,
/// `LayerNormalization`, activations (`Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax`),
/// `ZeroPadding2D` before a convolution or an average pool, and a leading `Normalization` before
/// a dense layer (folded into its weights). Images must be channels first, the format's layout.
/// Anything else is refused with the layer's name and class, before anything is written.
public enum KerasImport {
  /// The session (its weights as the state at step 0) and notes for the user.
  public static func session(from bytes: [UInt8], file: String, name: String) throws(InterchangeError) -> (
    bundle: SessionBundle, notes: [String]
  ) {
    let members = try KerasArchive.members(
      of: bytes, file: file, required: [KerasArchive.configFile, KerasArchive.weightsFile], optional: [KerasArchive.metadataFile])
    let config: JSONValue
    do { config = try JSONParser.parse(members[KerasArchive.configFile]!) } catch {
      throw .malformedArchive(file: file, member: KerasArchive.configFile, message: "not valid JSON: \(error)")
    }
    let weights: [String: HDF5Image.Node]
    do { weights = try HDF5Image.tree(of: members[KerasArchive.weightsFile]!) } catch {
      throw .malformedArchive(file: file, member: KerasArchive.weightsFile, message: error.description)
    }
    var reader = try ModelReader(config: config, weights: .group(weights), file: file)
    try reader.read()
    let (bundle, placeholder) = try ImportedSession.make(
      name: name, file: file, input: reader.inputShape, layers: reader.layers, tensors: reader.tensors,
      outputWidth: reader.shape.last ?? 1, endsWithSoftmax: reader.endsWithSoftmax)
    var notes = [
      "\(reader.kerasLayerCount) Keras layers became \(reader.layers.count) layers: "
        + reader.layers.map { "\($0.name) (\($0.kind.typeName))" }.joined(separator: ", ")
    ]
    if let metadata = members[KerasArchive.metadataFile].flatMap({ try? JSONParser.parse($0) }),
      let version = metadata.objectValue?["keras_version"]?.stringValue
    {
      notes.append("saved by Keras \(TextExcerpt.short(version))")
    }
    notes.append(placeholder)
    notes += reader.notes
    return (bundle, notes)
  }

  /// One entry of the `Sequential`'s layer list: its class, its name and its config.
  typealias KerasLayer = (className: String, name: String, config: JSONObject)

  /// Walks the `Sequential`'s layers, reading each one's weights from its group.
  struct ModelReader {
    let file: String
    let weights: HDF5Image.Node
    var kerasLayers: [KerasLayer] = []
    var inputShape: [Int] = []
    var layers: [LayerSpec] = []
    var tensors: [String: StoredTensor] = [:]
    var notes: [String] = []
    var shape: [Int] = []
    var endsWithSoftmax = false
    var kerasLayerCount: Int { kerasLayers.count }
    /// The index in `layers` of a dense or convolution layer whose activation is still open.
    var open: Int?
    /// Zero padding waiting for the convolution or average pool that takes it.
    var pendingPadding: (pad: Pair, layer: String)?
    /// A leading Normalization waiting for the dense layer it folds into: mean and divisor.
    var pendingNormalization: (mean: [Float], divisor: [Float], layer: String)?

    init(config: JSONValue, weights: HDF5Image.Node, file: String) throws(InterchangeError) {
      self.file = file
      self.weights = weights
      guard let top = config.objectValue else { throw fault("config.json", "must be an object, as Keras writes it") }
      let className = top["class_name"]?.stringValue ?? "(none)"
      guard className == "Sequential" else {
        throw fault(
          "config.json: class_name",
          "the model is a \(TextExcerpt.short(className)); SpecBench imports Keras Sequential models (a chain of layers)")
      }
      guard let entries = top["config"]?.objectValue?["layers"]?.arrayValue else {
        throw fault("config.json: config.layers", "the Sequential has no layer list")
      }
      var batchShape: JSONValue? = top["build_config"]?.objectValue?["input_shape"] ?? top["config"]?.objectValue?["build_input_shape"]
      for (index, entry) in entries.enumerated() {
        guard let object = entry.objectValue, let className = object["class_name"]?.stringValue,
          let layerConfig = object["config"]?.objectValue
        else {
          throw fault("config.json: config.layers[\(index)]", "each layer needs a class_name and a config")
        }
        if className == "InputLayer" {
          guard index == 0 else { throw fault("config.json: config.layers[\(index)]", "an InputLayer after the first layer") }
          batchShape = layerConfig["batch_shape"] ?? layerConfig["batch_input_shape"]
          continue
        }
        let name = layerConfig["name"]?.stringValue ?? className
        kerasLayers.append((className, name, layerConfig))
      }
      guard let dims = batchShape?.arrayValue, dims.count >= 2 else {
        throw fault("config.json", "the model has no input shape (an InputLayer's batch_shape); build it with keras.Input(shape)")
      }
      let sample = dims.dropFirst().map { $0.numberValue.flatMap { Int($0.literal) } }
      guard sample.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw fault(
          "config.json: the input's batch_shape", "SpecBench needs fixed sample sizes, but the input is \(JSONWriter.compact(.array(dims)))"
        )
      }
      inputShape = sample.map { $0! }
      guard inputShape.count <= 8, Self.product(inputShape) != nil else {
        throw fault("config.json: the input's batch_shape", "the input shape \(inputShape) is too large")
      }
      shape = inputShape
    }

    /// The product of `dims`, or nil past the 2^40 values of the largest tensor SpecBench holds.
    static func product(_ dims: [Int]) -> Int? {
      var count = 1
      for dim in dims {
        let (product, overflow) = count.multipliedReportingOverflow(by: dim)
        guard dim >= 0, !overflow, product <= ModelSpec.tensorValueLimit else { return nil }
        count = product
      }
      return count
    }

    func fault(_ place: String, _ message: String) -> InterchangeError {
      .malformedArchive(file: file, member: nil, message: "\(place): \(message)")
    }

    func unsupported(_ layer: KerasLayer, _ reason: String) -> InterchangeError {
      .unsupportedLayer(layer: layer.name, className: layer.className, reason: reason)
    }

    mutating func read() throws(InterchangeError) {
      let groups = KerasExport.groupNames(kerasLayers.map(\.className))
      for (index, layer) in kerasLayers.enumerated() {
        try readLayer(layer, group: "layers/\(groups[index])", isFirst: index == 0)
        guard Self.product(shape) != nil, shape.count <= 8 else {
          throw unsupported(layer, "its output \(shape) would hold more than 2^40 values")
        }
      }
      if let pending = pendingPadding {
        throw .unsupportedLayer(
          layer: pending.layer, className: "ZeroPadding2D",
          reason: "zero padding must be followed by a Conv2D or an AveragePooling2D with padding \"valid\", which take it")
      }
      if let pending = pendingNormalization {
        throw .unsupportedLayer(
          layer: pending.layer, className: "Normalization",
          reason: "a Normalization must be followed by a Dense layer, into which it folds")
      }
      guard !layers.isEmpty else { throw fault("config.json", "the Sequential has no layers SpecBench can train") }
    }

    /// The variables of the layer's group (`vars/0`, `vars/1`, …), checked in number and shape.
    func variables(_ group: String, _ layer: KerasLayer, shapes: [[Int]])
      throws(InterchangeError) -> [[Float]]
    {
      guard case .group(let vars)? = weights.at(group + "/vars") else {
        throw .malformedArchive(
          file: file, member: KerasArchive.weightsFile,
          message: "it has no group \(group)/vars for layer \"\(TextExcerpt.short(layer.name))\" (\(TextExcerpt.short(layer.className)))")
      }
      guard vars.count == shapes.count else {
        throw .malformedArchive(
          file: file, member: KerasArchive.weightsFile,
          message:
            "\(group)/vars holds \(vars.count) variables; \(TextExcerpt.short(layer.className)) \"\(TextExcerpt.short(layer.name))\" as configured has \(shapes.count)"
        )
      }
      var result: [[Float]] = []
      for (index, expected) in shapes.enumerated() {
        guard case .floats(let shape, let values)? = vars[String(index)] else {
          throw .malformedArchive(
            file: file, member: KerasArchive.weightsFile, message: "\(group)/vars/\(index) is missing or is not a float dataset")
        }
        guard shape == expected else {
          throw .malformedArchive(
            file: file, member: KerasArchive.weightsFile,
            message: "\(group)/vars/\(index) has shape \(shape), but layer \"\(TextExcerpt.short(layer.name))\" needs \(expected)")
        }
        guard values.allSatisfy(\.isFinite) else {
          throw .malformedArchive(
            file: file, member: KerasArchive.weightsFile, message: "\(group)/vars/\(index) holds a NaN or an infinity")
        }
        result.append(values)
      }
      return result
    }

    // MARK: Config values

    func string(_ layer: KerasLayer, _ key: String, default fallback: String)
      throws(InterchangeError) -> String
    {
      guard let value = layer.config[key], !value.isNull else { return fallback }
      guard let text = value.stringValue else { throw unsupported(layer, "\(key) must be a string, got \(value.excerpt())") }
      return text
    }

    func integer(_ layer: KerasLayer, _ key: String, default fallback: Int? = nil)
      throws(InterchangeError) -> Int
    {
      guard let value = layer.config[key], !value.isNull else {
        if let fallback { return fallback }
        throw unsupported(layer, "its config has no \(key)")
      }
      guard let number = value.numberValue.flatMap({ Int($0.literal) }), number >= 0, number <= 1 << 30 else {
        throw unsupported(layer, "\(key) must be a whole number, got \(value.excerpt())")
      }
      return number
    }

    func number(_ layer: KerasLayer, _ key: String, default fallback: Double)
      throws(InterchangeError) -> Double
    {
      guard let value = layer.config[key], !value.isNull else { return fallback }
      guard let number = value.numberValue.flatMap({ Double($0.literal) }), number.isFinite else {
        throw unsupported(layer, "\(key) must be a finite number, got \(value.excerpt())")
      }
      return number
    }

    func flag(_ layer: KerasLayer, _ key: String, default fallback: Bool) -> Bool {
      layer.config[key]?.boolValue ?? fallback
    }

    /// A Keras pair (`3` or `[3, 3]`).
    func pair(_ layer: KerasLayer, _ key: String, default fallback: Pair? = nil)
      throws(InterchangeError) -> Pair
    {
      guard let value = layer.config[key], !value.isNull else {
        if let fallback { return fallback }
        throw unsupported(layer, "its config has no \(key)")
      }
      if let number = value.numberValue.flatMap({ Int($0.literal) }), number > 0 { return Pair(number) }
      if let items = value.arrayValue, items.count == 2, let a = items[0].numberValue.flatMap({ Int($0.literal) }),
        let b = items[1].numberValue.flatMap({ Int($0.literal) }), a > 0, b > 0, a <= 1 << 20, b <= 1 << 20
      {
        return Pair(a, b)
      }
      throw unsupported(layer, "\(key) must be a positive whole number or two, got \(value.excerpt())")
    }

    func requireChannelsFirst(_ layer: KerasLayer) throws(InterchangeError) {
      let format = try string(layer, "data_format", default: "channels_last")
      guard format == "channels_first" else {
        throw unsupported(
          layer,
          "data_format \(TextExcerpt.short(format)): SpecBench's images are channels first, [C, H, W]; build the model with data_format=\"channels_first\""
        )
      }
      guard shape.count == 3 else { throw unsupported(layer, "it needs [C, H, W] images, but its input is \(shape)") }
    }

    /// Keras' activation names as SpecBench's functions.
    func activation(_ layer: KerasLayer, key: String = "activation") throws(InterchangeError)
      -> Activation
    {
      guard let value = layer.config[key], !value.isNull else { return .identity }
      var name = value.stringValue
      // A serialised function: {"class_name": "function", "config": "relu", …}.
      if name == nil, let object = value.objectValue, object["class_name"]?.stringValue == "function" {
        name = object["config"]?.stringValue
      }
      switch name {
      case "linear": return .identity
      case "relu": return .relu
      case "sigmoid": return .sigmoid
      case "tanh": return .tanh
      case "gelu": return .gelu
      case "silu", "swish": return .silu
      case "softplus": return .softplus
      case "elu": return .elu
      case "softmax": return .softmax
      case "leaky_relu": return .leakyReLU(alpha: 0.2)
      default:
        throw unsupported(
          layer,
          "activation \(value.excerpt()) has no SpecBench function (linear, relu, sigmoid, tanh, gelu, silu, softplus, elu, softmax, leaky_relu)"
        )
      }
    }

    // MARK: Layers

    mutating func add(_ kind: LayerSpec.Kind, named kerasName: String) {
      var name = LayerSpec.isValidName(kerasName) ? kerasName : kind.typeName
      if layers.contains(where: { $0.name == name }) || !LayerSpec.isValidName(name) {
        var number = 1
        while layers.contains(where: { $0.name == "\(kind.typeName)\(number)" }) { number += 1 }
        name = "\(kind.typeName)\(number)"
      }
      layers.append(LayerSpec(name: name, kind: kind))
      open = nil
      endsWithSoftmax = false
    }

    /// An activation as the open dense or convolution layer's own, or as an activation layer.
    mutating func addActivation(_ function: Activation, named name: String) {
      if let index = open, case .dense(var dense) = layers[index].kind, dense.activation == .identity {
        dense.activation = function
        layers[index].kind = .dense(dense)
      } else if let index = open, case .conv2d(var conv) = layers[index].kind, conv.activation == .identity, function != .softmax {
        conv.activation = function
        layers[index].kind = .conv2d(conv)
      } else {
        add(.activation(function: function), named: name)
      }
      open = nil
      endsWithSoftmax = function == .softmax
    }

    mutating func readLayer(_ layer: KerasLayer, group: String, isFirst: Bool)
      throws(InterchangeError)
    {
      if pendingPadding != nil, !["Conv2D", "AveragePooling2D"].contains(layer.className) {
        throw unsupported(layer, "it follows a ZeroPadding2D, which SpecBench takes only into a Conv2D or an AveragePooling2D")
      }
      if pendingNormalization != nil, layer.className != "Dense" {
        throw unsupported(layer, "it follows a Normalization, which SpecBench folds only into a Dense layer")
      }
      switch layer.className {
      case "Dense":
        guard shape.count == 1 else {
          throw unsupported(layer, "Dense on \(shape) inputs: SpecBench's dense layers take flat samples (add a Flatten)")
        }
        let units = try integer(layer, "units")
        let useBias = flag(layer, "use_bias", default: true)
        let function = try activation(layer)
        let inputs = shape[0]
        let values = try variables(group, layer, shapes: useBias ? [[inputs, units], [units]] : [[inputs, units]])
        var weight = WeightLayouts.transpose(values[0], rows: inputs, columns: units)
        var bias = useBias ? values[1] : nil
        if let normalization = pendingNormalization {
          // W·((x − m) / d) + b = (W / d)·x + (b − (W / d)·m).
          var shifted = bias ?? [Float](repeating: 0, count: units)
          for o in 0..<units {
            for i in 0..<inputs {
              weight[o * inputs + i] /= normalization.divisor[i]
              shifted[o] -= weight[o * inputs + i] * normalization.mean[i]
            }
          }
          bias = shifted
          notes.append(
            "the Normalization \(TextExcerpt.short(normalization.layer)) is folded into \(TextExcerpt.short(layer.name))'s weights and bias (the session takes raw inputs)"
          )
          pendingNormalization = nil
        }
        add(.dense(DenseLayer(units: units, activation: .identity, useBias: bias != nil)), named: layer.name)
        let name = layers.last!.name
        tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: [units, inputs], scalars: weight)
        if let bias { tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [units], scalars: bias) }
        shape = [units]
        open = layers.count - 1
        if function != .identity { addActivation(function, named: name + "_activation") }
      case "Activation":
        _ = try variables(group, layer, shapes: [])
        addActivation(try activation(layer), named: layer.name)
      case "ReLU":
        _ = try variables(group, layer, shapes: [])
        let slope = try number(layer, "negative_slope", default: 0)
        guard layer.config["max_value"]?.isNull ?? true, try number(layer, "threshold", default: 0) == 0 else {
          throw unsupported(layer, "a ReLU with max_value or threshold has no SpecBench function")
        }
        addActivation(slope == 0 ? .relu : .leakyReLU(alpha: slope), named: layer.name)
      case "LeakyReLU":
        _ = try variables(group, layer, shapes: [])
        addActivation(.leakyReLU(alpha: try number(layer, "negative_slope", default: 0.3)), named: layer.name)
      case "ELU":
        _ = try variables(group, layer, shapes: [])
        guard try number(layer, "alpha", default: 1) == 1 else { throw unsupported(layer, "SpecBench's elu has alpha 1") }
        addActivation(.elu, named: layer.name)
      case "Softmax":
        _ = try variables(group, layer, shapes: [])
        let axis = layer.config["axis"]
        guard axis == nil || axis!.isNull || axis!.numberValue?.literal == "-1" || axis!.numberValue?.literal == String(shape.count) else {
          throw unsupported(layer, "SpecBench's softmax is over the last axis; this one is over axis \(axis!.excerpt())")
        }
        addActivation(.softmax, named: layer.name)
      case "Dropout":
        _ = try variables(group, layer, shapes: [])
        guard layer.config["noise_shape"]?.isNull ?? true else { throw unsupported(layer, "dropout with a noise_shape") }
        let rate = try number(layer, "rate", default: 0)
        guard rate >= 0, rate < 1 else { throw unsupported(layer, "rate \(rate) is outside [0, 1)") }
        add(.dropout(rate: rate), named: layer.name)
      case "Flatten":
        _ = try variables(group, layer, shapes: [])
        if shape.count >= 2, try string(layer, "data_format", default: "channels_last") == "channels_first" {
          throw unsupported(
            layer,
            "data_format channels_first moves the channels last before flattening; SpecBench's flatten keeps the row-major order (channels_last)"
          )
        }
        add(.flatten, named: layer.name)
        shape = [Self.product(shape) ?? 0]
      case "Reshape":
        guard let target = layer.config["target_shape"]?.arrayValue?.map({ $0.numberValue.flatMap { Int($0.literal) } }),
          target.allSatisfy({ $0 != nil }), !target.isEmpty, target.count <= 8
        else {
          throw unsupported(layer, "target_shape must be a list of sizes")
        }
        let sizes = target.map { $0! }
        let known = Self.product(sizes.filter { $0 != -1 }) ?? 0
        let total = Self.product(shape) ?? 0
        guard sizes.allSatisfy({ $0 > 0 || $0 == -1 }), sizes.filter({ $0 == -1 }).count <= 1, known > 0, total % known == 0,
          sizes.contains(-1) || known == total
        else {
          throw unsupported(layer, "target_shape \(sizes) does not hold the \(total) values of its \(shape) input")
        }
        _ = try variables(group, layer, shapes: [])
        add(.reshape(shape: sizes), named: layer.name)
        shape = sizes.map { $0 == -1 ? total / known : $0 }
      case "BatchNormalization":
        let axis = layer.config["axis"]?.numberValue.flatMap { Int($0.literal) } ?? -1
        guard axis == 1 || (axis == -1 && shape.count == 1) else {
          throw unsupported(
            layer,
            "axis \(axis): SpecBench's batch_norm normalises each feature of the first sample axis (axis 1\(shape.count == 1 ? " or -1" : ""))"
          )
        }
        guard flag(layer, "center", default: true), flag(layer, "scale", default: true), !flag(layer, "renorm", default: false),
          !flag(layer, "synchronized", default: false)
        else {
          throw unsupported(layer, "SpecBench's batch_norm has a scale and a shift (center and scale true) and no renorm")
        }
        let momentum = try number(layer, "momentum", default: 0.99)
        let eps = try number(layer, "epsilon", default: 1e-3)
        let features = shape[0]
        let values = try variables(group, layer, shapes: Array(repeating: [features], count: 4))
        add(.batchNorm(eps: eps, momentum: KerasExport.complement(momentum)), named: layer.name)
        let name = layers.last!.name
        tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: [features], scalars: values[0])
        tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [features], scalars: values[1])
        tensors["buffer/\(name).running_mean"] = StoredTensor(shape: [features], scalars: values[2])
        tensors["buffer/\(name).running_var"] = StoredTensor(shape: [features], scalars: values[3])
        notes.append(
          "\(name): Keras' momentum \(momentum) is PyTorch's \(KerasExport.complement(momentum)); its moving variance is kept as the running variance"
        )
      case "LayerNormalization":
        let axisValue = layer.config["axis"]
        let axes = axisValue?.arrayValue ?? (axisValue.map { [$0] } ?? [])
        let axis = axes.count == 1 ? axes[0].numberValue.flatMap { Int($0.literal) } : nil
        guard axis == -1 || axis == shape.count else {
          throw unsupported(layer, "SpecBench's layer_norm normalises over the last axis only")
        }
        guard flag(layer, "center", default: true), flag(layer, "scale", default: true), !flag(layer, "rms_scaling", default: false) else {
          throw unsupported(layer, "SpecBench's layer_norm has a scale and a shift and no RMS scaling")
        }
        let eps = try number(layer, "epsilon", default: 1e-3)
        let features = shape.last!
        let values = try variables(group, layer, shapes: [[features], [features]])
        add(.layerNorm(eps: eps), named: layer.name)
        let name = layers.last!.name
        tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: [features], scalars: values[0])
        tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [features], scalars: values[1])
      case "Normalization":
        guard isFirst, shape.count == 1 else {
          throw unsupported(layer, "SpecBench folds a Normalization only as the first layer, on flat samples, into the Dense after it")
        }
        guard !flag(layer, "invert", default: false) else { throw unsupported(layer, "an inverting Normalization") }
        let width = shape[0]
        var mean: [Float], variance: [Float]
        if let given = layer.config["mean"]?.arrayValue, let givenVariance = layer.config["variance"]?.arrayValue {
          let m = given.map { $0.numberValue.flatMap { Float($0.literal) } },
            v = givenVariance.map { $0.numberValue.flatMap { Float($0.literal) } }
          guard m.count == width, v.count == width, m.allSatisfy({ $0 != nil }), v.allSatisfy({ $0 != nil }) else {
            throw unsupported(layer, "mean and variance must be lists of \(width) numbers")
          }
          (mean, variance) = (m.map { $0! }, v.map { $0! })
          _ = try variables(group, layer, shapes: [])
        } else {
          // Adapted: the mean, the variance and the count of the samples seen (an integer).
          guard case .floats(let meanShape, let meanValues)? = weights.at(group + "/vars/0"),
            case .floats(let varianceShape, let varianceValues)? = weights.at(group + "/vars/1"), meanShape == [width],
            varianceShape == [width]
          else {
            throw .malformedArchive(
              file: file, member: KerasArchive.weightsFile,
              message:
                "\(group)/vars needs the adapted mean and variance of \(width) values (vars/0 and vars/1) for layer \"\(TextExcerpt.short(layer.name))\""
            )
          }
          (mean, variance) = (meanValues, varianceValues)
        }
        guard variance.allSatisfy({ $0 >= 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
          throw unsupported(layer, "its variance must be finite and not negative")
        }
        // Keras divides by max(√variance, 1e-7).
        pendingNormalization = (mean, variance.map { max($0.squareRoot(), 1e-7) }, layer.name)
      case "ZeroPadding2D":
        _ = try variables(group, layer, shapes: [])
        try requireChannelsFirst(layer)
        let padding = layer.config["padding"]
        func side(_ value: JSONValue?) -> (Int, Int)? {
          if let n = value?.numberValue.flatMap({ Int($0.literal) }) { return (n, n) }
          guard let items = value?.arrayValue, items.count == 2, let a = items[0].numberValue.flatMap({ Int($0.literal) }),
            let b = items[1].numberValue.flatMap({ Int($0.literal) })
          else { return nil }
          return (a, b)
        }
        var pad: Pair?
        if let n = padding?.numberValue.flatMap({ Int($0.literal) }) {
          pad = Pair(n)
        } else if let items = padding?.arrayValue, items.count == 2, let rows = side(items[0]), let columns = side(items[1]),
          rows.0 == rows.1, columns.0 == columns.1
        {
          pad = Pair(rows.0, columns.0)
        }
        guard let pad, pad.height >= 0, pad.width >= 0, pad.height <= 1 << 16, pad.width <= 1 << 16 else {
          throw unsupported(layer, "SpecBench pads both sides of an axis alike; padding \(padding?.excerpt() ?? "null") is not")
        }
        pendingPadding = (pad, layer.name)
      case "Conv2D":
        try requireChannelsFirst(layer)
        let filters = try integer(layer, "filters")
        let kernel = try pair(layer, "kernel_size")
        let stride = try pair(layer, "strides", default: Pair(1))
        let dilation = try pair(layer, "dilation_rate", default: Pair(1))
        let groups = try integer(layer, "groups", default: 1)
        let useBias = flag(layer, "use_bias", default: true)
        let function = try activation(layer)
        let mode = try string(layer, "padding", default: "valid")
        var padding = Padding.explicit(Pair(0))
        switch mode {
        case "valid":
          if let pending = pendingPadding { padding = .explicit(pending.pad) }
        case "same":
          guard pendingPadding == nil else { throw unsupported(layer, "padding \"same\" after a ZeroPadding2D") }
          guard stride == Pair(1) else {
            throw unsupported(layer, "padding \"same\" with strides \(stride): SpecBench's \"same\" (PyTorch's) is for stride 1")
          }
          padding = .same
        default: throw unsupported(layer, "padding \(TextExcerpt.short(mode)) (valid or same)")
        }
        pendingPadding = nil
        let channels = shape[0]
        guard groups >= 1, channels % groups == 0, filters % groups == 0 else {
          throw unsupported(layer, "groups \(groups) must divide the \(channels) input channels and the \(filters) filters")
        }
        let inner = channels / groups
        let values = try variables(
          group, layer,
          shapes: useBias ? [[kernel.height, kernel.width, inner, filters], [filters]] : [[kernel.height, kernel.width, inner, filters]])
        let window = Window(kernel: kernel, stride: stride, padding: padding, dilation: dilation)
        guard case .success(let output) = window.output(height: shape[1], width: shape[2]) else {
          throw unsupported(layer, "its window does not fit the \(shape[1])×\(shape[2]) input")
        }
        add(
          .conv2d(
            Conv2DLayer(
              filters: filters, kernel: kernel, stride: stride, padding: padding, dilation: dilation, groups: groups, useBias: useBias)),
          named: layer.name)
        let name = layers.last!.name
        let weight = WeightLayouts.convolutionKernel(
          values[0], out: filters, inner: inner, kh: kernel.height, kw: kernel.width, toKeras: false)
        tensors[StateKey.parameter("\(name).weight")] = StoredTensor(shape: [filters, inner, kernel.height, kernel.width], scalars: weight)
        if useBias { tensors[StateKey.parameter("\(name).bias")] = StoredTensor(shape: [filters], scalars: values[1]) }
        shape = [filters, output.height, output.width]
        open = layers.count - 1
        if function != .identity { addActivation(function, named: name + "_activation") }
      case "MaxPooling2D", "AveragePooling2D":
        _ = try variables(group, layer, shapes: [])
        try requireChannelsFirst(layer)
        let kernel = try pair(layer, "pool_size", default: Pair(2))
        let stride = try pair(layer, "strides", default: kernel)
        let mode = try string(layer, "padding", default: "valid")
        var pad = pendingPadding?.pad ?? Pair(0)
        pendingPadding = nil
        let isMax = layer.className == "MaxPooling2D"
        switch mode {
        case "valid": break
        case "same":
          // Keras' same padding as explicit padding, where it is the same on both sides of each
          // axis (or its extra row lies beyond the last window) and, for the average pool, where
          // there is none (Keras' same average leaves padding out of the count).
          func explicit(_ size: Int, _ k: Int, _ s: Int) -> Int? {
            let out = (size + s - 1) / s
            let total = max((out - 1) * s + k - size, 0)
            let before = total / 2
            return (size + 2 * before - k) / s + 1 == out && 2 * before <= k ? before : nil
          }
          guard let h = explicit(shape[1], kernel.height, stride.height), let w = explicit(shape[2], kernel.width, stride.width),
            isMax || (h == 0 && w == 0)
          else {
            throw unsupported(
              layer,
              "padding \"same\" here places its windows where no SpecBench pool does\(isMax ? "" : " (an average that leaves padding out of its count)")"
            )
          }
          pad = Pair(h, w)
        default: throw unsupported(layer, "padding \(TextExcerpt.short(mode)) (valid or same)")
        }
        guard 2 * pad.height <= kernel.height, 2 * pad.width <= kernel.width else {
          throw unsupported(
            layer,
            "the ZeroPadding2D before it pads \(pad), more than half its pool size \(kernel); SpecBench's pools (PyTorch's) pad at most half"
          )
        }
        let pool = PoolLayer(kernel: kernel, stride: stride, padding: pad)
        guard case .success(let output) = pool.window.output(height: shape[1], width: shape[2]) else {
          throw unsupported(layer, "its window does not fit the \(shape[1])×\(shape[2]) input")
        }
        add(isMax ? .maxPool2d(pool) : .avgPool2d(pool), named: layer.name)
        shape = [shape[0], output.height, output.width]
      case "GlobalAveragePooling2D":
        _ = try variables(group, layer, shapes: [])
        try requireChannelsFirst(layer)
        guard !flag(layer, "keepdims", default: false) else {
          throw unsupported(layer, "keepdims true (SpecBench's global pool gives [C])")
        }
        add(.globalAvgPool, named: layer.name)
        shape = [shape[0]]
      default:
        throw unsupported(
          layer,
          "SpecBench has no such layer (it imports Dense, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, ZeroPadding2D, Flatten, Reshape, Dropout, BatchNormalization, LayerNormalization, Normalization and the activation layers)"
        )
      }
    }
  }
}
