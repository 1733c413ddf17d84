import SpecKit

/// The sizes of a window sliding over a batch of images `[B, C, H, W]`: what the convolution and
/// the pools compute with, from the layer's window and its input shape.
public struct ImageGeometry: Hashable, Sendable {
  public var channels: Int
  public var height: Int
  public var width: Int
  public var kernelHeight: Int
  public var kernelWidth: Int
  public var strideHeight: Int
  public var strideWidth: Int
  public var dilationHeight: Int
  public var dilationWidth: Int
  /// The padding before each axis (the rest, after, only decides the output size).
  public var padTop: Int
  public var padLeft: Int
  public var outputHeight: Int
  public var outputWidth: Int

  /// The geometry of `window` over a sample `[C, H, W]` (the shapes were inferred, so it fits).
  public init(_ window: Window, input: [Int]) {
    (channels, height, width) = (input[0], input[1], input[2])
    (kernelHeight, kernelWidth) = (window.kernel.height, window.kernel.width)
    (strideHeight, strideWidth) = (window.stride.height, window.stride.width)
    (dilationHeight, dilationWidth) = (window.dilation.height, window.dilation.width)
    (padTop, padLeft) = (window.padBefore.height, window.padBefore.width)
    let out = (try? window.output(height: height, width: width).get()) ?? Pair(0)
    (outputHeight, outputWidth) = (out.height, out.width)
  }

  public var inputSize: Int { channels * height * width }
  /// Output positions per channel.
  public var outputPlane: Int { outputHeight * outputWidth }
  public var kernelSize: Int { kernelHeight * kernelWidth }

  /// The input row and column that kernel offset (u, v) of output position (i, j) reads; they
  /// may fall outside the image (padding).
  @inline(__always) func source(_ i: Int, _ j: Int, _ u: Int, _ v: Int) -> (row: Int, column: Int) {
    (i * strideHeight - padTop + u * dilationHeight, j * strideWidth - padLeft + v * dilationWidth)
  }

  @inline(__always) func inside(_ r: Int, _ c: Int) -> Bool { r >= 0 && r < height && c >= 0 && c < width }
}

/// The image layers' passes: the convolution as plain loops that read like its definition (the
/// `reference` backend's; the `fast` backend lowers it to matrix products), the pools, shared
/// by both backends over buffer views, and the convolution's lowering (`im2col`, `col2im`).
public enum ImageMath {
  // MARK: convolution, by its definition

