import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// The image layers in real PyTorch: a session with every option of conv2d, the pools,
/// batch_norm on images and reshape, exported as its training script (`nn.Conv2d`,
/// `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.AdaptiveAvgPool2d`, `nn.Unflatten` with its `state_dict`
/// names), continues training in torch as it does in SpecBench.
@Suite(
  "Image layers against real PyTorch",
  .enabled(if: TorchPeer.isAvailable, "torch is not installed (SPECBENCH_WITH_TORCH=1 scripts/setup.sh installs it): skipped"))
struct TorchImageTests {
  @Test func theExportedCNNTrainsInTorchAsInSpecBench() throws {
    let folder = temporaryFolder("torch-cnn")
    let session = """
      {"format": "specbench/session", "version": 6, "name": "cnn",
       "model": {"input": [1, 8, 8], "layers": [
         {"type": "conv2d", "filters": 6, "kernel": 3, "padding": "same", "activation": "relu"},
         {"type": "batch_norm"},
         {"type": "max_pool2d", "kernel": 3, "stride": 2, "padding": 1},
         {"type": "conv2d", "filters": 8, "kernel": [2, 3], "stride": [1, 2], "dilation": [2, 1], "padding": 1, "groups": 2,
          "activation": "tanh"},
         {"type": "avg_pool2d", "kernel": 2, "stride": 1, "padding": 1},
         {"type": "reshape", "shape": [40, 3]},
         {"type": "reshape", "shape": [8, 5, -1]},
         {"type": "global_avg_pool"},
         {"type": "dense", "units": 10}]},
       "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
       "data": {"type": "builtin", "name": "digits", "validation_fraction": 0.9},
       "training": {"batch_size": 180, "shuffle": false, "stop": [{"type": "max_steps", "steps": 5}]}, "backend": "fast"}
      """
    try session.write(toFile: folder + "/cnn.json", atomically: true, encoding: .utf8)
    let warm = try specbench("run", folder + "/cnn.json", "--save", folder + "/warm")
    #expect(warm.status == 0, "\(warm.stderr)")
    let exported = try specbench("export", folder + "/warm.json", "--to", "pytorch", "--out", folder + "/pt")
    #expect(exported.status == 0, "\(exported.stderr)")
    let script = try String(contentsOfFile: folder + "/pt.py", encoding: .utf8)
    for module in [
      "nn.Conv2d(1, 6, kernel_size=(3, 3)", "padding='same'", "groups=2", "nn.MaxPool2d(", "nn.AvgPool2d(", "nn.AdaptiveAvgPool2d(1)",
      "nn.Unflatten(1, (8, 5, 3,))", "nn.BatchNorm2d(6",
    ] {
      #expect(script.contains(module), "\(module) is not in the script")
    }
    let torch = try TorchPeer.run(
      "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')", [folder + "/pt.py", "--steps", "20"])
    #expect(torch.status == 0, "\(torch.stderr)")
    let theirs = torch.stdout.split(separator: "\n").last { $0.hasPrefix("step 25 ") }.map(String.init) ?? ""
    let theirLoss = Double(theirs.components(separatedBy: "loss ").last?.split(separator: " ").first ?? "") ?? .nan
    let ours = try events(try specbench("run", folder + "/warm.json", "--steps", "20", "--json").stdout).filter {
      $0["event"]?.stringValue == "step"
    }
    let ourLoss = try #require(ours.last?["loss"]?.numberValue?.double)
    #expect(ours.last?["step"]?.numberValue?.int == 25)
    #expect(abs(ourLoss - theirLoss) <= 1e-4 * max(ourLoss, 1e-3), "torch printed \(theirs); SpecBench's loss at step 25: \(ourLoss)")
  }
}
