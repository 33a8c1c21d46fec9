#include "plan/plan.h"

namespace sn {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kAlloc:
      return "alloc";
    case OpKind::kAlias:
      return "alias";
    case OpKind::kFree:
      return "free";
    case OpKind::kZero:
      return "zero";
    case OpKind::kCompute:
      return "compute";
    case OpKind::kCopyOut:
      return "copy_out";
    case OpKind::kCopyIn:
      return "copy_in";
    case OpKind::kWait:
      return "wait";
    case OpKind::kFreeAfter:
      return "free_after";
    case OpKind::kHostAlloc:
      return "host_alloc";
  }
  return "?";
}

const char* step_kind_name(StepKind k) {
  switch (k) {
    case StepKind::kSetup:
      return "setup";
    case StepKind::kForward:
      return "forward";
    case StepKind::kBackward:
      return "backward";
    case StepKind::kRecompute:
      return "recompute";
  }
  return "?";
}

}  // namespace sn
