import ArgumentParser
import Backends
import Dashboard
import Datasets
import Foundation
import Session
import SpecKit

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The built-in benchmark: steps/s, ms/step, samples/s and GFLOP/s of a preset on each backend.",
    discussion: """
      Presets: mlp-mnist (784-256-128-10, batch 128) and spirals (2-64-64-3, batch 64), both Adam \
      on seeded random data, like ../shared/peers/numpy_mlp.py. Warm-up steps first, then the \
      median of several timed runs. Benchmarks/peers.sh runs the peers beside it.
      """
  )

  @Option(help: "mlp-mnist, spirals, cnn-digits, lenet, or all.")
  var preset = "all"

  @Option(help: "A backend name, or all.")
  var backend = "all"

  @OptionGroup var settings: BackendSettings

  @Option(help: "Steps in each timed run (default: 300 for mlp-mnist and cnn-digits, 3000 for spirals, 100 for lenet).")
  var steps: Int?

  @Option(help: "Untimed steps first.")
  var warmup = 20

  @Option(help: "Timed runs; the median is reported.")
  var repeats = 5

  @Flag(help: "One JSON object per line.")
  var json = false

  @Flag(
    help:
      "Also measure OpenBLAS's sgemm at n = 1024 on every core (the limit of the fast backend's products) and each preset's share of it; on fast, a dense preset's matrix products alone, timed in the same run."
  )
  var peak = false

  @Option(
    help: ArgumentHelp(
      "Time a dashboard frame (160×48) with 10 thousand recorded steps and with this many (e.g. 10000000), side by side, instead of the presets.",
      valueName: "steps"))
  var frame: Int?

  @Option(
    help: ArgumentHelp(
      "Time loading a CSV file (a header, the target column named by --target, classification) instead of the presets: seconds, rows, and the process's peak memory beside the arrays' size. Benchmarks/data.sh runs it beside pandas and numpy.loadtxt.",
      valueName: "file"))
  var load: String?

  @Option(help: "The target column of --load's file.")
  var target = "label"

  func validate() throws {
    if let frame, frame < 10_000 { throw ValidationError("--frame must be at least 10000 (the steps it is compared with)") }
    // The history is built in memory, about 56 bytes a step: refused before anything is allocated.
    if let frame, frame > FrameBench.longest {
      throw ValidationError(
        "--frame must be at most \(FrameBench.longest) (the history is built in memory, about 56 bytes a step)")
    }
    if preset != "all" && Benchmark.Preset.named(preset) == nil {
      throw ValidationError("unknown preset \(preset); presets: \(Benchmark.Preset.all.map(\.name).joined(separator: ", ")), all")
    }
    if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
    if backend == "all" && !settings.options.isEmpty {
      throw ValidationError("--devices, --processes, --hosts and --coordinator need --backend jax")
    }
    if repeats < 1 || warmup < 0 { throw ValidationError("--repeats must be at least 1 and --warmup at least 0") }
  }

  func run() throws {
    if let load {
      try DataLoadBench.run(load, target: target, json: json)
      return
    }
    if let frame {
      FrameBench.run(long: frame, repeats: repeats, json: json)
      return
    }
    let presets = preset == "all" ? Benchmark.Preset.all : [Benchmark.Preset.named(preset)!]
    let backends: [any Backend]
    if backend == "all" {
      // Every backend that can run here; the others are named on standard error.
      backends = BackendRegistry.builtIn.all.filter { backend in
        guard let reason = backend.unavailableReason else { return true }
        Console.error("bench: skipped \(backend.name): \(reason)")
        return false
      }
    } else {
      do { backends = [try BackendRegistry.builtIn.named(backend).configured(settings.options)] } catch {
        throw failWith(error.description)
      }
    }
    // The peak first, in the same process and run as the presets it is compared with.
    var peakRate: Double?
    if peak {
      guard let rate = BLASLibrary.sgemmPeak() else { throw failWith(BLASLibrary.problem ?? "OpenBLAS is not available") }
      peakRate = rate
      if json {
        say(JSONWriter.compact(.object(["preset": .string("sgemm-peak"), "n": .int(1024), "gflops": .double(rate)])))
      } else {
        say(String(format: "sgemm peak (OpenBLAS, n = 1024, every core): %.1f GFLOP/s", rate))
      }
    }
    if !json {
      say(
        "preset     backend    steps/s     ms/step   samples/s   GFLOP/s   \(peakRate == nil ? "" : "of peak   ")(median of \(repeats) runs)"
      )
    }
    for p in presets {
      for b in backends {
        let count = steps ?? Benchmark.Preset.defaultSteps[p.name, default: 300]
        let result: Benchmark.Result
        do { result = try Benchmark.run(p, on: b, steps: count, warmup: warmup, repeats: repeats) } catch {
          throw failWith(error.description)
        }
        // With --peak, the fast backend's products alone, timed in the same run: what the rest
        // of its step costs is the step's time less theirs.
        let products = peak && b.name == "fast" ? p.productSecondsPerStep().map { $0 * 1000 } : nil
        if json {
          say(
            JSONWriter.compact(
              .object([
                "preset": .string(p.name), "backend": .string(b.name), "steps_per_sec": .double(result.stepsPerSecond),
                "ms_per_step": .double(result.millisecondsPerStep), "samples_per_sec": .double(result.samplesPerSecond),
                "gflops": .double(result.gigaflopsPerSecond), "runs": .array(result.runs.map { .double($0) }),
                "setup_seconds": .double(result.setupSeconds), "compile_seconds": result.compileSeconds.map { .double($0) } ?? .null,
                "share_of_peak": peakRate.map { .double(result.gigaflopsPerSecond / $0) } ?? .null,
                "products_ms_per_step": products.map { .double($0) } ?? .null,
              ])))
        } else {
          say(
            p.name.padding(toLength: 11, withPad: " ", startingAt: 0) + b.name.padding(toLength: 11, withPad: " ", startingAt: 0)
              + String(
                format: "%9.1f  %10.3f  %10.0f  %8.2f   ", result.stepsPerSecond, result.millisecondsPerStep, result.samplesPerSecond,
                result.gigaflopsPerSecond)
              + (peakRate.map { String(format: "%5.1f %%   ", 100 * result.gigaflopsPerSecond / $0) } ?? "")
              + String(format: "setup %.2f s", result.setupSeconds)
              + (result.compileSeconds.map { String(format: ", compile %.2f s", $0) } ?? "")
              + (products.map { String(format: "; products alone %.3f ms a step (%.0f %%)", $0, 100 * $0 / result.millisecondsPerStep) }
                ?? ""))
        }
      }
    }
  }
}

