import CHDF5
import SpecKit
import Synchronization

/// An HDF5 file held in memory, written and read through the HDF5 C library (its "core" driver
/// with no backing store: the file's bytes are a buffer, never a path). Only what Keras' weights
/// file uses: groups, and datasets of floats (stored as IEEE float32) or of 64-bit integers.
///
/// The C library is built without thread safety on Debian, so every call runs under one lock.
/// Its own error printing is turned off: every failure is reported here with its HDF5 path.
struct HDF5Image {
  /// A node of the tree: a group of named children, or a dataset.
  indirect enum Node: Equatable {
    case group([String: Node])
    case floats(shape: [Int], values: [Float])
    case integers(shape: [Int], values: [Int64])
    /// A dataset of another type (strings, compounds, …): its shape and a description, so that
    /// a reader can name it if it needs it.
    case other(shape: [Int], type: String)

    var children: [String: Node]? { if case .group(let children) = self { children } else { nil } }

    /// The node at a slash-separated path below this one.
    func at(_ path: String) -> Node? {
      var node = self
      for part in path.split(separator: "/") {
        guard let next = node.children?[String(part)] else { return nil }
        node = next
      }
      return node
    }
  }

  /// Why a file could not be written or read: what and where (an HDF5 path).
  struct Failure: Error, CustomStringConvertible {
    var path: String
    var message: String
    /// The path holds names from the file: escaped, as every file text in a message.
    var description: String { path.isEmpty ? message : "\(TextExcerpt.short(path, limit: 200)): \(message)" }
  }

  /// The most values a dataset may declare, checked before anything is allocated (4 GiB of floats).
  static let maximumValues = 1 << 30
  /// The deepest group nesting read (Keras' files are a few levels deep).
  static let maximumDepth = 32

  private static let lock = Mutex(())

  // MARK: Writing

  /// The bytes of an HDF5 file holding `root`'s tree (children in name order, as HDF5 lists
  /// them), with string `attributes` on groups (by their path, `layers/dense/vars`).
  static func bytes(of root: [String: Node], attributes: [String: [String: String]] = [:]) throws(Failure) -> [UInt8] {
    let result: Result<[UInt8], Failure> = lock.withLock { _ in
      do throws(Failure) { return .success(try unlockedBytes(of: root, attributes: attributes)) } catch { return .failure(error) }
    }
    return try result.get()
  }

  private static func unlockedBytes(of root: [String: Node], attributes: [String: [String: String]]) throws(Failure) -> [UInt8] {
    _ = specbench_h5_quiet()
    let access = H5Pcreate(specbench_h5p_file_access())
    guard access >= 0 else { throw Failure(path: "", message: "HDF5 could not make a file access list") }
    defer { H5Pclose(access) }
    guard H5Pset_fapl_core(access, 1 << 16, false) >= 0 else { throw Failure(path: "", message: "HDF5's in-memory driver is missing") }
    let file = H5Fcreate("specbench-memory.h5", specbench_h5f_acc_trunc(), specbench_h5p_default(), access)
    guard file >= 0 else { throw Failure(path: "", message: "HDF5 could not create a file in memory") }
    var closed = false
    defer { if !closed { H5Fclose(file) } }
    try write(root, into: file, path: "", attributes: attributes)
    guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 else { throw Failure(path: "", message: "HDF5 could not flush the file") }
    let size = H5Fget_file_image(file, nil, 0)
    guard size > 0 else { throw Failure(path: "", message: "HDF5 gave no file image") }
    var bytes = [UInt8](repeating: 0, count: size)
    let copied = bytes.withUnsafeMutableBytes { H5Fget_file_image(file, $0.baseAddress, size) }
    guard copied == size else { throw Failure(path: "", message: "HDF5 gave \(copied) of the image's \(size) bytes") }
    closed = true
    guard H5Fclose(file) >= 0 else { throw Failure(path: "", message: "HDF5 could not close the file") }
    return bytes
  }

