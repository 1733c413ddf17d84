/// One tensor a layer owns: a trainable parameter or a non-trainable buffer.
public struct LayerTensor: Hashable, Sendable {
  public enum Role: String, Hashable, Sendable {
    /// Trained by the optimizer.
    case parameter
    /// Kept by the layer itself (batch_norm's running statistics); never touched by the optimizer.
    case buffer
  }

  /// `LAYER.weight`, `LAYER.running_mean`, …
  public var name: String
  public var shape: [Int]
  public var role: Role
  /// How its initial values are drawn, with the fans the initializer uses.
  public var initializer: Initializer
  public var fanIn: Int
  public var fanOut: Int

  public var count: Int { shape.reduce(1, *) }
}

/// A layer with the shapes flowing through it and the tensors it owns.
public struct LayerShape: Hashable, Sendable {
  public var layer: LayerSpec
  public var inputShape: [Int]
  public var outputShape: [Int]
  public var tensors: [LayerTensor]

  /// Trainable values in this layer.
  public var parameterCount: Int { tensors.filter { $0.role == .parameter }.reduce(0) { $0 + $1.count } }
}

extension ModelSpec {
  /// Every layer with its input and output shapes and its tensors, from `input` through the
  /// layers in order.
  ///
  /// - Throws: `SpecError.invalid` naming the first layer whose input it cannot take.
  public func layerShapes() throws(SpecError) -> [LayerShape] {
    let log = IssueLog()
    guard let shapes = inferShapes(at: "model", log: log) else { throw .invalid(file: nil, log.issues) }
    return shapes
  }

  /// Total trainable values.
  public var parameterCount: Int { ((try? layerShapes()) ?? []).reduce(0) { $0 + $1.parameterCount } }