/// What a long history costs a dashboard frame: the same frame (160×48, the spirals preset's
/// session, training) rendered with 10 thousand recorded steps and with `long`, alternating, so
/// that the machine's noise falls on both; the medians and their ratio, and the history's bytes a
/// recorded step. Each step records the training loss, the learning rate and the accuracy, and
/// every 100th a validation loss, as a classifier's session does.
enum FrameBench {
  /// The longest history `--frame` builds.
  static let longest = 100_000_000

  static func snapshot(steps: Int) -> Snapshot {
    var snapshot = Snapshot()
    (snapshot.status, snapshot.backend, snapshot.step, snapshot.lastLoss) = (.running, "fast", steps, 0.5)
    var (loss, rate, accuracy, validation) = (MetricLog(), MetricLog(), MetricLog(), MetricLog())
    var generator = SplitMix64(seed: 3, stream: "frame-bench")
    for step in 1...steps {
      let progress = Double(step) / Double(steps)
      let noise = Float(generator.nextUniform()) * 0.2
      loss.append(MetricPoint(step: step, value: Float(1.1 * exp(-4 * progress)) + noise))
      rate.append(MetricPoint(step: step, value: Float(0.01 * (1 - 0.9 * progress))))
      accuracy.append(MetricPoint(step: step, value: min(1, Float(0.3 + 0.7 * progress) + noise / 4)))
      if step % 100 == 0 { validation.append(MetricPoint(step: step, value: Float(1.2 * exp(-3.5 * progress)))) }
    }
    snapshot.logs = [.trainLoss: loss, .learningRate: rate, .trainAccuracy: accuracy, .valLoss: validation]
    return snapshot
  }