  private static func write(_ children: [String: Node], into location: hid_t, path: String, attributes: [String: [String: String]])
    throws(Failure)
  {
    let plist = specbench_h5p_default()
    for name in children.keys.sorted() {
      let here = path.isEmpty ? name : path + "/" + name
      switch children[name]! {
      case .group(let grandchildren):
        let group = H5Gcreate2(location, name, plist, plist, plist)
        guard group >= 0 else { throw Failure(path: here, message: "HDF5 could not create the group") }
        defer { H5Gclose(group) }
        for (key, value) in (attributes[here] ?? [:]).sorted(by: { $0.key < $1.key }) {
          guard specbench_h5_write_string_attribute(group, key, value) >= 0 else {
            throw Failure(path: here, message: "HDF5 could not write the attribute \(key)")
          }
        }
        try write(grandchildren, into: group, path: here, attributes: attributes)
      case .floats(let shape, let values):
        try dataset(values, shape: shape, type: specbench_h5t_native_float(), named: name, in: location, path: here)
      case .integers(let shape, let values):
        try dataset(values, shape: shape, type: specbench_h5t_native_int64(), named: name, in: location, path: here)
      case .other(_, let type):
        throw Failure(path: here, message: "a dataset of \(type) cannot be written")
      }
    }
  }

  private static func dataset<T>(_ values: [T], shape: [Int], type: hid_t, named name: String, in location: hid_t, path: String)
    throws(Failure)
  {
    let plist = specbench_h5p_default()
    let dims = shape.map { hsize_t($0) }
    let space = dims.withUnsafeBufferPointer { H5Screate_simple(Int32(shape.count), $0.baseAddress, nil) }
    guard space >= 0 else { throw Failure(path: path, message: "HDF5 could not make a dataspace of shape \(shape)") }
    defer { H5Sclose(space) }
    let set = H5Dcreate2(location, name, type, space, plist, plist, plist)
    guard set >= 0 else { throw Failure(path: path, message: "HDF5 could not create the dataset") }
    defer { H5Dclose(set) }
    if values.isEmpty { return }
    let status = values.withUnsafeBytes { H5Dwrite(set, type, specbench_h5s_all(), specbench_h5s_all(), plist, $0.baseAddress) }
    guard status >= 0 else { throw Failure(path: path, message: "HDF5 could not write the dataset") }
  }

  // MARK: Reading

  /// The tree of an HDF5 file's bytes: every group, and every dataset's values (floats of any
  /// width are read as float32, integers as Int64). A file HDF5 cannot open, a dataset
  /// declaring more than `maximumValues`, or more values than the file has bytes (a compressed
  /// or unwritten dataset claiming gigabytes), or any read failure is an error naming the path.
  static func tree(of bytes: [UInt8]) throws(Failure) -> [String: Node] {
    guard bytes.count >= 8, Array(bytes[0..<8]) == [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] else {
      throw Failure(path: "", message: "not an HDF5 file (its first bytes are not HDF5's signature)")
    }
    let result: Result<[String: Node], Failure> = lock.withLock { _ in
      do throws(Failure) { return .success(try unlockedTree(of: bytes)) } catch { return .failure(error) }
    }
    return try result.get()
  }

  private static func unlockedTree(of bytes: [UInt8]) throws(Failure) -> [String: Node] {
    _ = specbench_h5_quiet()
    let access = H5Pcreate(specbench_h5p_file_access())
    guard access >= 0 else { throw Failure(path: "", message: "HDF5 could not make a file access list") }
    defer { H5Pclose(access) }
    guard H5Pset_fapl_core(access, 1 << 16, false) >= 0 else { throw Failure(path: "", message: "HDF5's in-memory driver is missing") }
    // Closing the file closes whatever a failed read left open in it.
    guard H5Pset_fclose_degree(access, H5F_CLOSE_STRONG) >= 0 else {
      throw Failure(path: "", message: "HDF5 could not set its close degree")
    }
    let set = bytes.withUnsafeBytes { H5Pset_file_image(access, UnsafeMutableRawPointer(mutating: $0.baseAddress), bytes.count) }
    guard set >= 0 else { throw Failure(path: "", message: "HDF5 could not take the file's bytes") }
    let file = H5Fopen("specbench-memory.h5", specbench_h5f_acc_rdonly(), access)
    guard file >= 0 else { throw Failure(path: "", message: "HDF5 cannot open it (a damaged or truncated file)") }
    defer { H5Fclose(file) }
    return try read(group: file, path: "", depth: 0, limit: min(maximumValues, bytes.count))
  }

