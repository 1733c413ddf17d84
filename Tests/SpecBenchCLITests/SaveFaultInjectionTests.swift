import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// The save path under injected faults: strace fails (or kills the program at) the N-th call
/// of each system call a save makes, for every N that the save reaches. Whatever happens, the
/// folder must then load as the old session or the new one, whole (the hash check of `load`
/// sees any mix), and the message must say what happened.
@Suite(
  "Saves under injected faults", .enabled(if: Strace.isAvailable, "strace is not installed (apt-get install strace): skipped"),
  .timeLimit(.minutes(10)))
struct SaveFaultInjectionTests {
  /// A folder with `p.json`, `p.safetensors` and `p.history.safetensors` at step 2, ready to be
  /// saved over at step 5.
  func oldPair() throws -> String {
    let folder = temporaryFolder("specbench-faults")
    let made = try specbench("run", "sessions/xor.json", "--steps", "2", "--save", folder + "/p")
    #expect(made.status == 0, "\(made.stderr)")
    return folder
  }

  @Test(arguments: [
    ("rename,renameat,renameat2", "error=EIO"), ("rename,renameat,renameat2", "signal=KILL"), ("link,linkat", "error=EMLINK"),
    ("link,linkat", "signal=KILL"), ("fsync", "error=EIO"), ("fsync", "signal=KILL"), ("write", "error=ENOSPC"),
    ("write", "signal=KILL"), ("unlink,unlinkat", "signal=KILL"), ("flock", "error=EINTR"),
  ])
  func everyInterruptedSaveLeavesALoadablePair(_ calls: String, _ action: String) throws {
    var injected = 0
    for n in 1...40 {
      let folder = try oldPair()
      let script = """
        strace -f -qq -o trace -e trace=\(calls) -e inject=\(calls):\(action):when=\(n) \
          "$SPECBENCH" run p.json --steps 3 --save p > out 2> err
        echo $? > status
        """
      _ = try runShell(script, in: folder)
      let trace = (try? String(contentsOfFile: folder + "/trace", encoding: .utf8)) ?? ""
      let status = try String(contentsOfFile: folder + "/status", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
      let err = (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? ""
      let label = "\(calls) \(action) at call \(n): status \(status), \(err)"
      // Whatever happened, the pair loads whole: the old session or the new one.
      let loaded: SessionBundle
      do { loaded = try SessionFile.load(folder + "/p.json") } catch {
        Issue.record("\(label): the pair does not load: \(error)")
        return
      }
      let step = loaded.spec.state?.step ?? -1
      #expect((2...5).contains(step), "\(label): step \(step)")
      if status == "0" { #expect(step == 5, "\(label)") }
      // The metrics file is the one saved with that state: its last point is the state's step.
      #expect(loaded.spec.history.trainLoss.last?.step == step, "\(label): history of another save")
      if err.contains("cannot write") { #expect(step == 2, "\(label): a failed save replaced nothing") }
      // strace marks an injected error in its trace; an injected kill ends the program (128 + 9).
      let hit = trace.contains("INJECTED") || status == "137"
      // The next save makes the folder clean again: no kept copies or temporary files stay.
      let again = try runProcess(specbenchExecutable, ["run", "p.json", "--steps", "1", "--save", "p"], currentDirectory: folder)
      #expect(again.status == 0, "\(label): \(again.stderr)")
      let hidden = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }
      #expect(hidden.isEmpty, "\(label): left \(hidden)")
      guard hit else { break }
      injected += 1
    }
    // The save makes three renames and two links (spec, state, metrics), three file fsyncs and
    // three file writes.
    let least = calls.hasPrefix("rename") || calls == "fsync" || calls == "write" ? 3 : calls.hasPrefix("link") ? 2 : 1
    #expect(injected >= least, "\(calls): \(injected) calls reached")
  }
}

/// strace, for fault injection.
enum Strace {
  static var isAvailable: Bool { which("strace") != nil || ProcessInfo.processInfo.environment["SPECBENCH_REQUIRE_STRACE"] == "1" }
}