  static func run(long: Int, repeats: Int, json: Bool) {
    let spec = Benchmark.Preset.named("spirals")!.spec
    let lengths = [10_000, long]
    let inputs = lengths.map { DashboardInput(spec: spec, snapshot: snapshot(steps: $0)) }
    let bytes = inputs.map { input in input.snapshot.logs.values.reduce(0) { $0 + $1.bytes } }
    let points = inputs.map { input in input.snapshot.logs.values.reduce(0) { $0 + $1.count } }
    var times: [[Double]] = [[], []]
    let frames = 20
    for _ in 0..<max(3, repeats) {
      for (index, input) in inputs.enumerated() {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<frames { _ = DashboardView.render(input, state: DashboardState(), width: 160, height: 48) }
        times[index].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(frames))
      }
    }
    let medians = times.map { $0.sorted()[$0.count / 2] }
    if json {
      for (index, steps) in lengths.enumerated() {
        say(
          JSONWriter.compact(
            .object([
              "frame": .string("160x48"), "steps": .int(steps), "ms_per_frame": .double(medians[index]),
              "history_bytes": .int(bytes[index]), "bytes_per_step": .double(Double(bytes[index]) / Double(steps)),
              "bytes_per_point": .double(Double(bytes[index]) / Double(points[index])),
            ])))
      }
    } else {
      for (index, steps) in lengths.enumerated() {
        say(
          String(
            format: "dashboard frame 160×48, %@ steps: %.3f ms a frame; history %.1f bytes a step (%.1f a point)",
            steps.formatted(), medians[index], Double(bytes[index]) / Double(steps), Double(bytes[index]) / Double(points[index])))
      }
      say(
        String(format: "ratio %.3f (median of %d rounds of %d frames each, alternating)", medians[1] / medians[0], times[0].count, frames))
    }
  }
}

/// The time and memory of loading one CSV file, as a user's session loads it.
enum DataLoadBench {
  static func run(_ file: String, target: String, json: Bool) throws {
    let before = peakMemory()
    let source = DataSource.CSVSource(path: PathText.lastComponent(file), target: .name(target), task: .classification)
    let clock = ContinuousClock()
    let start = clock.now
    let dataset: Dataset
    do {
      dataset = try DataAccess.allowing([PathText.folderOrCurrent(file)]) { () throws(DataError) in
        try DatasetLoader.load(DataSpec(source: .csv(source)), relativeTo: PathText.folderOrCurrent(file))
      }
    } catch {
      throw failWith(error.description)
    }
    let elapsed = (clock.now - start).components
    let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
    let peak = peakMemory()
    let arrays = dataset.inputs.count * 4 + dataset.count * 8
    if json {
      print(
        JSONWriter.compact(
          .object([
            "file": .string(file), "rows": .int(dataset.count), "features": .int(dataset.inputs.shape.last ?? 0),
            "seconds": .double(seconds),
            "peak_bytes": .int(peak), "baseline_bytes": .int(before), "array_bytes": .int(arrays),
          ])))
    } else {
      print(
        String(
          format: "%d rows × %d inputs in %.3f s; peak memory %@ (%@ before loading), arrays %@ (%.2f×)", dataset.count,
          dataset.inputs.shape.last ?? 0, seconds, ByteCount.text(peak), ByteCount.text(before), ByteCount.text(arrays),
          Double(peak) / Double(max(arrays, 1))))
    }
  }

  /// The process's peak resident memory so far, in bytes.
  static func peakMemory() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
  }
}
