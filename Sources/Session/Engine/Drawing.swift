import TermPlot

/// What a command asks a front end to draw — a loss or learning-rate chart with its options, a
/// histogram of a tensor's values, or a note when there is nothing to draw yet. The engine says
/// *what*; each front end renders it at its own size (the REPL at the terminal's width).
public enum Drawing: Sendable {
  /// A line chart (the losses, or the learning-rate schedule), with the height it is drawn at.
  case chart(LineChart, height: Int)
  /// The distribution of a tensor's values.
  case histogram(title: String, values: [Double], height: Int)
  /// A convolution's filters as small grey images.
  case filters(FilterImages)
  /// Nothing to draw yet, and why.
  case note(String)
  /// Runs side by side: their losses in one chart, their metrics, where their specs differ.
  case comparison(Comparison)

  /// The drawing at `width` columns and its own height.
  public func render(width: Int) -> Grid {
    switch self {
    case .chart(let chart, let height): chart.render(width: width, height: height)
    case .histogram(let title, let values, let height): Histogram.render(values, title: title, width: width, height: height)
    case .filters(let images): images.render(width: width)
    case .comparison(let comparison): comparison.render(width: width)
    case .note(let text):
      {
        var grid = Grid(width: max(1, min(width, text.count)), height: 1)
        grid.write(text, x: 0, y: 0, role: .label)
        return grid
      }()
    }
  }
}
