"""DIR/loss.png: the training and validation loss curves of a run.

In:  the training loss of every step, and the epoch records (step, mean training loss, validation
     loss when there is a validation set).
Out: `draw(path, step_losses, epochs)` writes a PNG atomically (matplotlib's Agg canvas, no pyplot,
     imported here and only here); returns False, writing nothing, when matplotlib is missing.
"""

from __future__ import annotations

import io

from ..files import write_file


def _figure():
    """A matplotlib Figure drawn by the Agg canvas (no pyplot: the caller's backend is left alone)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def draw(path, step_losses, epochs: list) -> bool:
    fig = _figure()
    if fig is None:
        return False
    ax = fig.add_subplot(1, 1, 1)
    if step_losses:
        ax.plot(range(1, len(step_losses) + 1), step_losses, color="tab:blue", alpha=0.3, linewidth=0.8,
                label="train (each step)")
    if epochs:
        xs = [e["step"] for e in epochs]
        ax.plot(xs, [e["train_loss"] for e in epochs], "o-", color="tab:blue", label="train (epoch mean)")
        valid = [(e["step"], e["valid"]["loss"]) for e in epochs if e.get("valid")]
        if valid:
            ax.plot(*zip(*valid), "s-", color="tab:orange", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (negative log-likelihood)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    write_file(path, lambda f: f.write(data), "the loss plot")
    return True
