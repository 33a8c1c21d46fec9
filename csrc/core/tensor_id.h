// Tensor identity: which layer a tensor belongs to, what role it plays, and which one of
// that role it is (a layer's second parameter, say). Small, hashable, and open to new
// roles without renumbering anything.
//
// Usage:
//   sn::TensorId w{/*layer=*/3, sn::TensorRole::kParam, /*index=*/0};
//   std::unordered_map<sn::TensorId, int, sn::TensorIdHash> slot_of;
#pragma once

#include <cstdint>
#include <functional>

#include "core/hash.h"

namespace sn {

enum class TensorRole : uint8_t {
  kParam,       // index: the layer's parameter number (param_shapes order)
  kParamGrad,   // lives from the layer's backward step to its update
  kMomentum,    // optimizer state
  kLabels,      // one per session (layer = the loss layer)
  kActivation,  // a layer's output
  kGradient,    // the gradient of a layer's output
  kAux,         // state a layer saves in forward for its backward
  kWorkspace,   // scratch for one step
};
constexpr int kNumTensorRoles = 8;

// "a parameter", "workspace", ... (for messages)
inline const char* role_name(TensorRole r) {
  switch (r) {
    case TensorRole::kParam:
      return "a parameter";
    case TensorRole::kParamGrad:
      return "a parameter gradient";
    case TensorRole::kMomentum:
      return "momentum";
    case TensorRole::kLabels:
      return "the labels";
    case TensorRole::kActivation:
      return "the output activation";
    case TensorRole::kGradient:
      return "an output gradient";
    case TensorRole::kAux:
      return "state saved for backward";
    case TensorRole::kWorkspace:
      return "workspace";
  }
  return "?";
}

struct TensorId {
  int32_t layer = -1;
  TensorRole role = TensorRole::kActivation;
  int32_t index = 0;

  bool operator==(const TensorId& o) const {
    return layer == o.layer && role == o.role && index == o.index;
  }
  bool operator!=(const TensorId& o) const { return !(*this == o); }
};

struct TensorIdHash {
  size_t operator()(const TensorId& t) const {
    const uint64_t packed = (static_cast<uint64_t>(static_cast<uint32_t>(t.layer)) << 32) ^
                            (static_cast<uint64_t>(t.role) << 24) ^
                            static_cast<uint64_t>(static_cast<uint32_t>(t.index));
    return static_cast<size_t>(splitmix64(packed));
  }
};

}  // namespace sn
