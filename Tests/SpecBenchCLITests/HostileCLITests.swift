import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The real program against hostile streams, signals, paths and files. Every file is made here;
/// each test checks the exit status, the message, and what is (and is not) on disk afterwards.
@Suite("Hostile command lines")
struct HostileCLITests {
  /// The xor example copied into a fresh folder, saved with state at step 0: `FOLDER/x.json`.
  func session() throws -> String {
    let folder = temporaryFolder("specbench-hostile")
    let result = try specbench("init", "sessions/xor.json", "--save", folder + "/x")
    #expect(result.status == 0, "\(result.stderr)")
    return folder
  }

  /// The bytes a terminal would act on: ESC and the 8-bit CSI.
  static func hasEscapes(_ text: String) -> Bool { text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B } }

  // MARK: streams and signals: a run's result is never lost

  @Test(arguments: [
    ("closed", "\"$SPECBENCH\" run x.json --steps 2000000 --json --save saved >&-; echo $? > status"),
    ("full", "\"$SPECBENCH\" run x.json --steps 2000000 --json --save saved > /dev/full; echo $? > status"),
    ("head -1", "{ \"$SPECBENCH\" run x.json --steps 2000000 --json --save saved; echo $? > status; } | head -1 > first"),
  ])
  func aRunWhoseOutputFailsStopsAndSaves(_ label: String, _ script: String) throws {
    let folder = try session()
    let result = try runShell(script, in: folder)
    let status = try String(contentsOfFile: folder + "/status", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(status == "1", "\(label): \(result.stderr)")
    #expect(result.stderr.contains("stopped at step") && result.stderr.contains("because"), "\(label): \(result.stderr)")
    let saved = try SessionFile.load(folder + "/saved.json")
    let step = try #require(saved.spec.state?.step)
    #expect(step >= 0 && step < 2_000_000, "\(label)")
  }

  @Test(arguments: ["TERM", "HUP", "INT"])
  func aSignalStopsTheRunAtAStepBoundaryAndSaves(_ signal: String) throws {
    let folder = try session()
    let script = """
      "$SPECBENCH" run x.json --steps 100000000 --json --save saved > out 2> err &
      pid=$!
      for i in $(seq 1 600); do [ -s out ] && break; sleep 0.05; done
      kill -\(signal) $pid
      wait $pid
      echo $? > status
      """
    _ = try runShell(script, in: folder)
    let status = try String(contentsOfFile: folder + "/status", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(status == "0", "SIG\(signal) is a stop like Ctrl-C")
    let err = try String(contentsOfFile: folder + "/err", encoding: .utf8)
    if signal != "INT" { #expect(err.contains("SIG\(signal): stopped at step"), "\(err)") }
    let saved = try SessionFile.load(folder + "/saved.json")
    let step = try #require(saved.spec.state?.step)
    #expect(step > 0 && step < 100_000_000)
    // The last JSON line is the done event of that step.
    let out = try String(contentsOfFile: folder + "/out", encoding: .utf8)
    #expect(out.split(separator: "\n").last?.contains("\"event\": \"done\", \"step\": \(step),") == true, "\(out.suffix(300))")
  }

  /// A save that cannot write says so and keeps the old pair. The write fails through a
  /// file-size limit (`ulimit -f`), which binds root too — so this runs under CI, as root, where
  /// a read-only folder would not stop anything.
  @Test func aSaveThatCannotWriteKeepsTheOldPair() throws {
    let folder = try session()
    let before = try Data(contentsOf: URL(fileURLWithPath: folder + "/x.safetensors"))
    let result = try runShell("trap '' XFSZ; ulimit -f 1; \"$SPECBENCH\" run x.json --steps 3 --save x", in: folder)
    #expect(result.status == 1)
    #expect(result.stderr.contains("cannot write") && result.stderr.contains("File too large"), "\(result.stderr)")
    #expect(result.stderr.contains("nothing was replaced"), "\(result.stderr)")
    #expect(try SessionFile.load(folder + "/x.json").spec.state?.step == 0)
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/x.safetensors")) == before)
    let hidden = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }
    #expect(hidden.isEmpty, "no temporary file left: \(hidden)")
  }

  @Test(arguments: [">&- 2>&-", "2>/dev/full", ">/dev/full 2>&-"])
  func aFailingCommandWithClosedOrFullStreamsExitsWithStatusOne(_ redirections: String) throws {
    let folder = temporaryFolder("specbench-hostile")
    try "{ not json".write(toFile: folder + "/bad.json", atomically: true, encoding: .utf8)
    let result = try runShell("\"$SPECBENCH\" validate bad.json \(redirections); echo $? > status", in: folder)
    let status = try String(contentsOfFile: folder + "/status", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(status == "1", "no crash (\(status)): \(result.stderr)")
  }

  @Test func scriptModeWithAClosedStdoutExitsWithStatusOneAndStillRuns() throws {
    let folder = try session()
    let script = "printf 'load x.json\\nbatch 7\\nsave y\\n' | \"$SPECBENCH\" >&-; echo $? > status"
    _ = try runShell(script, in: folder)
    let status = try String(contentsOfFile: folder + "/status", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(status == "1")
    #expect(try SessionFile.load(folder + "/y.json").spec.training.batchSize == 7, "the script's save still happened")
  }

  @Test(arguments: [
    ("-5", "--steps -5: the number of steps must be 0 or more"),
    ("9223372036854775807", "at most 9007199254740992 steps"),
    ("lots", "--steps lots: expected a whole number of steps"),
  ])
  func badStepCountsSayWhatIsWrong(_ value: String, _ message: String) throws {
    let result = try specbench("run", "sessions/xor.json", "--steps", value)
    #expect(result.status != 0)
    #expect(result.stderr.contains(message), "\(result.stderr)")
    #expect(!result.stderr.contains("Missing value"))
  }

  // MARK: special files and paths

  // A FIFO or /dev/zero read as a file would hang or fill memory: the time limit fails that.
  @Test(.timeLimit(.minutes(1)), arguments: ["validate", "inspect", "run", "export", "import", "dashboard"])
  func specialFilesGivenAsInputAreRefusedAtOnce(_ verb: String) throws {
    let folder = temporaryFolder("specbench-hostile")
    #expect(mkfifo(folder + "/pipe.json", 0o600) == 0)
    try FileManager.default.createDirectory(atPath: folder + "/dir.json", withIntermediateDirectories: true)
    for input in [folder + "/pipe.json", folder + "/dir.json", "/dev/zero"] {
      var arguments = [verb, input]
      switch verb {
      case "export": arguments += ["--to", "onnx", "--out", folder + "/o"]
      case "import": arguments += ["--out", folder + "/o"]
      case "dashboard": arguments += ["--snapshot", folder + "/frame.txt"]
      default: break
      }
      let result = try runProcess(specbenchExecutable, arguments)
      #expect(result.status == 1, "\(verb) \(input): \(result.stderr)")
      #expect(result.stderr.contains("not a regular file"), "\(verb) \(input): \(result.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: folder + "/o.json") && !FileManager.default.fileExists(atPath: folder + "/o.onnx"))
  }

  @Test func snapshotsWriteThroughDevicesAndLinksAndNeverReplaceThem() throws {
    let folder = try session()
    // `-` and /dev/stdout print the frame.
    for target in ["-", "/dev/stdout"] {
      let result = try runShell("\"$SPECBENCH\" dashboard x.json --snapshot \(target) --size 80x24", in: folder)
      #expect(result.status == 0, "\(result.stderr)")
      #expect(result.stdout.contains("xor │ reference"), "\(target): \(result.stdout.prefix(200))")
    }
    // A device is written through, never replaced (as root, a rename over /dev/null would).
    let null = try specbench("dashboard", folder + "/x.json", "--snapshot", "/dev/null")
    #expect(null.status == 0, "\(null.stderr)")
    #expect(FileAccess.kind(of: "/dev/null") == .characterDevice)
    // A symbolic link stays a link; its target gets the frame.
    #expect(FileManager.default.createFile(atPath: folder + "/target.txt", contents: nil))
    #expect(symlink(folder + "/target.txt", folder + "/link.txt") == 0)
    #expect(try specbench("dashboard", folder + "/x.json", "--snapshot", folder + "/link.txt").status == 0)
    #expect(FileAccess.kind(of: folder + "/link.txt") == .symbolicLink)
    #expect(try String(contentsOfFile: folder + "/target.txt", encoding: .utf8).contains("xor │ reference"))
    // A FIFO nobody reads is refused at once, not waited on.
    #expect(mkfifo(folder + "/fifo", 0o600) == 0)
    let fifo = try specbench("dashboard", folder + "/x.json", "--snapshot", folder + "/fifo")
    #expect(fifo.status == 1 && fifo.stderr.contains("no process is reading"), "\(fifo.stderr)")
    #expect(FileAccess.kind(of: folder + "/fifo") == .fifo)
  }

  @Test(arguments: ["", ".", "/", "sub/", ".."])
  func degenerateOutputPathsAreRefused(_ target: String) throws {
    let folder = try session()
    try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
    let before = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    for arguments in [
      ["dashboard", "x.json", "--snapshot", target], ["run", "x.json", "--steps", "1", "--save", target],
      ["export", "x.json", "--to", "onnx", "--out", target], ["init", "x.json", "--save", target],
    ] {
      let result = try runProcess(specbenchExecutable, arguments, currentDirectory: folder)
      #expect(result.status != 0, "\(arguments) was accepted")
      #expect(result.stderr.contains("cannot write") || result.stderr.contains("cannot export"), "\(arguments): \(result.stderr)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == before)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/sub").isEmpty)
    #expect(!FileManager.default.fileExists(atPath: "/.json") && !FileManager.default.fileExists(atPath: "/.onnx"))
  }

  @Test func anExportNeverOverwritesItsOwnInput() throws {
    let folder = try session()
    // Trained, so that the session has a metrics file too.
    let trained = try runProcess(specbenchExecutable, ["run", "x.json", "--steps", "3", "--save", "x"], currentDirectory: folder)
    #expect(trained.status == 0, "\(trained.stderr)")
    let tensors = try Data(contentsOf: URL(fileURLWithPath: folder + "/x.safetensors"))
    let spec = try Data(contentsOf: URL(fileURLWithPath: folder + "/x.json"))
    let metrics = try Data(contentsOf: URL(fileURLWithPath: folder + "/x.history.safetensors"))
    for (format, out) in [
      ("safetensors", "x"), ("safetensors", "x.json"), ("onnx", "x.json"), ("pytorch", "x"), ("safetensors", "x.history.safetensors"),
      ("pytorch", "x.history"),
    ] {
      let result = try runProcess(specbenchExecutable, ["export", "x.json", "--to", format, "--out", out], currentDirectory: folder)
      #expect(result.status == 1, "\(format) --out \(out)")
      #expect(result.stderr.contains("which the session is read from"), "\(result.stderr)")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/x.safetensors")) == tensors)
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/x.json")) == spec)
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/x.history.safetensors")) == metrics)
  }

  @Test(arguments: ["onnx", "safetensors", "pytorch"])
  func anExportToADeviceWritesNothingInDev(_ format: String) throws {
    let folder = try session()
    let before = try FileManager.default.contentsOfDirectory(atPath: "/dev").sorted()
    let result = try specbench("export", folder + "/x.json", "--to", format, "--out", "/dev/full")
    #expect(result.status == 1)
    #expect(result.stderr.contains("character device"), "\(result.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: "/dev").sorted() == before)
  }

  // MARK: what a session file may read, and what errors show

  @Test func aSessionFileCannotReadOutsideItsFolderNorEchoWhatItFinds() throws {
    let root = temporaryFolder("specbench-hostile")
    try FileManager.default.createDirectory(atPath: root + "/session", withIntermediateDirectories: true)
    let secret = "root:$6$saltsalt$" + String(repeating: "h", count: 86) + ":19000:0:99999:7:::,0\n1,1\n"
    try secret.write(toFile: root + "/shadow", atomically: true, encoding: .utf8)
    var text = try String(contentsOfFile: repositoryPath("sessions/xor.json"), encoding: .utf8)
    text = text.replacingOccurrences(
      of: #""data": {"#,
      with: #""data": {"type": "csv", "path": "\#(root)/shadow", "target": 1, "header": false, "task": "classification"}, "unused": {"#)
    var document = try JSONParser.parse(text)
    if case .object(var object) = document.kind {
      object.members.removeAll { $0.key == "unused" }
      document = JSONValue(.object(object))
    }
    try JSONWriter.canonical(document).write(toFile: root + "/session/s.json", atomically: true, encoding: .utf8)
    let refused = try specbench("run", root + "/session/s.json", "--steps", "1")
    #expect(refused.status == 1)
    #expect(refused.stderr.contains("data.path") && refused.stderr.contains("outside the session's folder"), "\(refused.stderr)")
    #expect(!refused.stderr.contains("hhhhhhhh"))
    // Allowed explicitly, the file is read, and its contents are not echoed beyond a short excerpt.
    let allowed = try specbench("run", root + "/session/s.json", "--steps", "1", "--allow-data", root)
    #expect(allowed.status == 1)
    #expect(allowed.stderr.contains("must be a finite number"), "\(allowed.stderr)")
    #expect(!allowed.stderr.contains("hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh") && !allowed.stderr.contains("19000"), "\(allowed.stderr)")
  }

  @Test func stringsFromFilesNeverReachTheTerminalAsEscapes() throws {
    let folder = try session()
    let evil = "x\u{1B}]0;owned\u{07}\u{1B}[2J\u{9B}31m"
    var bundle = try SessionFile.load(folder + "/x.json")
    bundle.spec.name = evil
    bundle.spec.journal = ["add dense 3 \u{1B}[31m"]
    try SessionFile.save(bundle, to: folder + "/evil")
    let outputs = [
      try specbench("inspect", folder + "/evil.json"), try specbench("validate", folder + "/evil.json"),
      try specbench("run", folder + "/evil.json", "--steps", "2"),
      try runShell("printf 'load evil.json\\nhistory\\nstatus\\nshow\\nload nope\\u001b[2J.json\\n' | \"$SPECBENCH\"", in: folder),
      try specbench("dashboard", folder + "/evil.json", "--snapshot", "-"),
    ]
    for result in outputs {
      #expect(!Self.hasEscapes(result.stdout) && !Self.hasEscapes(result.stderr), "\(result.stdout)\(result.stderr)")
    }
    #expect(outputs[0].stdout.contains("owned"), "the name is shown, its escapes visibly: \(outputs[0].stdout)")
    // A hostile --name on import is data too.
    let onnx = try specbench("export", folder + "/x.json", "--to", "onnx", "--out", folder + "/m")
    #expect(onnx.status == 0, "\(onnx.stderr)")
    let imported = try specbench("import", folder + "/m.onnx", "--out", folder + "/back", "--name", evil)
    #expect(imported.status == 0, "\(imported.stderr)")
    #expect(try SessionFile.load(folder + "/back.json").spec.name == evil, "the name is kept as data")
    #expect(!Self.hasEscapes(try specbench("inspect", folder + "/back.json").stdout))
  }

  // MARK: the workbench: a failing command never ends the session

  @Test func commandsThatNeedTooMuchMemoryFailAndTheScriptGoesOn() throws {
    let folder = temporaryFolder("specbench-hostile")
    let script =
      "printf 'add dense 1000000000\\nadd dense 9223372036854775807\\ndata spirals samples=1000000000000\\nbatch 17\\nsave after\\n' | \"$SPECBENCH\""
    let result = try runShell(script, in: folder)
    #expect(result.status == 1)
    #expect(result.stderr.contains("line 1:") && result.stderr.contains("of memory"), "\(result.stderr)")
    #expect(result.stderr.contains("line 2:") && result.stderr.contains("2^40"), "\(result.stderr)")
    #expect(result.stderr.contains("line 3:") && result.stderr.contains("data.samples"), "\(result.stderr)")
    let after = try SessionFile.load(folder + "/after.json")
    #expect(after.spec.training.batchSize == 17)
    #expect(after.spec.model.layers.count == 3, "the refused layers were not added")
  }

  @Test func duplicateLayerNamesAreRefusedBySet() throws {
    let folder = temporaryFolder("specbench-hostile")
    let result = try runShell("printf 'set dense2 name=dense1\\nsave after\\n' | \"$SPECBENCH\"", in: folder)
    #expect(result.stderr.contains("a layer named dense1 exists already"), "\(result.stderr)")
    #expect(try SessionFile.load(folder + "/after.json").spec.model.layers.map(\.name) == ["dense1", "dense2", "dense3"])
  }
}