  /// Shape inference: dense takes a 1-D sample (flatten first); layer_norm normalises the last
  /// axis; batch_norm normalises per feature on the first sample axis (PyTorch's channel axis);
  /// flatten joins all axes; activation and dropout keep the shape; conv2d and the pools take
  /// `[C, H, W]` (docs/spec-format.md, "Images"); reshape keeps the element count.
  func inferShapes(at path: JSONPath, log: IssueLog) -> [LayerShape]? {
    var shape = input
    var result: [LayerShape] = []
    guard Self.checkedCount(input, at: path + "input", what: "a sample of shape \(input)", log: log) != nil else { return nil }
    guard checkVariationalLayers(at: path + "variational", log: log) else { return nil }
    for (index, layer) in layers.enumerated() {
      let here = path + "layers" + index
      var tensors: [LayerTensor] = []
      let output: [Int]
      switch layer.kind {
      case .dense(let dense):
        guard shape.count == 1 else {
          log.report(
            here, "\(layer.name) is dense and needs a 1-D input, but its input has shape \(shape); add a flatten layer before it", at: nil)
          return nil
        }
        let inputs = shape[0]
        guard
          Self.checkedCount([dense.units, inputs], at: here + "units", what: "\(layer.name).weight [\(dense.units), \(inputs)]", log: log)
            != nil
        else { return nil }
        tensors.append(
          LayerTensor(
            name: layer.name + ".weight", shape: [dense.units, inputs], role: .parameter, initializer: dense.initializer.weight,
            fanIn: inputs, fanOut: dense.units))
        if dense.useBias {
          tensors.append(
            LayerTensor(
              name: layer.name + ".bias", shape: [dense.units], role: .parameter, initializer: dense.initializer.bias, fanIn: inputs,
              fanOut: dense.units))
        }
        if let variational, variational.layers.contains(layer.name) {
          tensors += tensors.map { mean in
            LayerTensor(
              name: VariationalSpec.rhoName(of: mean.name), shape: mean.shape, role: .parameter,
              initializer: .constant(value: variational.rhoInit), fanIn: mean.fanIn, fanOut: mean.fanOut)
          }
        }
        output = [dense.units]
      case .activation, .dropout:
        output = shape
      case .flatten:
        guard let count = Self.checkedCount(shape, at: here, what: "the flattened input of \(layer.name) (\(shape))", log: log) else {
          return nil
        }
        output = [count]
      case .layerNorm:
        let features = shape.last!
        tensors = Self.affine(layer.name, features)
        output = shape
      case .batchNorm:
        let features = shape[0]
        tensors =
          Self.affine(layer.name, features) + [
            LayerTensor(
              name: layer.name + ".running_mean", shape: [features], role: .buffer, initializer: .zeros, fanIn: features, fanOut: features),
            LayerTensor(
              name: layer.name + ".running_var", shape: [features], role: .buffer, initializer: .ones, fanIn: features, fanOut: features),
          ]
        output = shape
      case .conv2d(let conv):
        guard let (channels, size) = Self.image(shape, layer, at: here, log: log) else { return nil }
        guard channels % conv.groups == 0 else {
          log.report(
            here + "groups",
            "\(layer.name) has groups \(conv.groups), which must divide its input's \(channels) channels (input \(shape))", at: nil)
          return nil
        }
        guard let out = Self.windowOutput(conv.window, size, layer, shape, at: here, log: log) else { return nil }
        let (k, perGroup) = (conv.window.kernel, channels / conv.groups)
        let weightShape = [conv.filters, perGroup, k.height, k.width]
        guard Self.checkedCount(weightShape, at: here + "filters", what: "\(layer.name).weight \(weightShape)", log: log) != nil,
          Self.checkedCount([conv.filters, out.height, out.width], at: here, what: "the output of \(layer.name)", log: log) != nil
        else { return nil }
        // PyTorch's fans for a convolution: the receptive field times the channels in and out.
        let (fanIn, fanOut) = (perGroup * k.height * k.width, conv.filters * k.height * k.width)
        tensors.append(
          LayerTensor(
            name: layer.name + ".weight", shape: weightShape, role: .parameter, initializer: conv.initializer.weight, fanIn: fanIn,
            fanOut: fanOut))
        if conv.useBias {
          tensors.append(
            LayerTensor(
              name: layer.name + ".bias", shape: [conv.filters], role: .parameter, initializer: conv.initializer.bias, fanIn: fanIn,
              fanOut: fanOut))
        }
        output = [conv.filters, out.height, out.width]
      case .maxPool2d(let pool), .avgPool2d(let pool):
        guard let (channels, size) = Self.image(shape, layer, at: here, log: log),
          let out = Self.windowOutput(pool.window, size, layer, shape, at: here, log: log)
        else { return nil }
        output = [channels, out.height, out.width]
      case .globalAvgPool:
        guard let (channels, _) = Self.image(shape, layer, at: here, log: log) else { return nil }
        output = [channels]
      case .reshape(let target):
        guard let count = Self.checkedCount(shape, at: here, what: "the input of \(layer.name) (\(shape))", log: log) else { return nil }
        let known = target.filter { $0 != -1 }.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        if target.contains(-1) {
          guard known > 0, count % known == 0 else {
            log.report(
              here + "shape",
              "\(layer.name) cannot reshape \(shape) (\(count) values) to \(target): \(count) is not a multiple of \(known)",
              at: nil)
            return nil
          }
          output = target.map { $0 == -1 ? count / known : $0 }
        } else {
          guard known == count else {
            log.report(
              here + "shape",
              "\(layer.name) cannot reshape \(shape) (\(count) values) to \(target) (\(known == Int.max ? "too many" : String(known)) values); the counts must be equal",
              at: nil)
            return nil
          }
          output = target
        }
      }
      result.append(LayerShape(layer: layer, inputShape: shape, outputShape: output, tensors: tensors))
      shape = output
    }
    return result
  }

  /// The problems of `variational.layers` (names that are not dense layers of this model, or
  /// named twice).
  public func variationalIssues() -> [SpecIssue] {
    let log = IssueLog()
    _ = checkVariationalLayers(at: "model.variational", log: log)
    return log.issues
  }

