import Foundation
import SpecKit
import TensorCore

/// The synthetic datasets. Each draws from `SplitMix64(seed: source seed, stream: "data.TYPE")`
/// in the order described, computes in double precision and rounds the results to float32, so
/// other programs can rebuild the same samples.
public enum SyntheticData {
  /// Evenly spaced values from a to b: n of them including both ends (one value: a).
  static func linspace(_ a: Double, _ b: Double, _ n: Int, includeEnd: Bool = true) -> [Double] {
    guard n > 1 else { return n == 1 ? [a] : [] }
    let steps = Double(includeEnd ? n - 1 : n)
    return (0..<n).map { a + (b - a) * Double($0) / steps }
  }

  static func make(_ points: [(Double, Double)], _ labels: [Int], classes: Int) -> Dataset {
    Dataset(
      inputs: Tensor(shape: [points.count, 2], scalars: points.flatMap { [Float($0.0), Float($0.1)] }),
      targets: .classes(labels), shape: DataShape(input: [2], target: .classes(classes)))
  }

  /// Sample i belongs to class k = i mod K and is the j-th (j = i div K) of that class's m
  /// samples: radius r = j/(m − 1), angle t = 4k + 4r + noise·z (one normal per sample, in index
  /// order); the point is (r·sin t, r·cos t). K arms winding around the origin.
  public static func spirals(samples: Int, classes: Int, noise: Double, seed: UInt64) -> Dataset {
    var g = SplitMix64(seed: seed, stream: "data.spirals")
    var points: [(Double, Double)] = [], labels: [Int] = []
    for i in 0..<samples {
      let k = i % classes, j = i / classes
      let m = samples / classes + (k < samples % classes ? 1 : 0)
      let r = m > 1 ? Double(j) / Double(m - 1) : 0
      let t = 4 * Double(k) + 4 * r + noise * Double(g.nextNormal())
      points.append((r * sin(t), r * cos(t)))
      labels.append(k)
    }
    return make(points, labels, classes: classes)
  }

  /// Two interleaving half circles (as scikit-learn's make_moons): the first ⌊N/2⌋ samples are
  /// class 0 at (cos θ, sin θ), θ evenly over [0, π]; the rest class 1 at (1 − cos θ, 0.5 − sin θ);
  /// then noise·z is added to x and y of each sample in index order.
  public static func moons(samples: Int, noise: Double, seed: UInt64) -> Dataset {
    var g = SplitMix64(seed: seed, stream: "data.moons")
    let outer = samples / 2, inner = samples - outer
    var points = linspace(0, .pi, outer).map { (cos($0), sin($0)) } + linspace(0, .pi, inner).map { (1 - cos($0), 0.5 - sin($0)) }
    let labels = Array(repeating: 0, count: outer) + Array(repeating: 1, count: inner)
    for i in points.indices {
      let (dx, dy) = (Double(g.nextNormal()), Double(g.nextNormal()))
      points[i] = (points[i].0 + noise * dx, points[i].1 + noise * dy)
    }
    return make(points, labels, classes: 2)
  }

  /// Two concentric circles (as make_circles): the first ⌊N/2⌋ samples are class 0 on the unit
  /// circle, the rest class 1 on the circle of radius `factor`, angles evenly over [0, 2π) without
  /// the end; then noise·z is added to x and y in index order.
  public static func circles(samples: Int, noise: Double, factor: Double, seed: UInt64) -> Dataset {
    var g = SplitMix64(seed: seed, stream: "data.circles")
    let outer = samples / 2, inner = samples - outer
    var points =
      linspace(0, 2 * .pi, outer, includeEnd: false).map { (cos($0), sin($0)) }
      + linspace(0, 2 * .pi, inner, includeEnd: false).map { (factor * cos($0), factor * sin($0)) }
    let labels = Array(repeating: 0, count: outer) + Array(repeating: 1, count: inner)
    for i in points.indices {
      let (dx, dy) = (Double(g.nextNormal()), Double(g.nextNormal()))
      points[i] = (points[i].0 + noise * dx, points[i].1 + noise * dy)
    }
    return make(points, labels, classes: 2)
  }

  /// Points uniform in [−1, 1]² (x from one uniform, then y from the next): class 1 where x and
  /// y have opposite signs (x·y < 0), class 0 otherwise; then noise·z is added to x and y (two
  /// normals) after labelling. All uniforms are drawn first, then the noise.
  public static func xor(samples: Int, noise: Double, seed: UInt64) -> Dataset {
    var g = SplitMix64(seed: seed, stream: "data.xor")
    var points = (0..<samples).map { _ in (2 * Double(g.nextUniform()) - 1, 2 * Double(g.nextUniform()) - 1) }
    let labels = points.map { $0.0 * $0.1 < 0 ? 1 : 0 }
    if noise > 0 {
      for i in points.indices {
        let (dx, dy) = (Double(g.nextNormal()), Double(g.nextNormal()))
        points[i] = (points[i].0 + noise * dx, points[i].1 + noise * dy)
      }
    }
    return make(points, labels, classes: 2)
  }

  /// Gaussian blobs: first the K centres, each of `features` coordinates uniform in [−10, 10]
  /// (K·features uniforms, centre by centre); then sample i of class k = i mod K at centre k plus
  /// std·z per coordinate.
  public static func blobs(samples: Int, centers: Int, features: Int, std: Double, seed: UInt64) -> Dataset {
    var g = SplitMix64(seed: seed, stream: "data.blobs")
    let centre = (0..<centers * features).map { _ in -10 + 20 * Double(g.nextUniform()) }
    var values: [Float] = []
    var labels: [Int] = []
    for i in 0..<samples {
      let k = i % centers
      for f in 0..<features { values.append(Float(centre[k * features + f] + std * Double(g.nextNormal()))) }
      labels.append(k)
    }
    return Dataset(
      inputs: Tensor(shape: [samples, features], scalars: values), targets: .classes(labels),
      shape: DataShape(input: [features], target: .classes(centers)))
  }

  /// Regression: x = −π + 2π·u, target sin(x) + noise·z, drawing u then z for each sample.
  public static func sine(samples: Int, noise: Double, seed: UInt64) -> Dataset {
    var g = SplitMix64(seed: seed, stream: "data.sine")
    var xs: [Float] = [], ys: [Float] = []
    for _ in 0..<samples {
      let x = -Double.pi + 2 * .pi * Double(g.nextUniform())
      let y = sin(x) + noise * Double(g.nextNormal())
      xs.append(Float(x))
      ys.append(Float(y))
    }
    return Dataset(
      inputs: Tensor(shape: [samples, 1], scalars: xs), targets: .values(Tensor(shape: [samples, 1], scalars: ys)),
      shape: DataShape(input: [1], target: .values(width: 1)))
  }
}
