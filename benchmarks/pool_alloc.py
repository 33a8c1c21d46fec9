"""Pool microbenchmark: allocate+free throughput of the device memory pool (ArenaPool)
against the system allocator, in one run.

Both replay the same seeded sequence (a ring of ``live`` blocks; each step frees the oldest
block and allocates a new one of a random size in [256, max_bytes]); one op is one
allocate plus one free. The pool runs over a real malloc'd arena on the host, and the
comparison is with the host's std::malloc/std::free. With ``--cuda`` (a CUDA build on a
machine with a GPU) it also times the pool over device memory against
cudaMalloc/cudaFree, the design target being ">= 10x faster".

    python benchmarks/pool_alloc.py           # full run
    python benchmarks/pool_alloc.py --quick   # a few seconds
    python benchmarks/pool_alloc.py --cuda    # plus the device comparison
"""

from __future__ import annotations

import argparse
import statistics

from superneurons._ext import _C

REPEATS = 5
SEED = 0
# (blocks alive at once, largest block in bytes)
SETTINGS: list[tuple[int, int]] = [
    (16, 4 << 10),
    (256, 64 << 10),
    (4096, 16 << 10),
    (512, 256 << 10),
    (64, 4 << 20),
]


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}"
        n //= 1024
    raise AssertionError("unreachable")


def measure(iterations: int, live: int, max_bytes: int) -> tuple[float, float]:
    """Median pool and malloc ns per allocate+free over REPEATS runs of one sequence."""
    pool_ns: list[float] = []
    malloc_ns: list[float] = []
    for _ in range(REPEATS):
        r = _C._bench_pool(iterations, live, max_bytes, SEED)
        pool_ns.append(r["pool_ns_per_op"])
        malloc_ns.append(r["malloc_ns_per_op"])
    return statistics.median(pool_ns), statistics.median(malloc_ns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations per setting")
    parser.add_argument("--iterations", type=int, default=None, help="ops per repeat")
    parser.add_argument("--cuda", action="store_true", help="also pool vs cudaMalloc/cudaFree")
    args = parser.parse_args(argv)
    iterations = args.iterations or (20_000 if args.quick else 200_000)

    print(f"ArenaPool vs system malloc: {iterations} allocate+free ops, median of {REPEATS}")
    header = (
        f"{'live blocks':>11} {'max size':>9} | {'pool ns/op':>10} {'malloc ns/op':>12} "
        f"| {'malloc/pool':>11}"
    )
    print(header)
    print("-" * len(header))
    for live, max_bytes in SETTINGS:
        pool_ns, malloc_ns = measure(iterations, live, max_bytes)
        print(
            f"{live:>11} {human_bytes(max_bytes):>9} | {pool_ns:>10.1f} {malloc_ns:>12.1f} "
            f"| {malloc_ns / pool_ns:>10.2f}x"
        )
    if args.cuda:
        measure_cuda(20_000 if args.quick else iterations)


def measure_cuda(iterations: int) -> None:
    """Pool over device memory vs cudaMalloc/cudaFree, same sequences, median of REPEATS."""
    if not hasattr(_C, "_bench_alloc_cuda") or _C.cuda_device_count()[0] == 0:
        raise SystemExit(f"--cuda needs a CUDA build and a GPU: {_C.cuda_device_count()[1]}")
    print(f"\nArenaPool over device memory vs cudaMalloc/cudaFree, median of {REPEATS}")
    print(f"{'live blocks':>11} {'max size':>9} | {'pool ns/op':>10} {'cuda ns/op':>12} | speedup")
    for live, max_bytes in ((16, 4 << 10), (256, 64 << 10), (1024, 1 << 20), (64, 16 << 20)):
        runs = [_C._bench_alloc_cuda(iterations, live, max_bytes, s) for s in range(REPEATS)]
        pool_ns = statistics.median(r["pool_ns_per_op"] for r in runs)
        cuda_ns = statistics.median(r["cuda_ns_per_op"] for r in runs)
        print(
            f"{live:>11} {human_bytes(max_bytes):>9} | {pool_ns:>10.1f} {cuda_ns:>12.1f} "
            f"| {cuda_ns / pool_ns:>6.1f}x"
        )


if __name__ == "__main__":
    main()
