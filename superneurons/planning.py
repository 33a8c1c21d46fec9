"""Shape-only memory planning: what one training iteration needs, step by step, without
running anything.

Example:
    >>> import superneurons as sn
    >>> g = sn.models.resnet(depth=20, num_classes=10, image_size=32)
    >>> p = sn.plan(g, batch_size=64, policy="liveness", budget="1GB")
    >>> p.fits, p.peak_bytes < p.baseline_bytes, p.layer_bound_bytes <= p.peak_bytes
    (True, True, True)
    >>> p.steps[0].phase, p.steps[-1].phase
    ('forward', 'backward')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from superneurons._checks import MAX_BATCH
from superneurons._device import auto_device
from superneurons._ext import _C
from superneurons._policies import check_policy
from superneurons._units import format_bytes, parse_budget
from superneurons.graph import Graph, LayerSpec

__all__ = ["KindRow", "MemoryPlan", "PlanStep", "Segment", "plan"]

# TensorRole in csrc/plan/memory_plan.h, in order.
_ROLES = (
    "param",
    "param.grad",
    "param.momentum",
    "labels",
    "activation",
    "gradient",
    "aux",
    "workspace",
)

_COMPUTE_KINDS = ("forward", "backward", "recompute", "update")  # ComputeKind

IntArray = npt.NDArray[np.int64]


_STEP_KINDS = ("setup", "forward", "backward", "recompute")  # StepKind in csrc/plan/plan.h


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of the iteration: bytes in use while its layer runs (after its
    allocations). ``phase`` is ``"forward"``, ``"backward"`` (the layer's backward kernel,
    followed by the fused update of its parameters) or ``"recompute"`` (a forward rerun
    in the backward pass); ``algorithm`` is the way the backend runs it."""

    index: int
    layer: str
    phase: str
    bytes_in_use: int
    live_tensors: int
    algorithm: str = "default"


@dataclass(frozen=True, slots=True)
class Segment:
    """Layers whose outputs are dropped after forward and recomputed in backward."""

    layers: tuple[str, ...]
    bytes: int  # their activations
    speed_centric: bool  # recomputed once and kept (else once per backward step)
    recomputed: int  # layer forwards it adds to one iteration


class OffloadChoice(NamedTuple):
    """A selection of copies the planner compared for a plan that needed offload."""

    selection: str  # "tensor cache" (LRU), "ranked" (most idle byte-steps) or "every candidate"
    fits: bool
    moved_bytes: int  # offload + prefetch per iteration
    estimated_ms: float
    chosen: bool


class PeakBreakdown(NamedTuple):
    """What holds the bytes when the peak training step's kernel runs (Note [Peak
    breakdown] in csrc/plan/peak.cpp); the byte fields sum to the plan's peak. The layer
    bound counts ``step_bytes`` (and the resident bytes): the rest is the gap."""

    step: int
    layer: str
    phase: str  # forward, backward or recompute
    step_bytes: int  # what the step reads and writes
    resident_bytes: int  # parameters, momentum and labels of other layers
    prefetched_bytes: int  # copied in for a later step
    offloading_bytes: int  # copied out, device block not yet released
    kept_activation_bytes: int  # other layers' outputs held for later readers
    gradient_bytes: int  # other layers' gradients waiting for their readers
    other_bytes: int

    def describe(self) -> str:
        """One line: the peak step and every nonzero share."""
        parts = [
            f"{name.replace('_', ' ')} {format_bytes(getattr(self, name + '_bytes'))}"
            for name in (
                "step",
                "resident",
                "prefetched",
                "offloading",
                "kept_activation",
                "gradient",
                "other",
            )
            if getattr(self, name + "_bytes")
        ]
        return f"{self.phase} step {self.step} ('{self.layer}'): " + ", ".join(parts)


class KindRow(NamedTuple):
    """Bytes the layers of one kind hold (per-iteration tensors at the planned batch)."""

    kind: str
    layers: int
    param_bytes: int  # parameters with their gradients and momentum
    activation_bytes: int
    gradient_bytes: int
    other_bytes: int  # saved state and workspace


