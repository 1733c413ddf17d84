/// Why a safetensors file was refused.
public enum SafeTensorsProblem: Error, Hashable, Sendable, CustomStringConvertible {
  /// Fewer than the 8 bytes of the header length.
  case tooShort(bytes: Int)
  /// The declared header length runs past the end of the file (or past the 100 MB cap).
  case headerLength(declared: UInt64, available: Int)
  /// The header is not a JSON object.
  case header(String)
  /// An entry lacks a field or has a wrong one.
  case entry(name: String, reason: String)
  /// A dtype this file format does not define.
  case unknownDType(name: String, dtype: String)
  /// A defined dtype SpecBench does not load (state is float32).
  case unsupportedDType(name: String, dtype: String)
  /// shape × dtype size differs from the byte span.
  case sizeMismatch(name: String, shape: [Int], dtype: String, expectedBytes: Int, spanBytes: Int)
  /// A shape whose byte size does not fit in memory arithmetic.
  case shapeTooLarge(name: String, shape: [Int])
  /// Offsets past the end of the data, or end before begin.
  case offsetsOutOfBounds(name: String, begin: Int, end: Int, dataBytes: Int)
  /// Two tensors share bytes, or bytes are left between them.
  case notContiguous(name: String, begin: Int, expected: Int)
  /// Bytes after the last tensor that no tensor covers.
  case trailingBytes(count: Int)
  /// A name appears twice in the header.
  case duplicateName(String)

  public var description: String {
    switch self {
    case .tooShort(let n): "the file has \(n) bytes, fewer than the 8-byte header length"
    case .headerLength(let declared, let available):
      "the header length says \(declared) bytes, but only \(available) follow (a truncated or non-safetensors file)"
    case .header(let reason): "the header is not valid: \(reason)"
    case .entry(let name, let reason): "tensor \(TextExcerpt.quoted(name, limit: 64)): \(reason)"
    case .unknownDType(let name, let dtype):
      "tensor \(TextExcerpt.quoted(name, limit: 64)): unknown dtype \(TextExcerpt.quoted(dtype, limit: 16))"
    case .unsupportedDType(let name, let dtype):
      "tensor \(TextExcerpt.quoted(name, limit: 64)) has dtype \(TextExcerpt.quoted(dtype, limit: 16)); SpecBench reads F32 tensors, and I64 only for a metrics file's steps (convert the file, e.g. with numpy's astype(np.float32))"
    case .sizeMismatch(let name, let shape, let dtype, let expected, let span):
      "tensor \(TextExcerpt.quoted(name, limit: 64)): shape \(shape) of \(dtype) needs \(expected) bytes, but its data_offsets span \(span)"
    case .shapeTooLarge(let name, let shape): "tensor \(TextExcerpt.quoted(name, limit: 64)): shape \(shape) is too large"
    case .offsetsOutOfBounds(let name, let begin, let end, let bytes):
      "tensor \(TextExcerpt.quoted(name, limit: 64)): data_offsets [\(begin), \(end)] are outside the \(bytes) data bytes"
    case .notContiguous(let name, let begin, let expected):
      "tensor \(TextExcerpt.quoted(name, limit: 64)) starts at byte \(begin), but the previous tensor ends at \(expected) (tensors must neither overlap nor leave gaps)"
    case .trailingBytes(let count): "\(count) bytes after the last tensor belong to no tensor"
    case .duplicateName(let name): "the name \(TextExcerpt.quoted(name, limit: 64)) appears twice"
    }
  }
}
