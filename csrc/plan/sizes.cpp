#include <algorithm>
#include <string>

#include "core/errors.h"
#include "memory/arena_pool.h"
#include "plan/passes.h"

namespace sn {
namespace {

// a * b, or ArgumentError when the product does not fit in int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out))
    throw ArgumentError(what + " overflows 64-bit byte counts (" + std::to_string(a) + " x " +
                        std::to_string(b) + "); use a smaller batch or input");
  return out;
}

int64_t rounded_floats(int64_t floats) {
  return floats > 0 ? ArenaPool::rounded(checked_mul(floats, 4, "a buffer")) : 0;
}

}  // namespace

Sizes::Sizes(const Graph& g, const Backend& be, int64_t batch_size) : batch(batch_size) {
  const auto n = static_cast<size_t>(g.size());
  params.resize(n);
  act.resize(n);
  aux.resize(n);
  algorithms.resize(n);
  for (int i = 0; i < g.size(); ++i) {
    const auto u = static_cast<size_t>(i);
    params[u] = param_shapes(g, i);
    const Layer& l = g.layer(i);
    const std::string what = "the output of layer '" + l.name + "'";
    const int64_t act_bytes = checked_mul(checked_mul(batch, l.out.numel(), what), 4, what);
    act[u] = l.kind == LayerKind::kSoftmaxXent ? 0 : ArenaPool::rounded(act_bytes);
    aux[u] = rounded_floats(be.aux_floats(g, i, batch));
    algorithms[u] = be.algorithms(g, i, batch);
    SN_ASSERT(!algorithms[u].empty(), "a backend offered no algorithm for a layer");
  }
  labels = ArenaPool::rounded(checked_mul(batch, 4, "the labels"));
}

int64_t Sizes::param_bytes(int layer, int index) const {
  const auto& p = params[static_cast<size_t>(layer)][static_cast<size_t>(index)];
  return ArenaPool::rounded(p.numel() * 4);
}

int64_t Sizes::workspace_bytes(int layer, int algorithm) const {
  const auto& a = algorithms[static_cast<size_t>(layer)];
  return rounded_floats(a[static_cast<size_t>(algorithm)].workspace_floats);
}

int64_t Sizes::min_workspace_bytes(int layer) const {
  const auto& a = algorithms[static_cast<size_t>(layer)];
  int64_t best = workspace_bytes(layer, 0);
  for (size_t i = 1; i < a.size(); ++i)
    best = std::min(best, workspace_bytes(layer, static_cast<int>(i)));
  return best;
}

int64_t Sizes::of(const TensorId& t) const {
  const auto u = static_cast<size_t>(t.layer);
  switch (t.role) {
    case TensorRole::kParam:
    case TensorRole::kParamGrad:
    case TensorRole::kMomentum:
      return param_bytes(t.layer, t.index);
    case TensorRole::kLabels:
      return labels;
    case TensorRole::kActivation:
    case TensorRole::kGradient:
      return act[u];
    case TensorRole::kAux:
      return aux[u];
    case TensorRole::kWorkspace:
      return workspace_bytes(t.layer, 0);
  }
  return 0;
}

}  // namespace sn
