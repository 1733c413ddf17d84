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
    case .csv(let source):
      let path = resolve(source.path, in: folder)
      let bytes = try read(path)
      guard let text = String(validating: bytes, as: UTF8.self) else { throw .unreadable(path: path, reason: "the file is not UTF-8 text") }
      return try CSVData.load(text: text, source: source, path: path).0
    case .idx(let images, let labels):
      let (imagesPath, labelsPath) = (resolve(images, in: folder), resolve(labels, in: folder))
      return try IDXData.load(images: read(imagesPath), labels: read(labelsPath), imagesPath: imagesPath, labelsPath: labelsPath)
    case .builtin(let name):
      guard name == "iris" else { throw .mismatch("no builtin dataset \"\(name)\"; builtins: iris") }
      let source = DataSource.CSVSource(path: "iris", target: .index(4), header: false, task: .classification)
      return try CSVData.load(text: IrisData.csv, source: source, path: "builtin:iris").0
    }
  }

  static func resolve(_ path: String, in folder: String) -> String {
    path.hasPrefix("/") || folder.isEmpty ? path : (folder as NSString).appendingPathComponent(path)
  }

  static func read(_ path: String) throws(DataError) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw .unreadable(
        path: path, reason: FileManager.default.fileExists(atPath: path) ? "permission denied or not a file" : "no such file")
    }
    return Array(data)
  }
}