@dataclass(frozen=True)
class MemoryPlan:
    """The result of :func:`plan`. Byte counts include the pool's 256-byte rounding."""

    policy: str
    device: str
    batch_size: int
    budget_bytes: int  # 0: no budget given
    capacity_bytes: int  # the arena a session reserves
    peak_bytes: int
    layer_bound_bytes: int  # resident + the largest step's working set (and its own
    # parameters and momentum when they live on the host): max(l_i)
    baseline_bytes: int  # policy "none": every tensor at once
    resident_bytes: int  # always on the device: labels, parameters and momentum not on the host
    eval_peak_bytes: int
    fits: bool
    oom_message: str
    offload_bytes: int = 0  # device -> host bytes per iteration (offload policies)
    prefetch_bytes: int = 0  # host -> device bytes per iteration
    host_peak_bytes: int = 0  # most bytes of the host slab in use at once
    param_host_bytes: int = 0  # parameters and momentum whose home is the host slab
    host_budget_bytes: int = 0  # 0: none given (the host slab is sized to the plan)
    param_copy_bytes: int = 0  # of offload + prefetch bytes: their copies per iteration
    recompute_count: int = 0  # extra layer forwards per iteration
    recompute_flops: float = 0.0  # their FLOPs
    iteration_flops: float = 0.0  # forward + backward of one iteration (FLOP model)
    # The cost model's clock over one iteration: kernels, copies, the time kernels wait
    # for copies, and the whole iteration (copies overlap compute).
    compute_ms: float = 0.0
    copy_ms: float = 0.0
    stall_ms: float = 0.0
    estimated_ms: float = 0.0
    passes: tuple[str, ...] = ()  # the planning passes that ran, in order
    _layers: list[str] = field(repr=False, default_factory=list)
    _kinds: list[str] = field(repr=False, default_factory=list)
    _raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @cached_property
    def steps(self) -> list[PlanStep]:
        """Every forward and backward step of one training iteration."""
        return self._steps("train_steps")

    @cached_property
    def eval_steps(self) -> list[PlanStep]:
        """The steps of one inference pass."""
        return self._steps("eval_steps")

    def _steps(self, key: str) -> list[PlanStep]:
        cols = self._raw[key]
        names = self._layers
        algos = self._raw["algorithms"]
        return [
            PlanStep(i, names[layer], _STEP_KINDS[kind], int(b), int(n), algos[layer][a])
            for i, (layer, kind, a, b, n) in enumerate(
                zip(
                    cols["layer"].tolist(),
                    cols["kind"].tolist(),
                    cols["algorithm"].tolist(),
                    cols["bytes_in_use"].tolist(),
                    cols["live_tensors"].tolist(),
                    strict=True,
                )
            )
        ]

    @property
    def recompute_fraction(self) -> float:
        """Extra FLOPs of recomputation as a fraction of one iteration's FLOPs."""
        return self.recompute_flops / self.iteration_flops if self.iteration_flops else 0.0

    @property
    def planned_overlap(self) -> float:
        """The cost model's fraction of copy time hidden behind compute (1.0: no copies).

        >>> import superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
        >>> sn.plan(g, 2, policy="liveness").planned_overlap
        1.0
        """
        if self.copy_ms <= 0:
            return 1.0
        return max(0.0, 1.0 - self.stall_ms / self.copy_ms)  # a wait may queue behind copies

    @cached_property
    def peak_breakdown(self) -> PeakBreakdown:
        """What holds the bytes at the peak training step, so the gap between the peak and
        the layer bound is explained (sums to that step's bytes in use, which is
        ``peak_bytes`` unless the inference pass peaks higher).

        >>> import superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
        >>> p = sn.plan(g, 2, policy="liveness")
        >>> sum(p.peak_breakdown[3:]) == int(max(p.bytes_in_use))
        True
        """
        d = self._raw["peak_breakdown"]
        return PeakBreakdown(
            int(d["step"]),
            self._layers[int(d["layer"])] if int(d["layer"]) >= 0 else "",
            str(d["phase"]),
            *(
                int(d[k])
                for k in (
                    "step_bytes",
                    "resident_bytes",
                    "prefetched_bytes",
                    "offloading_bytes",
                    "kept_activation_bytes",
                    "gradient_bytes",
                    "other_bytes",
                )
            ),
        )

    @cached_property
    def offload_choices(self) -> list[OffloadChoice]:
        """The selections of copies compared for this plan, the one kept marked ``chosen``
        (empty when it fits without copies). Under ``superneurons`` they belong to the
        recompute rung that won.

        >>> import superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
        >>> sn.plan(g, 2, policy="liveness+offload", budget="1GB").offload_choices
        []
        """
        return [
            OffloadChoice(
                str(c["selection"]),
                bool(c["fits"]),
                int(c["moved_bytes"]),
                float(c["estimated_ms"]),
                bool(c["chosen"]),
            )
            for c in self._raw["offload_choices"]
        ]

    @cached_property
    def segments(self) -> list[Segment]:
        """The recompute segments (empty when nothing is recomputed)."""
        names = self._layers
        return [
            Segment(
                tuple(names[i] for i in s["layers"]),
                int(s["bytes"]),
                bool(s["speed_centric"]),
                int(s["recomputed"]),
            )
            for s in self._raw["segments"]
        ]

    @cached_property
    def checkpoints(self) -> list[str]:
        """Layers whose outputs are kept for backward when recomputation is planned."""
        flags = self._raw["checkpoint"]
        return [name for name, keep in zip(self._layers, flags, strict=False) if keep]

    def ops(self, step: int) -> list[tuple[str, str, str, int, int]]:
        """The typed operations of a training step, in order, as ``(op, target, role,
        size_bytes, offset_bytes)``: ``op`` is alloc, free, zero, compute, ...; ``target``
        a layer name; ``role`` the tensor role, or for compute the kind (forward,
        backward, recompute, update)."""
        n = len(self._raw["train_steps"]["layer"])
        if not 0 <= step < n:
            raise ValueError(f"step must be in [0, {n}), got {step}")
        out = []
        for kind, compute, layer, role, _index, size, offset in self._raw["train_ops"](step):
            what = _COMPUTE_KINDS[compute] if kind == "compute" else _ROLES[role]
            out.append((kind, self._layers[layer], what, int(size), int(offset)))
        return out

    def live_set(self, step: int, when: str = "during") -> list[str]:
        """Names of the tensors live at a training step: ``"before"`` it runs, ``"during"``
        it (after its allocations) or ``"after"`` it (after its releases). A name is
        ``"<layer>:<role>"``, e.g. ``"conv1:activation"``; resident tensors included.

        Example:
            >>> import superneurons as sn
            >>> g = sn.Graph()
            >>> x = g.input(shape=(2, 1, 1), name="x")
            >>> _ = g.softmax_cross_entropy(g.fc(x, 2, name="fc"), name="loss")
            >>> p = sn.plan(g, 4)
            >>> p.live_set(0, "after")[:2], p.live_set(0, "after")[-1]
            (['loss:labels', 'fc:weight'], 'x:activation')
            >>> [t for t in p.live_set(4, "during") if not t.startswith("fc:")]
            ['loss:labels', 'x:activation']
        """
        if when not in ("before", "during", "after"):
            raise ValueError(f"when must be 'before', 'during' or 'after', got {when!r}")
        n = len(self._raw["train_steps"]["layer"])
        if not 0 <= step < n:
            raise ValueError(f"step must be in [0, {n}), got {step}")
        b = self._raw["blocks"]
        first, last = b["first_step"], b["last_step"]
        if when == "before":
            live = (first < step) & (last >= step)
        elif when == "during":
            live = (first <= step) & (last >= step)
        else:
            live = (first <= step) & (last > step)
        return [self._block_name(i) for i in np.flatnonzero(live).tolist()]

    def _block_name(self, i: int) -> str:
        b = self._raw["blocks"]
        layer = int(b["layer"][i])
        role = _ROLES[int(b["role"][i])]
        if role in ("param", "param.grad", "param.momentum"):
            suffix = role.removeprefix("param")
            role = self._raw["param_roles"][layer][int(b["index"][i])] + suffix
        return f"{self._layers[layer]}:{role}"

    @property
    def bytes_in_use(self) -> IntArray:
        """Per-step bytes in use of the training iteration, as an array."""
        arr: IntArray = self._raw["train_steps"]["bytes_in_use"]
        return arr

    def by_kind(self) -> list[KindRow]:
        """How much each kind of layer holds, largest first."""
        rows: dict[str, list[int]] = {}
        raw = self._raw
        for i, kind in enumerate(self._kinds):
            r = rows.setdefault(kind, [0, 0, 0, 0, 0])
            r[0] += 1
            r[1] += int(raw["param_bytes"][i])
            r[2] += int(raw["activation_bytes"][i])
            r[3] += int(raw["gradient_bytes"][i])
            r[4] += int(raw["aux_bytes"][i]) + int(raw["workspace_bytes"][i])
        out = [KindRow(k, *v) for k, v in rows.items()]
        return sorted(out, key=lambda r: -(r.param_bytes + r.activation_bytes + r.gradient_bytes))

    def summary(self) -> str:
        """A few lines for people."""
        verdict = "fits" if self.fits else "does NOT fit"
        budget = format_bytes(self.budget_bytes) if self.budget_bytes else "no budget"
        return (
            f"policy {self.policy}, batch {self.batch_size}, {budget}: {verdict}\n"
            f"  peak            {format_bytes(self.peak_bytes)}\n"
            f"  layer bound     {format_bytes(self.layer_bound_bytes)} "
            f"(peak / bound = {self.peak_bytes / max(self.layer_bound_bytes, 1):.2f})\n"
            f"  at the peak     {self.peak_breakdown.describe()}\n"
            f"  baseline (none) {format_bytes(self.baseline_bytes)}\n"
            f"  resident        {format_bytes(self.resident_bytes)}"
            + ("" if self.fits else f"\n  {self.oom_message}")
        )

    def table(self) -> str:
        """The per-layer-kind table as text."""
        lines = [
            f"{'kind':<22}{'layers':>8}{'params':>14}{'activations':>14}"
            f"{'gradients':>14}{'other':>14}"
        ]
        for r in self.by_kind():
            lines.append(
                f"{r.kind:<22}{r.layers:>8}{format_bytes(r.param_bytes):>14}"
                f"{format_bytes(r.activation_bytes):>14}{format_bytes(r.gradient_bytes):>14}"
                f"{format_bytes(r.other_bytes):>14}"
            )
        return "\n".join(lines)

    def to_dict(self, steps: bool = True) -> dict[str, Any]:
        """Plain data for JSON: the headline numbers, the kind table and (optionally) steps."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "policy",
                "device",
                "batch_size",
                "budget_bytes",
                "capacity_bytes",
                "peak_bytes",
                "layer_bound_bytes",
                "baseline_bytes",
                "resident_bytes",
                "eval_peak_bytes",
                "fits",
                "offload_bytes",
                "prefetch_bytes",
                "host_peak_bytes",
                "param_host_bytes",
                "param_copy_bytes",
                "host_budget_bytes",
                "recompute_count",
                "recompute_flops",
                "iteration_flops",
                "compute_ms",
                "copy_ms",
                "stall_ms",
                "estimated_ms",
            )
        }
        out["passes"] = list(self.passes)
        out["offload_choices"] = [c._asdict() for c in self.offload_choices]
        out["peak_breakdown"] = self.peak_breakdown._asdict()
        out["recompute_fraction"] = self.recompute_fraction
        out["segments"] = {
            "speed_centric": sum(s.speed_centric for s in self.segments),
            "memory_centric": sum(not s.speed_centric for s in self.segments),
        }
        if not self.fits:
            out["oom_message"] = self.oom_message
        out["by_kind"] = [r._asdict() for r in self.by_kind()]
        if steps:
            out["steps"] = [asdict(s) for s in self.steps]
        return out

    def plot(self, path: str | Path, name: str | None = None) -> Path:
        """Per-step bytes in use and live tensors, forward and backward (like Fig. 8.10);
        ``name`` (the model, say) goes into the title."""
        from superneurons.report import plot_plan

        return plot_plan(self, Path(path), name)


def plan(
    graph: Graph,
    batch_size: int,
    policy: str = "liveness",
    budget: str | int | None = None,
    device: str = "cpu",
    host_budget: str | int | None = None,
) -> MemoryPlan:
    """Plans one training iteration of ``graph`` without allocating or running anything.

    ``device`` is "cpu", "cuda" (any "cuda:N") or "auto" (see :class:`Session`).
    Raises ValueError for an unknown policy or device and GraphError for a bad graph. A
    plan that does not fit the budget is returned with ``fits=False`` and the reason in
    ``oom_message`` (a Session would raise OutOfMemoryError with the same message).
    ``host_budget`` caps the host slab that offloaded tensors and parameters on the host
    may use (with a device budget; default: the slab is sized to what the plan needs).

    Example:
        >>> import superneurons as sn
        >>> g = sn.models.alexnet(num_classes=1000, image_size=224)
        >>> p = sn.plan(g, batch_size=200, policy="none", budget="1GB")
        >>> p.fits
        False
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a superneurons.Graph, got {type(graph).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be in [1, {MAX_BATCH:,}], got {batch_size}")
    check_policy(policy)
    if device == "auto":
        device = auto_device()
    if device in ("gpu",) or device.startswith("cuda"):
        device = "cuda"  # one plan per device kind: tensor sizes do not depend on the index
    raw = _C.plan_memory(
        graph._core, batch_size, policy, device, parse_budget(budget), parse_budget(host_budget)
    )
    return from_raw(graph.layers, raw, device)


def from_raw(layers: list[LayerSpec], raw: dict[str, Any], device: str) -> MemoryPlan:
    """Wraps the extension's plan dictionary (shared with Session.plan)."""
    return MemoryPlan(
        policy=raw["policy"],
        device=device,
        batch_size=int(raw["batch_size"]),
        budget_bytes=int(raw["budget_bytes"]),
        capacity_bytes=int(raw["capacity_bytes"]),
        peak_bytes=int(raw["peak_bytes"]),
        layer_bound_bytes=int(raw["layer_bound_bytes"]),
        baseline_bytes=int(raw["baseline_bytes"]),
        resident_bytes=int(raw["resident_bytes"]),
        eval_peak_bytes=int(raw["eval_peak_bytes"]),
        fits=bool(raw["fits"]),
        oom_message=str(raw["oom_message"]),
        recompute_count=int(raw["recompute_count"]),
        offload_bytes=int(raw["offload_bytes"]),
        prefetch_bytes=int(raw["prefetch_bytes"]),
        host_peak_bytes=int(raw["host_peak_bytes"]),
        param_host_bytes=int(raw["param_host_bytes"]),
        host_budget_bytes=int(raw["host_budget_bytes"]),
        param_copy_bytes=int(raw["param_copy_bytes"]),
        recompute_flops=float(raw["recompute_flops"]),
        iteration_flops=float(raw["iteration_flops"]),
        compute_ms=float(raw["compute_ms"]),
        copy_ms=float(raw["copy_ms"]),
        stall_ms=float(raw["stall_ms"]),
        estimated_ms=float(raw["estimated_ms"]),
        passes=tuple(raw["passes"]),
        _layers=[s.name for s in layers],
        _kinds=[s.kind for s in layers],
        _raw=raw,
    )
