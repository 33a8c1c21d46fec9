"""Memory reports as pictures (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from superneurons._units import format_bytes

if TYPE_CHECKING:
    from superneurons.planning import MemoryPlan

__all__ = ["plot_plan", "plot_title", "plot_unit"]


def plot_unit(max_bytes: float) -> tuple[str, int]:
    """The axis unit that reads best for values up to ``max_bytes``: GiB from 2 GiB on.

    Example:
        >>> plot_unit(512 * 2**20), plot_unit(12 * 2**30)
        (('MiB', 1048576), ('GiB', 1073741824))
    """
    return ("GiB", 2**30) if max_bytes >= 2 * 2**30 else ("MiB", 2**20)


def plot_title(plan: MemoryPlan, name: str | None = None) -> str:
    """The plot's title: model, batch, policy, peak and whether the plan fits.

    Example:
        >>> import superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
        >>> plot_title(sn.plan(g, 16, budget="1MB"), "resnet-8")
        'resnet-8: batch 16, policy liveness: peak 1.53 MiB, does NOT fit the 1.00 MiB budget'
    """
    if not plan.fits:
        verdict = f"does NOT fit the {format_bytes(plan.budget_bytes)} budget"
    else:
        verdict = "fits its budget" if plan.budget_bytes else "no budget"
    head = f"{name}: " if name else ""
    return (
        f"{head}batch {plan.batch_size}, policy {plan.policy}: peak "
        f"{format_bytes(plan.peak_bytes)}, {verdict}"
    )


def plot_plan(plan: MemoryPlan, path: Path, name: str | None = None) -> Path:
    """Writes a two-panel figure: bytes in use and live tensors per step, forward steps
    and backward steps told apart, with the peak, layer bound and budget as lines.

    The title names ``name`` (the model), the batch and the policy, and says whether the
    plan fits its budget; the legend sits outside the axes so it never hides a curve.

    Example:
        >>> import tempfile, pathlib, superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8, in_channels=1)
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "mem.png"
        >>> sn.plan(g, 16).plot(out, name="resnet-8").exists()
        True
    """
    # A bare Figure with the Agg canvas: no pyplot, so the user's backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    raw = plan._raw["train_steps"]
    used = np.asarray(raw["bytes_in_use"], dtype=np.float64)
    lines = [
        (plan.layer_bound_bytes, "layer bound", {"color": "gray", "ls": "--"}),
        (plan.baseline_bytes, "baseline (policy none)", {"color": "red", "ls": ":"}),
    ]
    if plan.budget_bytes:
        lines.append((plan.budget_bytes, "budget", {"color": "black", "ls": "-"}))
    unit, scale = plot_unit(max([float(used.max(initial=0)), *(v for v, _, _ in lines)]))
    live = np.asarray(raw["live_tensors"])
    kind = np.asarray(raw["kind"])  # StepKind: 1 forward, 2 backward, 3 recompute
    x = np.arange(len(used))
    fig = Figure(figsize=(11, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for mask, label, color in (
        (kind == 1, "forward steps", "tab:blue"),
        (kind == 2, "backward steps", "tab:orange"),
        (kind == 3, "recompute steps", "tab:green"),
    ):
        top.plot(x[mask], used[mask] / scale, ".", ms=2, color=color, label=label)
        bottom.plot(x[mask], live[mask], ".", ms=2, color=color, label=label)
    host = np.asarray(raw["host_bytes_in_use"], dtype=np.float64)
    if host.any():  # offloaded tensors held in the host slab
        top.plot(x, host / scale, "-", lw=1, color="tab:purple", label="host slab")
    for value, label, style in lines:
        top.axhline(value / scale, lw=1, label=label, **style)
    top.set_ylabel(f"bytes in use ({unit})")
    bottom.set_ylabel("live tensors")
    bottom.set_xlabel("step of one training iteration")
    top.set_title(plot_title(plan, name))
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
