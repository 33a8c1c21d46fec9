"""A graph compiled for one batch size, device, memory policy and budget.

Example:
    >>> import numpy as np
    >>> import superneurons as sn
    >>> g = sn.Graph()
    >>> x = g.input(shape=(4, 1, 1))
    >>> _ = g.softmax_cross_entropy(g.fc(x, 3))
    >>> s = sn.Session(g, batch_size=8, seed=0)
    >>> xb = np.ones((8, 4, 1, 1), np.float32); yb = np.zeros(8, np.int32)
    >>> loss, correct = s.train_step(xb, yb, lr=0.1)
    >>> round(loss, 3) > 0, s.iteration
    (True, 1)
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from superneurons._checks import MAX_BATCH, check_finite_samples, check_sgd
from superneurons._device import auto_device, cuda_devices, cuda_index
from superneurons._ext import _C
from superneurons._policies import check_policy
from superneurons._units import parse_budget
from superneurons.graph import Graph
from superneurons.planning import MemoryPlan, from_raw

__all__ = ["Session", "StepResult", "labels_int32"]


def labels_int32(labels: npt.ArrayLike, num_classes: int) -> npt.NDArray[np.int32]:
    """Labels as the core takes them: an integer array, every value in [0, num_classes)."""
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer array, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"labels must have shape (n,), got {y.shape}")
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"label {y[i]} at index {i} is outside [0, {num_classes})")
    return np.ascontiguousarray(y, dtype=np.int32)


Init = Literal["he", "xavier", "gaussian"]


class StepResult(NamedTuple):
    """Mean loss of a batch and how many of its samples were classified correctly."""

    loss: float
    correct: int


class EvalResult(NamedTuple):
    loss: float
    correct: int
    logits: npt.NDArray[np.float32]


def _resolve_device(device: str) -> str:
    """The device a session runs on: ``"cpu"`` or ``"cuda:N"``.

    ``"cuda"`` (or ``"gpu"``) is ``"cuda:0"``. Where CUDA was not built or no GPU is
    visible, a CUDA request warns (one sentence) and runs on the CPU; an index beyond
    the visible GPUs is a ``ValueError``. ``"auto"`` is ``"cuda:0"`` where a GPU can run
    the session and ``"cpu"`` elsewhere, without a warning.

    >>> _resolve_device("cpu")
    'cpu'
    >>> _resolve_device("auto") in ("cpu", "cuda:0")
    True
    """
    index = cuda_index(device)
    if index is None:
        return auto_device() if device == "auto" else "cpu"
    info = _C._build_info
    count, reason = cuda_devices() if info["cuda"] else (0, "")
    if count > 0:
        if index >= count:
            raise ValueError(f"device {device!r}: only {count} CUDA device(s) are visible")
        return f"cuda:{index}"
    why = (
        "this build has no CUDA backend (" + str(info["cuda_reason"]) + ")"
        if not info["cuda"]
        else "no usable GPU is visible (" + reason + ")"
    )
    # Python's default warning filter shows this once per call site.
    warnings.warn(
        f"device {device!r} was requested, but {why}, so superneurons runs on the CPU",
        RuntimeWarning,
        stacklevel=3,
    )
    return "cpu"


_DLPACK_CPU, _DLPACK_CUDA = 1, 2


class _StateExport:
    """One float32 state buffer of a session, exported through DLPack
    (``__dlpack__`` / ``__dlpack_device__``, Note [DLPack export] in
    csrc/python/register_dlpack.cpp), so that ``cupy.from_dlpack`` (or
    ``numpy.from_dlpack``, ``torch.from_dlpack``) views it without a copy. The capsule
    keeps ``owner``, the session's core, alive as long as a view exists.

    >>> import numpy as np
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> v = np.from_dlpack(_StateExport(a.ctypes.data, a.shape, a, (_DLPACK_CPU, 0)))
    >>> v[1, 2] = -1.0
    >>> float(a[1, 2])
    -1.0
    """

    def __init__(
        self, address: int, shape: tuple[int, ...], owner: object, device: tuple[int, int]
    ) -> None:
        self._address, self._shape, self._owner, self._device = address, shape, owner, device

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device

    def __dlpack__(
        self,
        *,
        stream: Any = None,
        max_version: Any = None,
        dl_device: Any = None,
        copy: Any = None,
    ) -> Any:
        # The state is complete whenever no call of the session is running (the
        # constructor, every step and every state write end with a synchronisation of
        # the device), so any consumer stream may read it: `stream` needs no event.
        del stream
        if copy:
            raise BufferError("session state is exported without a copy; use state_dict()")
        if dl_device is not None and tuple(dl_device) != self._device:
            raise BufferError(f"session state lives on DLPack device {self._device}")
        versioned = max_version is not None and int(max_version[0]) >= 1
        return _C._dlpack_capsule(
            self._address,
            list(self._shape),
            self._device[0],
            self._device[1],
            self._owner,
            versioned,
        )


def _device_view(address: int, shape: tuple[int, ...], owner: object, index: int) -> Any:
    try:
        import cupy
    except ImportError as e:
        raise ImportError(
            "views of GPU state need CuPy (pip install cupy-cuda12x); "
            "state_dict() and load_state_dict() copy without it"
        ) from e
    return cupy.from_dlpack(_StateExport(address, shape, owner, (_DLPACK_CUDA, index)))


class Session:
    """Compiles ``graph`` for ``batch_size`` samples and trains it one batch at a time.

    One call of :meth:`train_step` runs forward, backward and the SGD update in C++.
    Parameters are initialised from ``seed`` (He for convolutions, Xavier for fully
    connected layers, unless ``init`` says otherwise); the same seed gives bit-identical
    runs. ``device`` is ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` (warns and runs on the CPU
    where no GPU can) or ``"auto"`` (the first GPU where one can run it, else the CPU).

    The memory ``policy`` decides when tensors are allocated and freed (see
    :func:`superneurons.plan`); every policy computes the same numbers. A plan that does
    not fit ``budget`` raises :class:`superneurons.OutOfMemoryError` here, before anything
    runs. ``debug_poison=True`` fills every released buffer with NaN and hands every
    backward kernel NaN in place of the tensors its backend does not declare it reads, so
    a tensor used after its planned release, or an undeclared read, shows up in the loss
    (slow; for debugging).
    """

    def __init__(
        self,
        graph: Graph,
        batch_size: int,
        *,
        device: str = "cpu",
        policy: str = "liveness",
        budget: str | int | None = None,
        seed: int = 0,
        init: Init = "he",
        debug_poison: bool = False,
        host_budget: str | int | None = None,
        _copy_delay_us: int = 0,
    ) -> None:
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a superneurons.Graph, got {type(graph).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if batch_size > MAX_BATCH:
            raise ValueError(f"batch_size {batch_size} is too large (at most {MAX_BATCH:,})")
        check_policy(policy)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        if init not in ("he", "xavier", "gaussian"):
            raise ValueError(f"unknown init {init!r}; choose 'he', 'xavier' or 'gaussian'")
        self.graph = graph
        self.batch_size = batch_size
        self.policy = policy
        self.device = _resolve_device(device)
        self._device_index = int(self.device.partition(":")[2] or 0)
        self.budget_bytes = parse_budget(budget)
        self.host_budget_bytes = parse_budget(host_budget)
        self.seed = int(seed)
        self._core = _C.Session(
            graph._core,
            batch_size,
            policy,
            self.device,
            self.budget_bytes,
            self.seed,
            debug_poison,
            _copy_delay_us,
            self.host_budget_bytes,
        )
        # name -> (kind, index, shape, device address, NumPy view or None on a GPU)
        self._state = {
            name: (kind, i, tuple(shape), address, view)
            for i, (name, kind, shape, address, view) in enumerate(self._core.state())
        }
        self._layers = graph.layers  # the graph as compiled (the user may extend it later)
        self._initialise(init)

    # -------------------------------------------------------------------- parameters
    def _read(self, name: str) -> npt.NDArray[np.float32]:
        """A copy of one state buffer, from the device where it lives there."""
        _kind, index, _shape, _address, view = self._state[name]
        return view.copy() if view is not None else self._core.read_state(index)

    def _write(self, name: str, values: npt.NDArray[np.float32]) -> None:
        _kind, index, shape, _address, view = self._state[name]
        if view is not None:
            view[...] = values
        else:
            full = np.broadcast_to(np.asarray(values, np.float32), shape)
            self._core.write_state(index, np.ascontiguousarray(full))

    def _initialise(self, init: Init) -> None:
        rng = np.random.default_rng(self.seed)
        kinds = {s.name: s.kind for s in self.graph.layers}
        for name, (kind, _index, shape, _address, _view) in self._state.items():
            if kind == "momentum":
                self._write(name, np.zeros(shape, np.float32))
                continue
            layer, role = name.rsplit(".", 1)
            if role in ("bias", "beta", "running_mean"):
                self._write(name, np.zeros(shape, np.float32))
            elif role in ("gamma", "running_var"):
                self._write(name, np.ones(shape, np.float32))
            elif role == "weight":
                fan_in = int(np.prod(shape[1:]))
                fan_out = int(shape[0] * np.prod(shape[2:]))
                scheme = init if init != "he" or kinds[layer] == "conv2d" else "xavier"
                if scheme == "he":
                    std = np.sqrt(2.0 / fan_in)
                    w = rng.standard_normal(shape, dtype=np.float32) * std
                elif scheme == "xavier":
                    bound = np.sqrt(6.0 / (fan_in + fan_out))
                    w = rng.uniform(-bound, bound, shape).astype(np.float32)
                else:
                    w = rng.standard_normal(shape, dtype=np.float32) * 0.01
                self._write(name, w)

    @property
    def host_addressable(self) -> bool:
        """Whether the session's memory is host memory (the CPU backend), so that
        :meth:`parameters` are NumPy views; on a GPU they are CuPy arrays."""
        return bool(self._core.host_addressable)

    def parameters(self, copy: bool = False) -> dict[str, Any]:
        """Trainable parameters as views of the session's memory (no copy): NumPy arrays
        on the CPU, CuPy arrays on a GPU (zero-copy through DLPack; needs CuPy). With
        ``copy=True``, NumPy copies on every device (no CuPy needed).

        >>> import superneurons as sn
        >>> g = sn.Graph(); x = g.input(shape=(4, 1, 1))
        >>> _ = g.softmax_cross_entropy(g.fc(x, 3))
        >>> s = sn.Session(g, 2, seed=0)
        >>> sorted(s.parameters(copy=True)), s.parameters(copy=True)["fc1.weight"].shape
        (['fc1.bias', 'fc1.weight'], (3, 4))

        Writing into a view changes the model. A view keeps the session's memory alive.
        CuPy works on its own stream: after writing through a CuPy view, call
        ``cupy.cuda.get_current_stream().synchronize()`` before the next step.
        """
        out: dict[str, Any] = {}
        for name, (kind, _index, shape, address, view) in self._state.items():
            if kind == "param" and copy:
                out[name] = self._read(name)
            elif kind == "param":
                out[name] = (
                    view
                    if view is not None
                    else _device_view(address, shape, self._core, self._device_index)
                )
        return out

    def state_dict(self) -> dict[str, npt.NDArray[np.float32]]:
        """Everything a checkpoint needs: parameters, BN running statistics and momentum
        (NumPy copies, also from a GPU), plus the iteration counter that seeds dropout."""
        out = {n: self._read(n) for n in self._state}
        out["__iteration__"] = np.array(self._core.iteration, dtype=np.int64)
        return out

    def load_state_dict(
        self, state: dict[str, npt.NDArray[np.float32]], strict: bool = True
    ) -> None:
        """Restores :meth:`state_dict` output; names and shapes must match exactly. With
        ``strict=False`` a subset of the names is enough (the rest, and the iteration
        counter when absent, stay as they are); an unknown name is still an error."""
        persistent = dict(self._state)
        missing = sorted(set(persistent) - set(state))
        extra = sorted(set(state) - set(persistent) - {"__iteration__"})
        if not strict:
            persistent = {n: v for n, v in persistent.items() if n in state}
            missing = []
        if missing or extra:
            raise ValueError(
                f"state does not match this graph: missing {missing[:5]}, unexpected {extra[:5]}"
            )
        # Check everything before writing anything: a bad state changes nothing.
        arrays = {}
        for name, (_kind, _index, shape, _address, _view) in persistent.items():
            src = np.asarray(state[name])
            if src.shape != shape:
                raise ValueError(f"state '{name}' has shape {src.shape}, expected {shape}")
            arrays[name] = src.astype(np.float32, copy=False)
        iteration = int(state.get("__iteration__", self._core.iteration))
        if not 0 <= iteration < 2**63:
            raise ValueError(f"state '__iteration__' must be in [0, 2**63), got {iteration}")
        for name in persistent:
            self._write(name, arrays[name])
        self._core.iteration = iteration

    # ----------------------------------------------------------------------- running
    @property
    def iteration(self) -> int:
        """Training steps taken so far."""
        return int(self._core.iteration)

    @property
    def num_classes(self) -> int:
        return int(self._core.num_classes)

    def train_step(
        self,
        x: npt.ArrayLike,
        labels: npt.ArrayLike,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> StepResult:
        """One forward, backward and SGD step on up to ``batch_size`` samples.

        Raises ``ValueError`` for SGD settings that cannot train (see ``check_sgd``) and
        ``FloatingPointError`` naming the sample when ``x`` holds a NaN or inf.
        """
        check_sgd(lr, momentum, weight_decay, zero_lr_ok=True)
        check_finite_samples(x, "input batch")
        y = labels_int32(labels, self.num_classes)
        loss, correct = self._core.train_step(x, y, lr, momentum, weight_decay)
        return StepResult(float(loss), int(correct))

    def gradients(
        self, x: npt.ArrayLike, labels: npt.ArrayLike
    ) -> tuple[float, dict[str, npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
        """Loss, parameter gradients (views) and input gradient, without updating anything.

        Runs in training mode with the current iteration's dropout masks, so repeated
        calls on the same batch give the same result (what finite differences need). The
        gradients are copies: in the plan, a parameter gradient lives only between its
        layer's backward step and the fused update that follows it.
        """
        check_finite_samples(x, "input batch")
        loss, dx = self._core.compute_gradients(x, labels_int32(labels, self.num_classes))
        grads = dict(self._core.gradients())
        return float(loss), grads, dx

    def evaluate(self, x: npt.ArrayLike, labels: npt.ArrayLike) -> EvalResult:
        """Forward in inference mode (running BN statistics, no dropout)."""
        check_finite_samples(x, "input batch")
        y = labels_int32(labels, self.num_classes)
        loss, correct, logits = self._core.evaluate(x, y)
        return EvalResult(float(loss), int(correct), logits)

    def plan(self) -> MemoryPlan:
        """The memory plan this session executes (same as :func:`superneurons.plan`)."""
        return from_raw(self._layers, self._core.plan(), self.device)

    def memory_trace(self, phase: str = "train") -> list[int]:
        """Bytes in use measured by the arena at every step of the last training iteration
        (``phase="train"``) or inference pass (``"eval"``); they equal the plan's
        ``steps`` / ``eval_steps`` byte for byte."""
        if phase not in ("train", "eval"):
            raise ValueError(f"phase must be 'train' or 'eval', got {phase!r}")
        return list(self._core.memory_trace()[phase])

    def host_memory_stats(self) -> dict[str, int]:
        """The host slab's counters (offloaded tensors): capacity, in use and peak bytes."""
        return dict(self._core.host_memory_stats())

    def copy_stats(self) -> dict[str, float]:
        """Device <-> host copies measured since the session began: bytes moved, the copy
        engine's busy time, the time compute waited for copies, and the overlap (the
        fraction of copy time hidden behind compute; 1.0 when nothing was copied).

        >>> import numpy as np, superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
        >>> s = sn.Session(g, 2, policy="liveness")
        >>> s.copy_stats()["bytes"], s.copy_stats()["overlap"]
        (0, 1.0)
        """
        d: dict[str, float] = dict(self._core.copy_stats())
        copy_ms = float(d["copy_ms"])
        d["overlap"] = 1.0 - min(float(d["stall_ms"]), copy_ms) / copy_ms if copy_ms > 0 else 1.0
        return d

    def set_profiling(self, on: bool = True) -> None:
        """Time every kernel call from now on (``on=True`` clears earlier totals) or stop.

        The totals are read with :meth:`profile`; profiling costs two clock reads a kernel
        (on a GPU also a synchronization before and after each, so the step serializes).
        """
        self._core.set_profiling(bool(on))

    def profile(self) -> list[dict[str, Any]]:
        """Kernel time since :meth:`set_profiling`, summed by layer kind and phase.

        One row per (kind, phase) that ran: ``kind`` (``"conv2d"``, ...), ``phase``
        (``"forward"``, ``"backward"``, ``"recompute"``, ``"update"`` or ``"zero"``, the
        gradient fills), ``calls`` and ``ms``. Copies are in :meth:`copy_stats` instead.

        >>> import numpy as np, superneurons as sn
        >>> g = sn.models.resnet(depth=8, num_classes=10, image_size=8)
        >>> s = sn.Session(g, 2, policy="liveness")
        >>> s.set_profiling()
        >>> x, y = np.zeros((2, 3, 8, 8), np.float32), np.zeros(2, np.int32)
        >>> _ = s.train_step(x, y, lr=0.1)
        >>> sorted({r["phase"] for r in s.profile()})
        ['backward', 'forward', 'update', 'zero']
        >>> [r["calls"] for r in s.profile() if r["kind"] == "softmax_cross_entropy"]
        [1, 1]
        """
        return [dict(r) for r in self._core.profile()]

    def memory_stats(self) -> dict[str, int | float]:
        """The arena's counters: capacity, bytes in use and at peak, live and total
        allocations, largest free block, fragmentation (0: the free space is one block)
        and the highest offset ever handed out."""
        return dict(self._core.memory_stats())