  private static func read(group: hid_t, path: String, depth: Int, limit: Int) throws(Failure) -> [String: Node] {
    guard depth < maximumDepth else { throw Failure(path: path, message: "groups nest more than \(maximumDepth) deep") }
    var info = H5G_info_t()
    guard H5Gget_info(group, &info) >= 0 else { throw Failure(path: path, message: "HDF5 cannot list the group") }
    var children: [String: Node] = [:]
    for index in 0..<info.nlinks {
      let length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, specbench_h5p_default())
      guard length >= 0, length < 4096 else { throw Failure(path: path, message: "HDF5 cannot read the name of member \(index)") }
      var buffer = [CChar](repeating: 0, count: Int(length) + 1)
      guard H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, specbench_h5p_default()) >= 0 else {
        throw Failure(path: path, message: "HDF5 cannot read the name of member \(index)")
      }
      let name = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
      let here = path.isEmpty ? name : path + "/" + name
      // Only the file's own objects: a soft or external link would lead elsewhere (another
      // file on this machine, for an external one), so it is refused before it is followed.
      var link = H5L_info_t()
      guard H5Lget_info(group, name, &link, specbench_h5p_default()) >= 0 else {
        throw Failure(path: here, message: "HDF5 cannot read the link")
      }
      guard link.type == H5L_TYPE_HARD else {
        throw Failure(
          path: here,
          message: "a \(link.type == H5L_TYPE_EXTERNAL ? "link to another file" : "soft link"); SpecBench reads only the file's own objects"
        )
      }
      let object = H5Oopen(group, name, specbench_h5p_default())
      guard object >= 0 else { throw Failure(path: here, message: "HDF5 cannot open it (a dangling or external link?)") }
      defer { H5Oclose(object) }
      switch H5Iget_type(object) {
      case H5I_GROUP: children[name] = .group(try read(group: object, path: here, depth: depth + 1, limit: limit))
      case H5I_DATASET: children[name] = try dataset(object, path: here, limit: limit)
      default: throw Failure(path: here, message: "neither a group nor a dataset")
      }
    }
    return children
  }

  private static func dataset(_ set: hid_t, path: String, limit: Int) throws(Failure) -> Node {
    let space = H5Dget_space(set)
    guard space >= 0 else { throw Failure(path: path, message: "HDF5 cannot read the dataset's shape") }
    defer { H5Sclose(space) }
    let rank = H5Sget_simple_extent_ndims(space)
    guard rank >= 0, rank <= 32 else { throw Failure(path: path, message: "the dataset has \(rank) axes") }
    var dims = [hsize_t](repeating: 0, count: Int(rank))
    guard H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
      throw Failure(path: path, message: "HDF5 cannot read the dataset's shape")
    }
    var count = 1
    for dim in dims {
      let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: dim))
      guard !overflow, dim <= hsize_t(Int.max), product <= limit else {
        throw Failure(
          path: path,
          message:
            "the dataset declares shape \(dims), more values than the file's \(limit) bytes can hold (SpecBench reads at most \(maximumValues))"
        )
      }
      count = product
    }
    let shape = dims.map { Int($0) }
    // Data kept in files outside this one (external storage, virtual datasets) is refused: a
    // weights file must not read other files of this machine.
    let creation = H5Dget_create_plist(set)
    guard creation >= 0 else { throw Failure(path: path, message: "HDF5 cannot read how the dataset is stored") }
    defer { H5Pclose(creation) }
    guard H5Pget_external_count(creation) == 0, H5Pget_layout(creation) != H5D_VIRTUAL else {
      throw Failure(
        path: path, message: "the dataset's values are stored in other files; SpecBench reads only values inside the weights file")
    }
    let type = H5Dget_type(set)
    guard type >= 0 else { throw Failure(path: path, message: "HDF5 cannot read the dataset's type") }
    defer { H5Tclose(type) }
    let typeClass = H5Tget_class(type)
    func values<T>(_ zero: T, memoryType: hid_t) throws(Failure) -> [T] {
      var values = [T](repeating: zero, count: count)
      if count == 0 { return values }
      let status = values.withUnsafeMutableBytes {
        H5Dread(set, memoryType, specbench_h5s_all(), specbench_h5s_all(), specbench_h5p_default(), $0.baseAddress)
      }
      guard status >= 0 else { throw Failure(path: path, message: "HDF5 cannot read the dataset's values (a damaged file?)") }
      return values
    }
    switch typeClass {
    case H5T_FLOAT: return .floats(shape: shape, values: try values(Float(0), memoryType: specbench_h5t_native_float()))
    case H5T_INTEGER: return .integers(shape: shape, values: try values(Int64(0), memoryType: specbench_h5t_native_int64()))
    case H5T_STRING: return .other(shape: shape, type: "strings")
    default: return .other(shape: shape, type: "HDF5 type class \(typeClass.rawValue)")
    }
  }
}
