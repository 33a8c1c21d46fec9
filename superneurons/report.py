"""Memory reports as pictures (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from superneurons.planning import MemoryPlan

__all__ = ["plot_plan"]


def plot_plan(plan: MemoryPlan, path: Path) -> Path:
    """Writes a two-panel figure: bytes in use and live tensors per step, forward steps
    and backward steps told apart, with the peak, layer bound and budget as lines.

    Example:
        >>> import tempfile, pathlib, superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "mem.png"
        >>> sn.plan(g, 16).plot(out).exists()
        True
    """
    # A bare Figure with the Agg canvas: no pyplot, so the user's backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    raw = plan._raw["train_steps"]
    mib = np.asarray(raw["bytes_in_use"], dtype=np.float64) / 2**20
    live = np.asarray(raw["live_tensors"])
    kind = np.asarray(raw["kind"])  # StepKind: 1 forward, 2 backward, 3 recompute
    x = np.arange(len(mib))
    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for mask, label, color in (
        (kind == 1, "forward", "tab:blue"),
        (kind == 2, "backward", "tab:orange"),
        (kind == 3, "recompute", "tab:green"),
    ):
        top.plot(x[mask], mib[mask], ".", ms=2, color=color, label=label)
        bottom.plot(x[mask], live[mask], ".", ms=2, color=color, label=label)
    top.axhline(plan.layer_bound_bytes / 2**20, color="gray", ls="--", lw=1, label="layer bound")
    top.axhline(plan.baseline_bytes / 2**20, color="red", ls=":", lw=1, label="baseline (none)")
    if plan.budget_bytes:
        top.axhline(plan.budget_bytes / 2**20, color="black", lw=1, label="budget")
    top.set_ylabel("bytes in use (MiB)")
    bottom.set_ylabel("live tensors")
    bottom.set_xlabel("step")
    top.set_title(
        f"policy {plan.policy}, batch {plan.batch_size}: peak {plan.peak_bytes / 2**20:.1f} MiB"
    )
    top.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
