import SpecKit

/// Every command with its usage, a one-line summary and an example: the one table that the
/// parser's errors, `help` and tab completion all read.
public struct CommandInfo: Sendable {
  public var name: String
  public var usage: String
  public var summary: String
  public var example: String
}

public enum CommandTable {
  public static let all: [CommandInfo] = [
    .init(
      name: "new", usage: "new NAME [--input D1,D2,...]", summary: "start a new session (a spirals MLP skeleton without layers)",
      example: "new spirals --input 2"),
    .init(
      name: "data", usage: "data TYPE [key=value ...]",
      summary: "choose the data: spirals, moons, circles, xor, blobs, sine, csv, idx, npy, npz, builtin (iris, digits)",
      example: "data spirals samples=600 classes=3 noise=0.15 seed=7"),
    .init(
      name: "add", usage: "add TYPE [ARGS] [key=value ...]",
      summary:
        "append a layer: dense UNITS [ACTIVATION], activation FUNCTION, dropout RATE, flatten, layer_norm, batch_norm, conv2d FILTERS KERNEL [ACTIVATION], max_pool2d KERNEL, avg_pool2d KERNEL, global_avg_pool, reshape SHAPE",
      example: "add dense 64 relu"),
    .init(
      name: "insert", usage: "insert INDEX TYPE [ARGS] [key=value ...]", summary: "insert a layer before position INDEX (0 is the first)",
      example: "insert 1 dropout 0.2"),
    .init(name: "remove", usage: "remove NAME|INDEX", summary: "remove a layer", example: "remove dense2"),
    .init(
      name: "set", usage: "set NAME|INDEX key=value ... | set input SIZES", summary: "change fields of a layer, or the model's input shape",
      example: "set dense1 units=32 activation=tanh"),
    .init(
      name: "loss", usage: "loss TYPE [key=value ...]",
      summary: "choose the loss: mse, softmax_cross_entropy, sigmoid_binary_cross_entropy, huber", example: "loss softmax_cross_entropy"),
    .init(
      name: "optimizer", usage: "optimizer [TYPE] [key=value ...]",
      summary: "choose the optimizer (sgd, adam, adamw, rmsprop, adagrad, lbfgs) or change its fields; works while training",
      example: "optimizer adam lr=0.003"),
    .init(
      name: "schedule", usage: "schedule TYPE [key=value ...]",
      summary: "the learning-rate schedule: constant, step, exponential, cosine, warmup_cosine", example: "schedule cosine t_max=2000"),
    .init(
      name: "stop", usage: "stop | stop RULE [VALUE] [key=value ...], RULE ...",
      summary: "stop training; with rules, set when training stops", example: "stop max_steps 2000, target_loss 0.02"),
    .init(name: "batch", usage: "batch SIZE", summary: "samples per step", example: "batch 64"),
    .init(name: "seed", usage: "seed N", summary: "the seed of initializers, shuffling and dropout", example: "seed 7"),
    .init(
      name: "train", usage: "train [STEPS] [--wait]",
      summary: "train in the background (STEPS more steps, or until a stop rule); --wait blocks until done", example: "train 2000"),
    .init(name: "pause", usage: "pause", summary: "pause training at the next step boundary", example: "pause"),
    .init(name: "resume", usage: "resume", summary: "resume paused training", example: "resume"),
    .init(name: "status", usage: "status", summary: "what training is doing: step, loss, speed, ETA", example: "status"),
    .init(
      name: "predict", usage: "predict VALUES [VALUES ...]",
      summary: "the model's answer for samples typed as raw rows (comma-separated), the data's preprocessing applied",
      example: "predict 0.5,-1.2"),
    .init(
      name: "evaluate", usage: "evaluate [train|validation]",
      summary: "the model on a split: loss and accuracy, a confusion matrix and per-class precision/recall (or MAE, RMSE, R²)",
      example: "evaluate validation"),
    .init(
      name: "posterior",
      usage:
        "posterior [off] [subset=last_layer|all] [hessian=full|diag|kron] [prior=NUMBER|tune] [noise=NUMBER] [predictive=probit|mc] [samples=N]",
      summary:
        "fit a Laplace posterior around the trained weights (the prior tuned by the marginal likelihood) and show its calibration; off removes it",
      example: "posterior subset=last_layer hessian=full"),
    .init(
      name: "calibration", usage: "calibration [train|validation]",
      summary:
        "accuracy, NLL, ECE and Brier (or NLL and predictive deviations) of the point network and the posterior or variational predictive, with a reliability diagram",
      example: "calibration validation"),
    .init(
      name: "variational",
      usage:
        "variational LAYER[,LAYER...] [prior=gaussian sigma=S | prior=scale_mixture pi=P sigma1=S1 sigma2=S2] [kl_weight=W] [rho_init=R] [train_samples=N] [predict_samples=N] | variational off",
      summary: "Bayes by Backprop: make dense layers' weights Gaussians (the trained weights become the means); off keeps the means",
      example: "variational dense2 prior=gaussian sigma=1"),
    .init(
      name: "show", usage: "show [model|optimizer|data|training|spec]", summary: "an overview of the session, or one part",
      example: "show model"),
    .init(
      name: "plot", usage: "plot loss|accuracy|mae|r2|lr [--log] [--smooth S]",
      summary: "chart the loss, accuracy, MAE or R² (batches and validation), or the learning rate used and planned",
      example: "plot accuracy --smooth 0.6"),
    .init(name: "hist", usage: "hist TENSOR", summary: "histogram of a tensor's values, e.g. dense1.weight", example: "hist dense1.weight"),
    .init(
      name: "filters", usage: "filters LAYER [CHANNEL]",
      summary: "a conv2d layer's first filters as small grey images (for one input channel, 0 unless given)", example: "filters conv2d1"),
    .init(
      name: "backend", usage: "backend NAME [KEY=VALUE...]",
      summary: "train on another backend (jax takes devices=N processes=P); works while training, the state carried across",
      example: "backend jax devices=2"),
    .init(name: "backends", usage: "backends", summary: "list the backends and what they support", example: "backends"),
    .init(
      name: "save", usage: "save [PATH]", summary: "save the session (PATH.json, PATH.safetensors, PATH.history.safetensors)",
      example: "save sessions/mine"),
    .init(
      name: "export", usage: "export onnx|safetensors|pytorch|keras PATH [--softmax]",
      summary: "write the session for other engines: ONNX (inference), PyTorch's state_dict, a PyTorch training script, or a Keras 3 file",
      example: "export onnx out/spirals.onnx"),
    .init(name: "load", usage: "load PATH", summary: "load a session file", example: "load sessions/spirals.json"),
    .init(name: "undo", usage: "undo", summary: "undo the last change to the session", example: "undo"),
    .init(name: "redo", usage: "redo", summary: "redo what undo undid", example: "redo"),
    .init(name: "history", usage: "history", summary: "the commands that built this session", example: "history"),
    .init(
      name: "fork", usage: "fork NAME [--from-step STEP]",
      summary: "copy the current run (spec and state) into a new run and switch to it; --from-step replays it to an earlier step",
      example: "fork wider"),
    .init(
      name: "runs", usage: "runs", summary: "the workbench's runs: backend, status, step, losses, accuracy, steps/s",
      example: "runs"),
    .init(name: "switch", usage: "switch NAME", summary: "make another run the current one", example: "switch wider"),
    .init(
      name: "drop", usage: "drop NAME [--force]", summary: "remove a run (asks first when it has unsaved work)", example: "drop wider"),
    .init(
      name: "sweep", usage: "sweep FIELD=V1,V2,... [FIELD=...] [--force]",
      summary: "one new run for each combination of values, from the seeded initial weights, all trained at once",
      example: "sweep optimizer.lr=0.001,0.003,0.01 layers[1].units=32,64"),
    .init(
      name: "compare", usage: "compare [RUN ...] [--by step|time]",
      summary: "overlay the runs' loss curves, with their final metrics and the spec fields in which they differ",
      example: "compare --by time"),
    .init(
      name: "dashboard", usage: "dashboard",
      summary: "open the full-screen dashboard: live loss, histograms, model, optimizer; q comes back here, training keeps running",
      example: "dashboard"),
    .init(name: "help", usage: "help [COMMAND]", summary: "list the commands, or explain one", example: "help optimizer"),
    .init(name: "quit", usage: "quit", summary: "leave SpecBench (asks first when there are unsaved changes)", example: "quit"),
  ]

  public static var names: [String] { all.map(\.name) }

  public static func info(_ name: String) -> CommandInfo? { all.first { $0.name == name } }

  /// `help` text: every command, or one in detail.
  public static func help(_ topic: String?) throws(CommandError) -> String {
    guard let topic else {
      let width = all.map(\.name.count).max()!
      return
        (["Commands (help COMMAND for more):"]
        + all.map { "  " + $0.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.summary })
        .joined(separator: "\n")
    }
    guard let info = info(topic) else { throw CommandError("no command \"\(topic)\"" + hint(topic)) }
    return "\(info.usage)\n  \(info.summary)\n  example: \(info.example)"
  }

  /// ` — did you mean "train"?` or nothing.
  static func hint(_ word: String) -> String {
    Suggestion.nearest(to: word, in: names + ["exit"]).map { " — did you mean \"\($0)\"?" } ?? "; type help for the list"
  }
}
