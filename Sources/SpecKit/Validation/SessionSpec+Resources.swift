import Foundation

/// How much memory a session may take, and how much a spec needs: checked by `validate`, by
/// `load`, and by every workbench command before anything is allocated, so a size that cannot
/// fit is a clear message rather than a crash.
public enum MemoryBudget {
  /// The environment variable that sets the limit, in bytes or with a suffix (`512M`, `8G`).
  public static let variable = "SPECBENCH_MEMORY_LIMIT"

  /// The most bytes a session may need: `SPECBENCH_MEMORY_LIMIT`, or 80 % of this machine's memory.
  public static var limit: Int {
    if let text = ProcessInfo.processInfo.environment[variable], let bytes = parse(text) { return bytes }
    return Int(Double(ProcessInfo.processInfo.physicalMemory) * 0.8)
  }

  /// Where the limit comes from, for messages.
  public static var limitSource: String {
    ProcessInfo.processInfo.environment[variable].flatMap(parse) != nil
      ? "set by \(variable)" : "80% of this machine's memory; \(variable) changes it"
  }

  /// `4096`, `512K`, `64M`, `8G`, `1T` (powers of 1024); nil when not such a number.
  static func parse(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
    let scales: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    if let last = trimmed.last, let scale = scales[last], let value = Double(trimmed.dropLast()), value > 0, value * Double(scale) < 9e18 {
      return Int(value * Double(scale))
    }
    if let value = Int(trimmed), value > 0 { return value }
    return nil
  }
}

extension SessionSpec {
  /// What training this spec needs in memory, by part, in bytes (as Doubles, so no size can overflow).
  public struct MemoryEstimate: Sendable {
    /// Parameters, optimizer slots and buffers.
    public var state: Double
    /// One batch's activations, caches and gradients.
    public var batch: Double
    /// The samples of synthetic data (nil: read from a file, checked when read).
    public var data: Double?
    /// The layer with the most state, for the message's JSON path.
    public var largestLayer: Int?
    /// Of `state`, L-BFGS's history and flat vectors: (2·history_size + 8)·P floats (the pairs,
    /// and the flat vectors a step keeps: d, the gradients, the parameters and the recursion's).
    public var optimizerHistory = 0.0

    public var total: Double { state + batch + (data ?? 0) }
  }

  /// The memory estimate, or nil when the model's shapes do not chain.
  public func memoryEstimate() -> MemoryEstimate? {
    guard let shapes = try? model.layerShapes() else { return nil }
    let slots = Double(optimizer.slots.count)
    var state = 0.0
    var largest: (index: Int, bytes: Double)?
    var widths = Double(model.input.reduce(1.0) { $0 * Double($1) })
    for (index, layer) in shapes.enumerated() {
      var bytes = 0.0
      for tensor in layer.tensors {
        let values = tensor.shape.reduce(1.0) { $0 * Double($1) }
        bytes += 4 * values * (tensor.role == .parameter ? 1 + slots : 1)
      }
      state += bytes
      if bytes > (largest?.bytes ?? 0) { largest = (index, bytes) }
      widths += layer.outputShape.reduce(1.0) { $0 * Double($1) }
    }
    var samples: Double?
    var sampleWidth = Double(model.input.reduce(1.0) { $0 * Double($1) }) + 1
    switch data.source {
    case .spirals(let n, _, _, _), .moons(let n, _, _), .circles(let n, _, _, _), .xor(let n, _, _), .sine(let n, _, _):
      samples = Double(n)
    case .blobs(let n, _, let features, _, _):
      samples = Double(n)
      sampleWidth = Double(features) + 1
    case .csv, .idx, .builtin, .numpy: break
    }
    var history = 0.0
    if case .lbfgs(let settings) = optimizer {
      let parameters = shapes.flatMap(\.tensors).filter { $0.role == .parameter }.reduce(0.0) {
        $0 + $1.shape.reduce(1.0) { $0 * Double($1) }
      }
      history = 4 * parameters * (2 * Double(settings.historySize) + 8)
      state += history
    }
    let rows = min(Double(training.batchSize), samples ?? Double(training.batchSize))
    // Each layer's output is kept with its pre-activation and its gradient.
    let batch = 4 * rows * widths * 3
    return MemoryEstimate(
      state: state, batch: batch, data: samples.map { 4 * $0 * sampleWidth }, largestLayer: largest?.index, optimizerHistory: history)
  }

  /// A problem when training this spec needs more memory than `limit` allows: the bytes needed
  /// by part, the limit, and the field to change.
  public func resourceProblems(limit: Int = MemoryBudget.limit) -> [SpecIssue] {
    guard let estimate = memoryEstimate(), estimate.total > Double(limit) else { return [] }
    var parts = ["state \(ByteCount.text(estimate.state))", "one batch \(ByteCount.text(estimate.batch))"]
    if let data = estimate.data { parts.append("data \(ByteCount.text(data))") }
    let path: JSONPath
    let advice: String
    let largestPart = max(estimate.state, estimate.batch, estimate.data ?? 0)
    if largestPart == estimate.data {
      (path, advice) = (JSONPath("data.samples"), "use fewer samples or features")
    } else if largestPart == estimate.batch {
      (path, advice) = (JSONPath("training.batch_size"), "use a smaller batch or narrower layers")
    } else if estimate.optimizerHistory > estimate.state / 2 {
      (path, advice) = (JSONPath("optimizer.history_size"), "keep fewer L-BFGS pairs (a smaller history_size) or use a smaller model")
    } else if let layer = estimate.largestLayer {
      (path, advice) = (JSONPath("model.layers") + layer, "use fewer units")
    } else {
      (path, advice) = (JSONPath("model"), "use a smaller model")
    }
    return [
      SpecIssue(
        path: path,
        message:
          "training this session needs about \(ByteCount.text(estimate.total)) of memory (\(parts.joined(separator: ", "))), more than the \(ByteCount.text(limit)) allowed (\(MemoryBudget.limitSource)); \(advice)",
        location: nil)
    ]
  }
}
