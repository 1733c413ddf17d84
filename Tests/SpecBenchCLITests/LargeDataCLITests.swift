import Foundation
import SpecBenchTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Data larger than memory trains: `.npy` inputs are mapped, not held, so `specbench run` trains
/// on an array larger than the memory budget it is given, and inside a memory cgroup smaller than
/// the array, where the kernel must drop the file's pages again as training reads on.
@Suite("Data larger than memory", .serialized)
struct LargeDataCLITests {
  /// A folder with `x.npy` (float32 `[rows, width]`, seeded values), `y.npy` (int64 labels 0–3)
  /// and `s.json`, a session of a small MLP on them, batches of 64 from a shuffled order.
  static func session(rows: Int, width: Int) throws -> String {
    let folder = temporaryFolder("large-data")
    func npy(_ descr: String, _ shape: [Int]) -> Data {
      let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
      var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
      while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
      header += "\n"
      let length = header.utf8.count
      return Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8))
    }
    // Written a block of rows at a time: the test itself never holds the array.
    FileManager.default.createFile(atPath: "\(folder)/x.npy", contents: npy("<f4", [rows, width]))
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(folder)/x.npy"))
    try handle.seekToEnd()
    var state: UInt32 = 12345
    var block = [Float](repeating: 0, count: 1024 * width)
    for start in stride(from: 0, to: rows, by: 1024) {
      let n = min(1024, rows - start)
      for i in 0..<n * width {
        state = state &* 1_664_525 &+ 1_013_904_223
        block[i] = Float(state >> 8) / Float(1 << 24) - 0.5 + (i % width == 0 ? Float((start + i / width) % 4) : 0)
      }
      try handle.write(contentsOf: block.prefix(n * width).withUnsafeBytes { Data($0) })
    }
    try handle.synchronize()
    try handle.close()
    var labels = npy("<i8", [rows])
    for r in 0..<rows { withUnsafeBytes(of: Int64(r % 4).littleEndian) { labels.append(contentsOf: $0) } }
    try labels.write(to: URL(fileURLWithPath: "\(folder)/y.npy"))
    let spec = """
      {"format": "specbench/session", "version": 6, "name": "large", "backend": "fast",
       "model": {"input": [\(width)], "layers": [
         {"type": "dense", "units": 32, "activation": "relu"},
         {"type": "dense", "units": 4}]},
       "loss": {"type": "softmax_cross_entropy"},
       "optimizer": {"type": "adam", "lr": 0.001},
       "data": {"type": "npy", "inputs": "x.npy", "targets": "y.npy", "validation_fraction": 0.01},
       "training": {"batch_size": 64, "seed": 1, "stop": [{"type": "max_steps", "steps": 1000000}]}}
      """
    try spec.write(toFile: "\(folder)/s.json", atomically: true, encoding: .utf8)
    return folder
  }

  /// The `done` event of `run --json` output.
  static func done(_ output: String) -> [String: Any]? {
    output.split(separator: "\n").compactMap { line in
      (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }.first { $0["event"] as? String == "done" }
  }

  @Test func anArrayLargerThanTheMemoryBudgetTrains() throws {
    // 48 MiB of float32 inputs, with a budget of 16 MiB: held in memory, they were refused.
    let folder = try Self.session(rows: 24_576, width: 512)
    let result = try runProcess(
      specbenchExecutable, ["run", "\(folder)/s.json", "--steps", "200", "--json"], environment: ["SPECBENCH_MEMORY_LIMIT": "16M"])
    #expect(result.status == 0, "\(result.stderr)")
    let done = try #require(Self.done(result.stdout), "\(result.stdout.suffix(400))")
    #expect(done["reason"] as? String == "steps" && done["step"] as? Int == 200, "\(done)")
    // What needs the rows in memory says so, with the budget.
    let export = try runProcess(
      specbenchExecutable, ["export", "\(folder)/s.json", "--to", "pytorch", "--out", "\(folder)/t"],
      environment: ["SPECBENCH_MEMORY_LIMIT": "16M"])
    #expect(export.status != 0 && export.stderr.contains("needs the 24330 samples in memory"), "\(export.stderr)")
  }

  /// The memory controller of cgroup v1 or v2, when this process may make groups in it.
  static func memoryGroup(limit: Int) -> (path: String, usage: () -> Int?, remove: () -> Void)? {
    let name = "specbench-test-\(getpid())"
    for (root, limitFile, peakFile) in [
      ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.max_usage_in_bytes"), ("/sys/fs/cgroup", "memory.max", "memory.peak"),
    ] {
      let path = "\(root)/\(name)"
      guard FileManager.default.fileExists(atPath: "\(root)/cgroup.procs"), mkdir(path, 0o755) == 0 else { continue }
      guard (try? "\(limit)".write(toFile: "\(path)/\(limitFile)", atomically: false, encoding: .utf8)) != nil else {
        rmdir(path)
        continue
      }
      return (
        path,
        {
          (try? String(contentsOfFile: "\(path)/\(peakFile)", encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
          }
        },
        { rmdir(path) }
      )
    }
    return nil
  }

  @Test func anArrayLargerThanItsMemoryCgroupTrains() throws {
    let limit = 96 << 20
    guard let group = Self.memoryGroup(limit: limit) else {
      print("skipped: no memory cgroup can be made here (needs root and a cgroup memory controller); the budget test still runs")
      return
    }
    defer { group.remove() }
    // 256 MiB of inputs, 2.7 times the group's memory; their pages dropped from the cache first,
    // so the run reads them in itself, charged to its group.
    let folder = try Self.session(rows: 65_536, width: 1024)
    let fd = open("\(folder)/x.npy", O_RDONLY)
    #expect(fd >= 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
    close(fd)
    let command = "echo $$ > \(group.path)/cgroup.procs && exec \"$0\" run \"$1\" --steps 300 --json"
    let result = try runProcess("/bin/sh", ["-c", command, specbenchExecutable, "\(folder)/s.json"])
    #expect(result.status == 0, "exit \(result.status): \(result.stderr.suffix(600))")
    let done = try #require(Self.done(result.stdout), "\(result.stdout.suffix(400))")
    #expect(done["reason"] as? String == "steps" && done["step"] as? Int == 300, "\(done)")
    let peak = try #require(group.usage())
    #expect(peak <= limit, "the group's peak was \(peak) bytes")
    print("the run's memory group peaked at \(peak >> 20) MiB of its \(limit >> 20) MiB, for 256 MiB of inputs")
  }
}
