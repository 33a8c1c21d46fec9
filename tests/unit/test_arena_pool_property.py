"""Property tests of the device memory pool (csrc/memory/arena_pool.h) through
``_C.ArenaPool``: random allocate/free sequences against a plain Python model of the same
best-fit rule, checking offsets, blocks and statistics after every operation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superneurons._ext import _C

ALIGN_BYTES = 256  # bytes: the pool's block alignment


def rounded(size_bytes: int) -> int:
    return max(1, -(-size_bytes // ALIGN_BYTES)) * ALIGN_BYTES


@dataclass
class ModelPool:
    """The pool as a sorted list of [offset, size, used] blocks: linear best fit (smallest
    fitting size, then lowest offset), split at the front, merge with free neighbours."""

    capacity_bytes: int
    blocks: list[list[int]] = field(default_factory=list)
    in_use_bytes: int = 0
    peak_bytes: int = 0
    high_water_bytes: int = 0
    total_allocs: int = 0

    def __post_init__(self) -> None:
        self.capacity_bytes = self.capacity_bytes // ALIGN_BYTES * ALIGN_BYTES
        if self.capacity_bytes > 0:
            self.blocks = [[0, self.capacity_bytes, 0]]

    def allocate(self, size_bytes: int) -> int:
        want = rounded(size_bytes)
        fits = [(b[1], b[0], i) for i, b in enumerate(self.blocks) if not b[2] and b[1] >= want]
        if not fits:
            return -1
        size, offset, i = min(fits)
        self.blocks[i] = [offset, want, 1]
        if size > want:
            self.blocks.insert(i + 1, [offset + want, size - want, 0])
        self.in_use_bytes += want
        self.peak_bytes = max(self.peak_bytes, self.in_use_bytes)
        self.high_water_bytes = max(self.high_water_bytes, offset + want)
        self.total_allocs += 1
        return offset

    def free(self, offset: int) -> None:
        i = next(i for i, b in enumerate(self.blocks) if b[0] == offset)
        self.blocks[i][2] = 0
        self.in_use_bytes -= self.blocks[i][1]
        if i + 1 < len(self.blocks) and not self.blocks[i + 1][2]:
            self.blocks[i][1] += self.blocks.pop(i + 1)[1]
        if i > 0 and not self.blocks[i - 1][2]:
            self.blocks[i - 1][1] += self.blocks.pop(i)[1]

    def used(self) -> list[tuple[int, int]]:
        return [(b[0], b[1]) for b in self.blocks if b[2]]

    def free_list(self) -> list[tuple[int, int]]:
        return [(b[0], b[1]) for b in self.blocks if not b[2]]

    def stats(self) -> dict[str, int | float]:
        free_sizes = [size for _, size in self.free_list()]
        largest = max(free_sizes, default=0)
        free_total = self.capacity_bytes - self.in_use_bytes
        return {
            "capacity_bytes": self.capacity_bytes,
            "in_use_bytes": self.in_use_bytes,
            "peak_bytes": self.peak_bytes,
            "num_allocs": len(self.used()),
            "total_allocs": self.total_allocs,
            "largest_free_bytes": largest,
            "fragmentation": 0.0 if free_total == 0 else 1.0 - largest / free_total,
            "high_water_bytes": self.high_water_bytes,
            "num_free_blocks": len(free_sizes),
        }


def check_structure(pool: _C.ArenaPool, capacity_bytes: int) -> None:
    used = pool.blocks()
    free = pool.free_blocks()
    assert used == sorted(used)
    for (a_off, a_size), (b_off, _) in itertools.pairwise(used):
        assert a_off + a_size <= b_off, "live blocks overlap"
    assert all(off % ALIGN_BYTES == 0 and size % ALIGN_BYTES == 0 for off, size in used)
    tiles = sorted([(o, s, True) for o, s in used] + [(o, s, False) for o, s in free])
    cursor = 0
    for i, (off, size, is_used) in enumerate(tiles):
        assert off == cursor, "blocks must tile the arena"
        if i > 0:
            assert is_used or tiles[i - 1][2], "free blocks are never adjacent"
        cursor = off + size
    assert cursor == capacity_bytes // ALIGN_BYTES * ALIGN_BYTES


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(0, 6000)),
        st.tuples(st.just("alloc"), st.integers(1, 8).map(lambda n: n * ALIGN_BYTES)),
        st.tuples(st.just("free"), st.integers(0, 10**6)),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(capacity_bytes=st.integers(0, 40_000), ops=ops_strategy)
def test_pool_matches_model(capacity_bytes: int, ops: list[tuple[str, int]]) -> None:
    pool = _C.ArenaPool(capacity_bytes)
    model = ModelPool(capacity_bytes)
    live: list[int] = []
    peak_seen = 0
    for op, arg in ops:
        if op == "alloc" or not live:
            offset = pool.allocate(arg)
            assert offset == model.allocate(arg)
            if offset >= 0:
                assert offset % ALIGN_BYTES == 0
                live.append(offset)
        else:
            offset = live.pop(arg % len(live))
            pool.free(offset)
            model.free(offset)
        stats = pool.stats()
        assert stats == model.stats()
        assert pool.blocks() == model.used()
        assert pool.free_blocks() == model.free_list()
        assert stats["in_use_bytes"] == sum(size for _, size in pool.blocks())
        peak_seen = max(peak_seen, int(stats["in_use_bytes"]))
        assert stats["peak_bytes"] == peak_seen
        check_structure(pool, capacity_bytes)

    for offset in live:
        pool.free(offset)
    stats = pool.stats()
    assert stats["in_use_bytes"] == 0
    assert stats["num_allocs"] == 0
    assert stats["fragmentation"] == 0.0
    capacity = stats["capacity_bytes"]
    assert pool.free_blocks() == ([(0, capacity)] if capacity else [])


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=40))
def test_same_sequence_same_offsets(sizes: list[int]) -> None:
    """The planner and the executor replay one sequence through two pools."""
    a = _C.ArenaPool(1 << 16)
    b = _C.ArenaPool(1 << 16)
    for i, size in enumerate(sizes):
        assert a.allocate(size) == b.allocate(size)
        if i % 3 == 2:
            first = a.blocks()[0][0]
            a.free(first)
            b.free(first)
    assert a.blocks() == b.blocks()


def test_errors() -> None:
    pool = _C.ArenaPool(4096)
    offset = pool.allocate(10)
    pool.free(offset)
    with pytest.raises(RuntimeError, match="not allocated"):
        pool.free(offset)
    with pytest.raises(RuntimeError, match="not allocated"):
        pool.free(512)
    with pytest.raises(ValueError, match="size_bytes"):
        pool.allocate(-1)
    with pytest.raises(ValueError, match="capacity_bytes"):
        _C.ArenaPool(-1)
    assert pool.allocate(4097) == -1
    assert _C.ArenaPool(1000).stats()["capacity_bytes"] == 768


def test_bench_pool_runs() -> None:
    result = _C._bench_pool(2000, 16, 4096, 0)
    assert result["ops"] == 2000
    assert result["pool_ns_per_op"] > 0
    assert result["malloc_ns_per_op"] > 0
    with pytest.raises(ValueError):
        _C._bench_pool(0, 16, 4096, 0)
