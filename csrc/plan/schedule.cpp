#include <algorithm>

#include "plan/passes.h"

namespace sn {

Schedule training_schedule(const Graph& g) {
  const std::vector<int> route = forward_route(g);  // validates the graph
  Schedule s;
  s.reserve(2 * route.size());
  for (int id : route) s.push_back({id, StepKind::kForward});
  const int input = g.input_layer();
  for (auto it = route.rbegin(); it != route.rend(); ++it)
    if (*it != input) s.push_back({*it, StepKind::kBackward});
  return s;
}

Schedule inference_schedule(const Graph& g) {
  Schedule s;
  for (int id : forward_route(g)) s.push_back({id, StepKind::kForward});
  return s;
}

StepUses step_uses(const Graph& g, const Backend& be, const Sizes& sizes, const StepSpec& s) {
  StepUses u;
  const Layer& l = g.layer(s.layer);
  const auto self = static_cast<size_t>(s.layer);
  std::vector<int> inputs = l.inputs;  // add(x, x) reads x once
  std::sort(inputs.begin(), inputs.end());
  inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
  const TensorId act{s.layer, TensorRole::kActivation, 0};
  const TensorId aux{s.layer, TensorRole::kAux, 0};
  if (s.kind != StepKind::kBackward) {
    for (int in : inputs) u.reads.push_back({in, TensorRole::kActivation, 0});
    if (sizes.act[self] > 0) u.writes.push_back(act);
    if (sizes.aux[self] > 0) u.writes.push_back(aux);
    return u;
  }
  const KernelReads kr = be.backward_reads(g, s.layer);
  if (sizes.act[self] > 0) u.reads.push_back({s.layer, TensorRole::kGradient, 0});
  if (kr.inputs)
    for (int in : inputs) u.reads.push_back({in, TensorRole::kActivation, 0});
  if (kr.output && sizes.act[self] > 0) u.reads.push_back(act);
  if (sizes.aux[self] > 0) u.reads.push_back(aux);
  for (int in : inputs)
    if (in != g.input_layer()) u.writes.push_back({in, TensorRole::kGradient, 0});
  return u;
}

}  // namespace sn