  /// `y[b, o, i, j] = bias[o] + Σ_{c, u, v} W[o, c, u, v]·x[b, g·C/groups + c, i·sh − pt + u·dh,
  /// j·sw − pl + v·dw]` with zeros outside the image; `x` is `[B, C, H, W]`, W `[O, C/groups, kh,
  /// kw]`, the result `[B, O, OH, OW]`.
  public static func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ImageGeometry, groups: Int) -> Tensor {
    let batch = x.shape[0]
    let filters = weight.shape[0]
    let (perGroupIn, perGroupOut) = (g.channels / groups, filters / groups)
    var y = [Float](repeating: 0, count: batch * filters * g.outputPlane)
    for b in 0..<batch {
      for o in 0..<filters {
        let group = o / perGroupOut
        for i in 0..<g.outputHeight {
          for j in 0..<g.outputWidth {
            var sum: Float = bias?.scalars[o] ?? 0
            for c in 0..<perGroupIn {
              let channel = group * perGroupIn + c
              for u in 0..<g.kernelHeight {
                for v in 0..<g.kernelWidth {
                  let (r, s) = g.source(i, j, u, v)
                  guard g.inside(r, s) else { continue }
                  sum +=
                    weight.scalars[((o * perGroupIn + c) * g.kernelHeight + u) * g.kernelWidth + v]
                    * x.scalars[((b * g.channels + channel) * g.height + r) * g.width + s]
                }
              }
            }
            y[((b * filters + o) * g.outputHeight + i) * g.outputWidth + j] = sum
          }
        }
      }
    }
    return Tensor(shape: [batch, filters, g.outputHeight, g.outputWidth], scalars: y)
  }

  /// The convolution's gradients for dy `[B, O, OH, OW]`: each term of the forward sum sends
  /// dy·W to the input it read, dy·x to the weight, and dy to the bias.
  public static func conv2dBackward(
    _ dy: Tensor, input x: Tensor, weight: Tensor, hasBias: Bool, geometry g: ImageGeometry, groups: Int
  ) -> (input: Tensor, weight: Tensor, bias: Tensor?) {
    let batch = x.shape[0]
    let filters = weight.shape[0]
    let (perGroupIn, perGroupOut) = (g.channels / groups, filters / groups)
    var dx = [Float](repeating: 0, count: x.count)
    var dw = [Float](repeating: 0, count: weight.count)
    var db = [Float](repeating: 0, count: filters)
    for b in 0..<batch {
      for o in 0..<filters {
        let group = o / perGroupOut
        for i in 0..<g.outputHeight {
          for j in 0..<g.outputWidth {
            let d = dy.scalars[((b * filters + o) * g.outputHeight + i) * g.outputWidth + j]
            db[o] += d
            for c in 0..<perGroupIn {
              let channel = group * perGroupIn + c
              for u in 0..<g.kernelHeight {
                for v in 0..<g.kernelWidth {
                  let (r, s) = g.source(i, j, u, v)
                  guard g.inside(r, s) else { continue }
                  let w = ((o * perGroupIn + c) * g.kernelHeight + u) * g.kernelWidth + v
                  let xi = ((b * g.channels + channel) * g.height + r) * g.width + s
                  dw[w] += d * x.scalars[xi]
                  dx[xi] += d * weight.scalars[w]
                }
              }
            }
          }
        }
      }
    }
    return (
      Tensor(shape: x.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), hasBias ? Tensor(shape: [filters], scalars: db) : nil
    )
  }

  // MARK: the convolution lowered to matrix products

  /// The columns of one group of one sample: `columns[(c·kh + u)·kw + v, i·OW + j]` is the input
  /// value that kernel offset (c, u, v) meets at output (i, j), 0 in the padding; a matrix
  /// `[(C/groups)·kh·kw, OH·OW]` whose product with the group's weights `[O/groups, (C/groups)·kh·kw]`
  /// is the group's output. `x` is the sample's `[C, H, W]`; `firstChannel` the group's first.
  /// Row r of the columns starts at `columns + r·rowStride` (`outputPlane` for one sample alone;
  /// wider when the columns of several samples sit side by side).
  package static func im2col(
    _ x: UnsafePointer<Float>, geometry g: ImageGeometry, firstChannel: Int, channels: Int, into columns: UnsafeMutablePointer<Float>,
    rowStride: Int
  ) {
    let plane = rowStride
    var row = 0
    for c in firstChannel..<firstChannel + channels {
      let image = x + c * g.height * g.width
      for u in 0..<g.kernelHeight {
        for v in 0..<g.kernelWidth {
          let out = columns + row * plane
          for i in 0..<g.outputHeight {
            let r = i * g.strideHeight - g.padTop + u * g.dilationHeight
            let line = out + i * g.outputWidth
            guard r >= 0 && r < g.height else {
              line.update(repeating: 0, count: g.outputWidth)
              continue
            }
            let source = image + r * g.width
            let offset = v * g.dilationWidth - g.padLeft
            if g.strideWidth == 1 {
              // One run of the row, zeros where it leaves the image.
              let first = max(0, -offset), last = min(g.outputWidth, g.width - offset)
              if last <= first {
                line.update(repeating: 0, count: g.outputWidth)
                continue
              }
              if first > 0 { line.update(repeating: 0, count: first) }
              (line + first).update(from: source + first + offset, count: last - first)
              if last < g.outputWidth { (line + last).update(repeating: 0, count: g.outputWidth - last) }
            } else {
              for j in 0..<g.outputWidth {
                let s = j * g.strideWidth + offset
                line[j] = s >= 0 && s < g.width ? source[s] : 0
              }
            }
          }
          row += 1
        }
      }
    }
  }

  /// The adjoint of `im2col`: adds each column entry back onto the input value it came from.
  /// `dx` (the sample's `[C, H, W]` gradient) is added to, not overwritten.
  package static func col2im(
    _ columns: UnsafePointer<Float>, geometry g: ImageGeometry, firstChannel: Int, channels: Int, into dx: UnsafeMutablePointer<Float>,
    rowStride: Int
  ) {
    let plane = rowStride
    var row = 0
    for c in firstChannel..<firstChannel + channels {
      let image = dx + c * g.height * g.width
      for u in 0..<g.kernelHeight {
        for v in 0..<g.kernelWidth {
          let column = columns + row * plane
          for i in 0..<g.outputHeight {
            let r = i * g.strideHeight - g.padTop + u * g.dilationHeight
            guard r >= 0 && r < g.height else { continue }
            let target = image + r * g.width
            let line = column + i * g.outputWidth
            let offset = v * g.dilationWidth - g.padLeft
            if g.strideWidth == 1 {
              // One run of the row, where it falls inside the image.
              let first = max(0, -offset), last = min(g.outputWidth, g.width - offset)
              if first < last {
                let (from, to) = (line + first, target + first + offset)
                for j in 0..<last - first { to[j] += from[j] }
              }
              continue
            }
            for j in 0..<g.outputWidth {
              let s = j * g.strideWidth + offset
              if s >= 0 && s < g.width { target[s] += line[j] }
            }
          }
          row += 1
        }
      }
    }
  }

  // MARK: pools

  /// Max pooling of `rows` samples `[C, H, W]`: each output the largest value of its window
  /// (padding is −∞), the first largest in row-major window order; `argmax` keeps its index in
  /// the sample, for the backward pass. A NaN in a window is its maximum.
  package static func maxPoolForward(
    _ x: UnsafeBufferPointer<Float>, rows: Int, geometry g: ImageGeometry, into y: UnsafeMutableBufferPointer<Float>,
    argmax: UnsafeMutableBufferPointer<Int32>
  ) {
    let (inSize, outSize) = (g.inputSize, g.channels * g.outputPlane)
    if g.padTop == 0 && g.padLeft == 0 {
      maxPoolForwardUnpadded(x, rows: rows, geometry: g, into: y, argmax: argmax)
      return
    }
    for b in 0..<rows {
      for c in 0..<g.channels {
        let plane = b * inSize + c * g.height * g.width
        for i in 0..<g.outputHeight {
          for j in 0..<g.outputWidth {
            var best = -Float.infinity
            var at = -1
            for u in 0..<g.kernelHeight {
              for v in 0..<g.kernelWidth {
                let (r, s) = g.source(i, j, u, v)
                guard g.inside(r, s) else { continue }
                let value = x[plane + r * g.width + s]
                if at < 0 || value > best || value.isNaN && !best.isNaN {
                  (best, at) = (value, r * g.width + s)
                }
              }
            }
            let o = b * outSize + (c * g.outputHeight + i) * g.outputWidth + j
            y[o] = best
            argmax[o] = Int32(c * g.height * g.width + at)
          }
        }
      }
    }
  }

  /// Max pooling without padding: every window lies inside its image, so the loops need no
  /// bounds checks (the same choices as the general loop: the first largest, NaN wins).
  static func maxPoolForwardUnpadded(
    _ x: UnsafeBufferPointer<Float>, rows: Int, geometry g: ImageGeometry, into y: UnsafeMutableBufferPointer<Float>,
    argmax: UnsafeMutableBufferPointer<Int32>
  ) {
    let planeSize = g.height * g.width
    var o = 0
    for bc in 0..<rows * g.channels {
      let plane = x.baseAddress! + bc * planeSize
      let channelBase = Int32((bc % g.channels) * planeSize)
      for i in 0..<g.outputHeight {
        let top = i * g.strideHeight
        for j in 0..<g.outputWidth {
          let left = j * g.strideWidth
          var at = top * g.width + left
          var best = plane[at]
          for u in 0..<g.kernelHeight {
            let row = (top + u) * g.width + left
            for v in 0..<g.kernelWidth {
              let value = plane[row + v]
              if value > best || value.isNaN && !best.isNaN { (best, at) = (value, row + v) }
            }
          }
          y[o] = best
          argmax[o] = channelBase + Int32(at)
          o += 1
        }
      }
    }
  }

  /// dx of max pooling: each output's gradient goes to the input its window chose.
  package static func maxPoolBackward(
    _ dy: UnsafeBufferPointer<Float>, rows: Int, geometry g: ImageGeometry, argmax: UnsafeBufferPointer<Int32>,
    into dx: UnsafeMutableBufferPointer<Float>
  ) {
    let (inSize, outSize) = (g.inputSize, g.channels * g.outputPlane)
    dx.update(repeating: 0)
    for b in 0..<rows {
      for o in 0..<outSize { dx[b * inSize + Int(argmax[b * outSize + o])] += dy[b * outSize + o] }
    }
  }

  /// Average pooling (padding counted as zeros, divided by kh·kw: PyTorch's `count_include_pad`).
  package static func avgPoolForward(
    _ x: UnsafeBufferPointer<Float>, rows: Int, geometry g: ImageGeometry, into y: UnsafeMutableBufferPointer<Float>
  ) {
    let (inSize, outSize) = (g.inputSize, g.channels * g.outputPlane)
    let scale = 1 / Float(g.kernelSize)
    for b in 0..<rows {
      for c in 0..<g.channels {
        let plane = b * inSize + c * g.height * g.width
        for i in 0..<g.outputHeight {
          for j in 0..<g.outputWidth {
            var sum: Float = 0
            for u in 0..<g.kernelHeight {
              for v in 0..<g.kernelWidth {
                let (r, s) = g.source(i, j, u, v)
                if g.inside(r, s) { sum += x[plane + r * g.width + s] }
              }
            }
            y[b * outSize + (c * g.outputHeight + i) * g.outputWidth + j] = sum * scale
          }
        }
      }
    }
  }

  /// dx of average pooling: each output's gradient / (kh·kw) to every input of its window.
  package static func avgPoolBackward(
    _ dy: UnsafeBufferPointer<Float>, rows: Int, geometry g: ImageGeometry, into dx: UnsafeMutableBufferPointer<Float>
  ) {
    let (inSize, outSize) = (g.inputSize, g.channels * g.outputPlane)
    let scale = 1 / Float(g.kernelSize)
    dx.update(repeating: 0)
    for b in 0..<rows {
      for c in 0..<g.channels {
        let plane = b * inSize + c * g.height * g.width
        for i in 0..<g.outputHeight {
          for j in 0..<g.outputWidth {
            let d = dy[b * outSize + (c * g.outputHeight + i) * g.outputWidth + j] * scale
            for u in 0..<g.kernelHeight {
              for v in 0..<g.kernelWidth {
                let (r, s) = g.source(i, j, u, v)
                if g.inside(r, s) { dx[plane + r * g.width + s] += d }
              }
            }
          }
        }
      }
    }
  }

  /// The mean of each channel's `inner` values: `[B, C, inner] → [B, C]`.
  package static func globalAvgPoolForward(
    _ x: UnsafeBufferPointer<Float>, rows: Int, channels: Int, inner: Int, into y: UnsafeMutableBufferPointer<Float>
  ) {
    let scale = 1 / Float(inner)
    for bc in 0..<rows * channels {
      var sum: Float = 0
      for l in 0..<inner { sum += x[bc * inner + l] }
      y[bc] = sum * scale
    }
  }

  /// dx of the global mean: each channel's gradient / inner to each of its values.
  package static func globalAvgPoolBackward(
    _ dy: UnsafeBufferPointer<Float>, rows: Int, channels: Int, inner: Int, into dx: UnsafeMutableBufferPointer<Float>
  ) {
    let scale = 1 / Float(inner)
    for bc in 0..<rows * channels {
      let d = dy[bc] * scale
      for l in 0..<inner { dx[bc * inner + l] = d }
    }
  }

  // MARK: array forms

  /// Max pooling of a batch `[B, C, H, W]` with the chosen indices.
  public static func maxPoolForward(_ x: Tensor, geometry g: ImageGeometry) -> (Tensor, [Int32]) {
    let rows = x.shape[0]
    var y = [Float](repeating: 0, count: rows * g.channels * g.outputPlane)
    var argmax = [Int32](repeating: 0, count: y.count)
    x.scalars.withUnsafeBufferPointer { x in
      y.withUnsafeMutableBufferPointer { y in
        argmax.withUnsafeMutableBufferPointer { maxPoolForward(x, rows: rows, geometry: g, into: y, argmax: $0) }
      }
    }
    return (Tensor(shape: [rows, g.channels, g.outputHeight, g.outputWidth], scalars: y), argmax)
  }

  public static func maxPoolBackward(_ dy: Tensor, geometry g: ImageGeometry, argmax: [Int32]) -> Tensor {
    let rows = dy.shape[0]
    var dx = [Float](repeating: 0, count: rows * g.inputSize)
    dy.scalars.withUnsafeBufferPointer { dy in
      argmax.withUnsafeBufferPointer { argmax in
        dx.withUnsafeMutableBufferPointer { maxPoolBackward(dy, rows: rows, geometry: g, argmax: argmax, into: $0) }
      }
    }
    return Tensor(shape: [rows, g.channels, g.height, g.width], scalars: dx)
  }

  public static func avgPoolForward(_ x: Tensor, geometry g: ImageGeometry) -> Tensor {
    let rows = x.shape[0]
    var y = [Float](repeating: 0, count: rows * g.channels * g.outputPlane)
    x.scalars.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { avgPoolForward(x, rows: rows, geometry: g, into: $0) } }
    return Tensor(shape: [rows, g.channels, g.outputHeight, g.outputWidth], scalars: y)
  }

  public static func avgPoolBackward(_ dy: Tensor, geometry g: ImageGeometry) -> Tensor {
    let rows = dy.shape[0]
    var dx = [Float](repeating: 0, count: rows * g.inputSize)
    dy.scalars.withUnsafeBufferPointer { dy in dx.withUnsafeMutableBufferPointer { avgPoolBackward(dy, rows: rows, geometry: g, into: $0) }
    }
    return Tensor(shape: [rows, g.channels, g.height, g.width], scalars: dx)
  }

  /// The global mean of a batch `[B, C, …]` → `[B, C]`.
  public static func globalAvgPoolForward(_ x: Tensor) -> Tensor {
    let (rows, channels) = (x.shape[0], x.shape[1])
    let inner = x.count / max(1, rows * channels)
    var y = [Float](repeating: 0, count: rows * channels)
    x.scalars.withUnsafeBufferPointer { x in
      y.withUnsafeMutableBufferPointer { globalAvgPoolForward(x, rows: rows, channels: channels, inner: inner, into: $0) }
    }
    return Tensor(shape: [rows, channels], scalars: y)
  }

  public static func globalAvgPoolBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
    let (rows, channels) = (inputShape[0], inputShape[1])
    let inner = inputShape.dropFirst(2).reduce(1, *)
    var dx = [Float](repeating: 0, count: rows * channels * inner)
    dy.scalars.withUnsafeBufferPointer { dy in
      dx.withUnsafeMutableBufferPointer { globalAvgPoolBackward(dy, rows: rows, channels: channels, inner: inner, into: $0) }
    }
    return Tensor(shape: inputShape, scalars: dx)
  }
}
