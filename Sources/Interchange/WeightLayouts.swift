/// The weight layouts other formats use for the format's tensors: a dense weight transposed
/// (`[out, in]` ↔ `[in, out]`, ONNX's `MatMul` and Keras' kernel), and a convolution's kernel
/// between PyTorch's `[out, in/groups, kh, kw]` and Keras' `[kh, kw, in/groups, out]`.
enum WeightLayouts {
  /// A row-major `[rows, columns]` matrix as `[columns, rows]`.
  static func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
    var result = [Float](repeating: 0, count: values.count)
    for r in 0..<rows { for c in 0..<columns { result[c * rows + r] = values[r * columns + c] } }
    return result
  }

  /// The offsets of one kernel element in PyTorch's and in Keras' order.
  private static func offsets(out: Int, inner: Int, kh: Int, kw: Int) -> (
    torch: (Int, Int, Int, Int) -> Int, keras: (Int, Int, Int, Int) -> Int
  ) {
    ({ o, i, y, x in ((o * inner + i) * kh + y) * kw + x }, { o, i, y, x in ((y * kw + x) * inner + i) * out + o })
  }

  /// PyTorch's `[out, in/groups, kh, kw]` kernel values in Keras' `[kh, kw, in/groups, out]` order,
  /// or back (`toKeras: false`).
  static func convolutionKernel(_ values: [Float], out: Int, inner: Int, kh: Int, kw: Int, toKeras: Bool) -> [Float] {
    let (torch, keras) = offsets(out: out, inner: inner, kh: kh, kw: kw)
    var result = [Float](repeating: 0, count: values.count)
    for o in 0..<out {
      for i in 0..<inner {
        for y in 0..<kh {
          for x in 0..<kw {
            if toKeras {
              result[keras(o, i, y, x)] = values[torch(o, i, y, x)]
            } else {
              result[torch(o, i, y, x)] = values[keras(o, i, y, x)]
            }
          }
        }
      }
    }
    return result
  }
}
