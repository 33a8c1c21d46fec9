#include "graph/cost.h"

namespace sn {

double layer_forward_flops(const Graph& g, int id, int64_t batch) {
  const Layer& l = g.layer(id);
  const double out = static_cast<double>(batch) * static_cast<double>(l.out.numel());
  auto in_numel = [&](size_t i) {
    return static_cast<double>(batch) * static_cast<double>(g.layer(l.inputs[i]).out.numel());
  };
  switch (l.kind) {
    case LayerKind::kConv2d: {
      const double cin_g = static_cast<double>(g.layer(l.inputs[0]).out.c / l.attrs.groups);
      return 2.0 * out * cin_g * static_cast<double>(l.attrs.kernel_h * l.attrs.kernel_w);
    }
    case LayerKind::kFc:
      return 2.0 * out * static_cast<double>(g.layer(l.inputs[0]).out.numel());
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool:
      return out * static_cast<double>(l.attrs.kernel_h * l.attrs.kernel_w);
    case LayerKind::kGlobalAvgPool:
      return in_numel(0);
    case LayerKind::kBatchNorm:
      return 8.0 * out;  // two reductions and a scale-shift
    case LayerKind::kLrn:
      return out * (2.0 * static_cast<double>(l.attrs.size) + 10.0);
    case LayerKind::kSoftmaxXent:
      return 5.0 * in_numel(0);
    case LayerKind::kInput:
      return 0.0;
    default:  // relu, dropout, add, concat, flatten: one pass over the output
      return out;
  }
}

}  // namespace sn