  /// Whether `variational.layers` names dense layers of this model, each once (problems reported).
  private func checkVariationalLayers(at path: JSONPath, log: IssueLog) -> Bool {
    guard let variational else { return true }
    var ok = true
    var seen: Set<String> = []
    for (i, name) in variational.layers.enumerated() {
      let here = path + "layers" + i
      if !seen.insert(name).inserted {
        log.report(here, "names \(JSONWriter.quoted(name)) twice; list each layer once", at: nil)
        ok = false
      } else if let layer = layers.first(where: { $0.name == name }) {
        if case .dense = layer.kind { continue }
        log.report(here, "\(name) is a \(layer.kind.typeName) layer; only dense layers can be variational", at: nil)
        ok = false
      } else {
        let dense = layers.filter { if case .dense = $0.kind { true } else { false } }.map(\.name)
        let hint = Suggestion.nearest(to: name, in: dense).map { " (did you mean \(JSONWriter.quoted($0))?)" } ?? ""
        log.report(
          here,
          "names \(JSONWriter.quoted(name)), but the model has no such layer\(hint); its dense layers are \(dense.joined(separator: ", "))",
          at: nil)
        ok = false
      }
    }
    return ok
  }

  /// The most values one tensor may hold: 2^40 (4 TiB of float32). Larger declared sizes are
  /// refused by shape inference before any arithmetic on them can overflow; what fits in
  /// memory is checked afterwards (`SessionSpec.resourceProblems`).
  public static let tensorValueLimit = 1 << 40

  /// The problems of declared sizes past `tensorValueLimit` (empty when every size fits, or when
  /// the shapes fail to chain for another reason, such as a layer still missing).
  public func oversizedTensors() -> [SpecIssue] {
    do { _ = try layerShapes() } catch { return error.issues.filter { $0.message.contains(Self.oversizeMessage) } }
    return []
  }

  /// What every oversize problem says, so that `oversizedTensors` finds them.
  static let oversizeMessage = "would hold more than 2^40 values"

  /// The product of `dims`, or nil (with a problem at `path`) when it exceeds `tensorValueLimit`.
  static func checkedCount(_ dims: [Int], at path: JSONPath, what: String, log: IssueLog) -> Int? {
    var count = 1
    for dim in dims {
      let (product, overflow) = count.multipliedReportingOverflow(by: dim)
      guard !overflow, product <= tensorValueLimit else {
        log.report(
          path, "\(what) \(oversizeMessage), more than any tensor SpecBench can hold; use fewer units or a smaller input",
          at: nil)
        return nil
      }
      count = product
    }
    return count
  }

  /// The channels and `[H, W]` of an image input, or nil (with a problem naming the layer) when
  /// the input is not `[C, H, W]`.
  private static func image(_ shape: [Int], _ layer: LayerSpec, at path: JSONPath, log: IssueLog) -> (Int, Pair)? {
    guard shape.count == 3 else {
      let hint = shape.count == 1 ? "; a reshape layer such as {\"type\": \"reshape\", \"shape\": [1, H, W]} makes one" : ""
      log.report(
        path,
        "\(layer.name) is \(layer.kind.typeName) and needs an image input [channels, height, width], but its input has shape \(shape)\(hint)",
        at: nil)
      return nil
    }
    return (shape[0], Pair(shape[1], shape[2]))
  }

  /// A window's output `[OH, OW]`, or nil (with a problem naming the layer and the axis).
  private static func windowOutput(_ window: Window, _ size: Pair, _ layer: LayerSpec, _ shape: [Int], at path: JSONPath, log: IssueLog)
    -> Pair?
  {
    switch window.output(height: size.height, width: size.width) {
    case .success(let out): return out
    case .failure(let mismatch):
      log.report(
        path + "kernel",
        "\(layer.name)'s window reaches \(mismatch.reach) on the \(mismatch.axis) axis, more than its input's \(mismatch.size) (\(mismatch.padded) padded; input \(shape)); use a smaller kernel or dilation, or more padding",
        at: nil)
      return nil
    }
  }

  /// The per-feature scale (ones) and shift (zeros) of the normalisation layers.
  private static func affine(_ name: String, _ features: Int) -> [LayerTensor] {
    [
      LayerTensor(name: name + ".weight", shape: [features], role: .parameter, initializer: .ones, fanIn: features, fanOut: features),
      LayerTensor(name: name + ".bias", shape: [features], role: .parameter, initializer: .zeros, fanIn: features, fanOut: features),
    ]
  }
}
