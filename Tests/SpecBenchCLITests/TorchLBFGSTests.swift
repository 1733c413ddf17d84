import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@Suite(
  "L-BFGS against real PyTorch", .serialized,
  .enabled(if: TorchPeer.isAvailable, "torch is not installed (SPECBENCH_WITH_TORCH=1 scripts/setup.sh installs it): skipped"))
struct TorchLBFGSTests {
  /// A 1-32-32-1 tanh network on sin(x), full batch, 100 Adam steps, then `lbfgs SETTINGS` for
  /// two steps (so the state has a history): saved as FOLDER/l2.
  func warmSession(_ settings: String) throws -> (folder: String, iterations: Int) {
    let folder = temporaryFolder("torch-lbfgs")
    let session = """
      {"format": "specbench/session", "version": 4, "name": "fit",
       "model": {"input": [1], "layers": [{"type": "dense", "units": 32, "activation": "tanh"},
         {"type": "dense", "units": 32, "activation": "tanh"}, {"type": "dense", "units": 1}]},
       "loss": {"type": "mse"}, "optimizer": {"type": "adam", "lr": 0.01},
       "data": {"type": "sine", "samples": 128, "noise": 0, "seed": 3},
       "training": {"batch_size": 128, "shuffle": false, "stop": [{"type": "max_steps", "steps": 100}]}}
      """
    try session.write(toFile: folder + "/fit.json", atomically: true, encoding: .utf8)
    let warm = try specbench("run", folder + "/fit.json", "--save", folder + "/warm")
    #expect(warm.status == 0, "\(warm.stderr)")
    let swapped = try specbench("run", folder + "/warm.json", "--optimizer", settings, "--steps", "2", "--save", folder + "/l2", "--json")
    #expect(swapped.status == 0, "\(swapped.stderr)")
    #expect(swapped.stderr.contains("adam -> lbfgs: fresh optimizer state"), "\(swapped.stderr)")
    let iterations = try events(swapped.stdout).compactMap { $0["iterations"]?.numberValue?.int }
    #expect(iterations.count == 2)
    return (folder, iterations.reduce(0, +))
  }

  @Test(
    "the exported script restores the state and continues with torch.optim.LBFGS as SpecBench does, step by step",
    arguments: ["lbfgs max_iter=5", "lbfgs max_iter=5 line_search=strong_wolfe"])
  func continuesLikeTorch(settings: String) throws {
    let (folder, saved) = try warmSession(settings)
    let exported = try specbench("export", folder + "/l2.json", "--to", "pytorch", "--out", folder + "/pt")
    #expect(exported.status == 0, "\(exported.stderr)")
    // The peer Benchmarks/lbfgs-torch.sh times, here printing each step (its --each).
    let driver = try String(contentsOfFile: repositoryPath("Benchmarks/lbfgs_torch_peer.py"), encoding: .utf8)
    let torch = try TorchPeer.run(driver, [folder + "/pt.py", "4", "--each"])
    #expect(torch.status == 0, "\(torch.stderr)")
    let lines = torch.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    try #require(lines.count == 5)
    let ours = try events(try specbench("run", folder + "/l2.json", "--steps", "4", "--json").stdout).filter {
      $0["event"]?.stringValue == "step"
    }
    try #require(ours.count == 4)
    // The restored counts are the saved ones.
    var (iterations, evaluations) = (lines[0]["n_iter"] as! Int, lines[0]["func_evals"] as! Int)
    #expect(iterations == saved && saved > 2)
    for (k, (mine, theirs)) in zip(ours, lines.dropFirst()).enumerated() {
      iterations += mine["iterations"]!.numberValue!.int!
      evaluations += mine["func_evals"]!.numberValue!.int!
      #expect(iterations == theirs["n_iter"] as! Int, "step \(k + 1): n_iter")
      #expect(evaluations == theirs["func_evals"] as! Int, "step \(k + 1): func_evals")
      let (loss, theirLoss) = (mine["loss"]!.numberValue!.double, theirs["loss"] as! Double)
      #expect(abs(loss - theirLoss) <= 1e-3 * abs(theirLoss), "step \(k + 1): loss \(loss) vs torch's \(theirLoss)")
      let (t, theirT) = (mine["t"]!.numberValue!.double, theirs["t"] as! Double)
      #expect(abs(t - theirT) <= 1e-3 * max(1, abs(theirT)), "step \(k + 1): t \(t) vs torch's \(theirT)")
    }
    // The script itself, as a user runs it, ends where SpecBench does.
    let script = try TorchPeer.run(
      "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
      [
        folder + "/pt.py", "--steps", "4",
      ])
    #expect(script.status == 0, "\(script.stderr)")
    let last = script.stdout.split(separator: "\n").last { $0.hasPrefix("step ") }.map(String.init) ?? ""
    let printed = Double(last.components(separatedBy: "loss ").last?.split(separator: " ").first ?? "") ?? .nan
    let ourLast = ours.last!["loss"]!.numberValue!.double
    #expect(abs(printed - ourLast) <= 1e-3 * ourLast, "the script printed \(last); SpecBench's last loss \(ourLast)")
  }
}
