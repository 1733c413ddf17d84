import Foundation
import SpecKit
import TensorCore

/// Builds the samples a data spec describes.
public enum DatasetLoader {
  /// The dataset of `spec`; file paths are relative to `folder` (the spec file's folder).
  public static func load(_ spec: DataSpec, relativeTo folder: String) throws(DataError) -> Dataset {
    switch spec.source {
    case .spirals(let samples, let classes, let noise, let seed):
      return SyntheticData.spirals(samples: samples, classes: classes, noise: noise, seed: seed)
    case .moons(let samples, let noise, let seed): return SyntheticData.moons(samples: samples, noise: noise, seed: seed)
    case .circles(let samples, let noise, let factor, let seed):
      return SyntheticData.circles(samples: samples, noise: noise, factor: factor, seed: seed)
    case .xor(let samples, let noise, let seed): return SyntheticData.xor(samples: samples, noise: noise, seed: seed)
    case .blobs(let samples, let centers, let features, let std, let seed):
      return SyntheticData.blobs(samples: samples, centers: centers, features: features, std: std, seed: seed)
    case .sine(let samples, let noise, let seed): return SyntheticData.sine(samples: samples, noise: noise, seed: seed)
    case .csv, .builtin:
      return try loadNamed(spec, relativeTo: folder).dataset
    case .idx(let images, let labels):
      let imagesPath = try DataAccess.resolve(images, in: folder, field: "data.images")
      let labelsPath = try DataAccess.resolve(labels, in: folder, field: "data.labels")
      return try IDXData.load(mapping: imagesPath, labels: read(labelsPath), labelsPath: labelsPath)
    case .numpy(let source):
      switch source.files {
      case .npy(let inputs, let targets):
        let inputsPath = try DataAccess.resolve(inputs, in: folder, field: "data.inputs")
        let targetsPath = try DataAccess.resolve(targets, in: folder, field: "data.targets")
        // The inputs mapped (their file is most of the data, and may be larger than memory);
        // the targets read whole.
        if let inputs = try NumPyData.mapInputs(inputsPath, scale: source.scale, monitor: DataLoadMonitor.shared) {
          return try NumPyData.dataset(
            inputs: inputs, targets: NumPyData.parse(read(targetsPath), path: targetsPath), source: source, inputsName: inputsPath,
            targetsName: targetsPath)
        }
        return try NumPyData.dataset(
          inputs: NumPyData.parse(read(inputsPath), path: inputsPath), targets: NumPyData.parse(read(targetsPath), path: targetsPath),
          source: source, inputsName: inputsPath, targetsName: targetsPath)
      case .npz(let path, let inputs, let targets):
        let resolved = try DataAccess.resolve(path, in: folder, field: "data.path")
        let arrays = try NumPyData.parseArchive(read(resolved), path: resolved, wanted: [inputs, targets])
        return try NumPyData.dataset(
          inputs: arrays[inputs]!, targets: arrays[targets]!, source: source, inputsName: "\(resolved) (array \(inputs))",
          targetsName: "\(resolved) (array \(targets))")
      }
    }
  }

  /// The dataset of `spec` and, for a csv classification (or the built-in iris), its class
  /// names in label order: what an export writes beside the model.
  public static func loadNamed(_ spec: DataSpec, relativeTo folder: String) throws(DataError) -> (dataset: Dataset, classNames: [String]?) {
    switch spec.source {
    case .csv(let source):
      let path = try DataAccess.resolve(source.path, in: folder, field: "data.path")
      return try loadCSV(source, path: path, cache: DataCache.fromEnvironment(), monitor: DataLoadMonitor.shared)
    case .builtin("digits"):
      return (DigitsData.dataset, (0...9).map(String.init))
    case .builtin(let name):
      guard name == "iris" else { throw .mismatch("no builtin dataset \"\(name)\"; builtins: digits, iris") }
      let source = DataSource.CSVSource(path: "iris", target: .index(4), header: false, task: .classification)
      let (dataset, names) = try CSVData.load(text: IrisData.csv, source: source, path: "builtin:iris")
      return (dataset, names)
    default:
      return (try load(spec, relativeTo: folder), nil)
    }
  }

  /// A CSV file's arrays: from the cache when it holds them for this file as it is, else parsed
  /// — by the fast reader, which leaves the files it does not read (quoted fields, non-ASCII
  /// text) to CSVData, the definition of the format's rules — and then cached.
  static func loadCSV(_ source: DataSource.CSVSource, path: String, cache: DataCache?, monitor: DataLoadMonitor? = nil)
    throws(DataError) -> (dataset: Dataset, classNames: [String]?)
  {
    let file: OpenFile
    do { file = try FileAccess.openForReading(path) } catch { throw .unreadable(path: path, reason: error.reason ?? error.description) }
    let progress = monitor?.hooks(path: path, size: file.size) ?? FastCSV.Progress()
    let key = cache != nil && file.size >= cache!.minimumSize ? try DataCache.key(file, source: source) : nil
    if let cache, let key, let hit = cache.load(key, normalize: source.normalize) { return hit }
    let loaded: (Dataset, classNames: [String]?)
    if let fast = try FastCSV.load(file, source: source, path: path, progress: progress) {
      loaded = fast
    } else {
      if progress.isCancelled() { throw .interrupted(path: path) }
      let bytes = try read(path)
      if let nul = bytes.firstIndex(of: 0) {
        let line = bytes[..<nul].reduce(1) { $1 == 10 ? $0 + 1 : $0 }
        throw .csv(path: path, line: line, column: nil, message: "holds a NUL byte (at byte \(nul)); a CSV file is text")
      }
      guard let text = String(validating: bytes, as: UTF8.self) else { throw .unreadable(path: path, reason: "the file is not UTF-8 text") }
      loaded = try CSVData.load(text: text, source: source, path: path)
    }
    // Cached only when the file is still what its key says (it may have changed while read).
    if let cache, let key, let again = try? FileAccess.openForReading(path), (try? DataCache.key(again, source: source)) == key {
      cache.store(key, loaded.0, classNames: loaded.classNames)
    }
    return loaded
  }

  static func read(_ path: String) throws(DataError) -> [UInt8] {
    do { return try FileAccess.read(path) } catch { throw .unreadable(path: path, reason: error.reason ?? error.description) }
  }
}
