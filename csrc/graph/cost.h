// A FLOP model of each layer's forward pass: what recomputation costs, and the compute
// per byte that decides which outputs are worth keeping (checkpoints).
//
// Usage:
//   double f = sn::layer_forward_flops(graph, layer_id, /*batch=*/32);
#pragma once

#include <cstdint>

#include "graph/graph.h"

namespace sn {

// Multiply-adds count as two FLOPs; elementwise layers count a few FLOPs per element, so
// that a recomputed ReLU or BN is never free in the model.
double layer_forward_flops(const Graph& g, int layer, int64_t batch);

}  // namespace sn
