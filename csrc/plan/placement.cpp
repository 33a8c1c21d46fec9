#include "memory/arena_pool.h"
#include "plan/interpreter.h"
#include "plan/passes.h"

namespace sn {
namespace {

int64_t workspace_bytes(const Algorithm& a) {
  return a.workspace_floats > 0 ? ArenaPool::rounded(a.workspace_floats * 4) : 0;
}

// The algorithm a step runs, given the largest block free when its workspace is placed.
int choose(const std::vector<Algorithm>& algos, AlgorithmChoice choice, int current,
           int64_t largest_free_bytes) {
  if (choice == AlgorithmChoice::kKeep || algos.size() == 1) return current;
  int best = 0;
  for (size_t a = 0; a < algos.size(); ++a) {
    const int64_t ws = workspace_bytes(algos[a]);
    if (choice == AlgorithmChoice::kFastest) return 0;
    if (choice == AlgorithmChoice::kFitFree && ws <= largest_free_bytes) return static_cast<int>(a);
    if (ws < workspace_bytes(algos[static_cast<size_t>(best)])) best = static_cast<int>(a);
  }
  return best;  // kSmallest, or kFitFree when none fits (the allocation then fails)
}

}  // namespace

bool place(MemoryPlan& plan, int64_t capacity_bytes, AlgorithmChoice choice,
           PlacementFailure* failure) {
  constexpr int64_t kUnlimitedHostBytes = int64_t{1} << 60;  // bytes: virtual
  ArenaPool pool(capacity_bytes, nullptr);
  ArenaPool host(plan.host_capacity_bytes > 0 ? plan.host_capacity_bytes : kUnlimitedHostBytes,
                 nullptr);
  MemoryInterpreter mem(pool, host, plan.tensors.size(), static_cast<size_t>(plan.num_events));
  plan.blocks.clear();
  std::vector<int64_t> open_block(plan.tensors.size(), -1);
  const int end_step = static_cast<int>(plan.train_steps.size());

  // The host slab has no room for op.tensor's host copy: describe it, return false.
  auto host_full = [&](const Op& op, const PlanStep& s, int index, bool eval) {
    const TensorInfo& info = plan.tensors[static_cast<size_t>(op.tensor)];
    if (failure)
      *failure = {index,
                  s.kind,
                  eval,
                  info.id.layer,
                  info.id.role,
                  op.size_bytes,
                  host.stats().in_use_bytes,
                  host.free_bytes(),
                  host.largest_free_bytes(),
                  true};
    return false;
  };

  auto run = [&](PlanStep& s, int index, bool eval) {
    const bool blocks = !eval;
    for (Op& op : s.ops) {
      if (op.kind == OpKind::kAlloc) {
        const TensorInfo& info = plan.tensors[static_cast<size_t>(op.tensor)];
        if (info.id.role == TensorRole::kWorkspace && s.kind != StepKind::kSetup) {
          const auto& algos = plan.algorithms[static_cast<size_t>(s.layer)];
          s.algorithm = choose(algos, choice, s.algorithm, pool.largest_free_bytes());
          op.size_bytes = workspace_bytes(algos[static_cast<size_t>(s.algorithm)]);
          if (op.size_bytes == 0) op.size_bytes = ArenaPool::kAlignmentBytes;
        }
        const int64_t off = mem.alloc(op);
        if (off == ArenaPool::kNoSpace) {
          if (failure) {
            *failure = {index,
                        s.kind,
                        eval,
                        info.id.layer,
                        info.id.role,
                        op.size_bytes,
                        pool.stats().in_use_bytes,
                        pool.free_bytes(),
                        pool.largest_free_bytes()};
          }
          return false;
        }
        op.offset_bytes = off;
        if (blocks) {
          open_block[static_cast<size_t>(op.tensor)] = static_cast<int64_t>(plan.blocks.size());
          plan.blocks.push_back({info.id, -1, off, op.size_bytes, index, end_step});
        }
      } else if (op.kind == OpKind::kAlias) {
        const TensorInfo& info = plan.tensors[static_cast<size_t>(op.tensor)];
        op.offset_bytes = mem.alias(op);
        if (blocks) {
          const int64_t src = open_block[static_cast<size_t>(op.source)];
          if (src >= 0) plan.blocks[static_cast<size_t>(src)].last_step = index;
          open_block[static_cast<size_t>(op.source)] = -1;
          open_block[static_cast<size_t>(op.tensor)] = static_cast<int64_t>(plan.blocks.size());
          BlockRecord b{info.id, -1, op.offset_bytes, op.size_bytes, index, end_step};
          b.alias_of = static_cast<int32_t>(src);
          plan.blocks.push_back(b);
        }
      } else if (op.kind == OpKind::kCopyOut) {
        const TensorInfo& info = plan.tensors[static_cast<size_t>(op.tensor)];
        op.size_bytes = info.size_bytes;
        op.offset_bytes = mem.copy_out(op, info.size_bytes);
        if (op.offset_bytes == ArenaPool::kNoSpace) return host_full(op, s, index, eval);
      } else if (op.kind == OpKind::kHostAlloc) {
        op.offset_bytes = mem.host_alloc(op);
        if (op.offset_bytes == ArenaPool::kNoSpace) return host_full(op, s, index, eval);
      } else if (op.kind == OpKind::kCopyIn) {
        mem.copy_in(op);
        op.offset_bytes = mem.host_offset(op.tensor);
      } else if (op.kind == OpKind::kWait) {
        mem.wait(op);
      } else if (op.kind == OpKind::kFree || op.kind == OpKind::kFreeAfter) {
        mem.free(op);
        const int64_t b = open_block[static_cast<size_t>(op.tensor)];
        if (blocks && b >= 0) {
          plan.blocks[static_cast<size_t>(b)].last_step = index;
          open_block[static_cast<size_t>(op.tensor)] = -1;
        }
      } else if (op.kind == OpKind::kCompute && op.compute != ComputeKind::kUpdate) {
        s.bytes_in_use = pool.stats().in_use_bytes;
        s.host_bytes_in_use = host.stats().in_use_bytes;
        s.live_tensors = mem.live_transient();
      }
    }
    return true;
  };

  if (!run(plan.setup, kSetupStep, false)) return false;
  plan.setup.bytes_in_use = pool.stats().in_use_bytes;
  mem.mark_resident();
  for (size_t i = 0; i < plan.train_steps.size(); ++i)
    if (!run(plan.train_steps[i], static_cast<int>(i), false)) return false;
  for (size_t i = 0; i < plan.eval_steps.size(); ++i)
    if (!run(plan.eval_steps[i], static_cast<int>(i), true)) return false;
  plan.high_water_bytes = pool.high_water_bytes();
  plan.host_peak_bytes = host.stats().peak_bytes;
  if (plan.host_capacity_bytes == 0)
    plan.host_capacity_bytes = host.high_water_bytes() > 0 ? host.high_water_bytes() : 0;
  plan.peak_bytes = plan.setup.bytes_in_use;
  plan.eval_peak_bytes = plan.setup.bytes_in_use;
  for (const PlanStep& s : plan.train_steps)
    plan.peak_bytes = std::max(plan.peak_bytes, s.bytes_in_use);
  for (const PlanStep& s : plan.eval_steps)
    plan.eval_peak_bytes = std::max(plan.eval_peak_bytes, s.bytes_in_use);
  plan.peak_bytes = std::max(plan.peak_bytes, plan.eval_peak_bytes);
  return true;
}

}  // namespace sn
