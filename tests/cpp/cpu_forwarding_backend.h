// A test backend that runs everything on the CPU backend; tests derive from it and
// override what they vary (algorithms, the copy bandwidth).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace sn_test {

class CpuForwardingBackend : public sn::Backend {
 public:
  CpuForwardingBackend() : cpu_(sn::make_cpu_backend()) {}
  int64_t aux_floats(const sn::Graph& g, int id, int64_t b) const override {
    return cpu_->aux_floats(g, id, b);
  }
  std::vector<sn::Algorithm> algorithms(const sn::Graph& g, int id, int64_t b) const override {
    return cpu_->algorithms(g, id, b);
  }
  sn::KernelReads backward_reads(const sn::Graph& g, int id) const override {
    return cpu_->backward_reads(g, id);
  }
  std::vector<int> in_place_inputs(const sn::Graph& g, int id) const override {
    return cpu_->in_place_inputs(g, id);
  }
  std::vector<int> pass_through_inputs(const sn::Graph& g, int id) const override {
    return cpu_->pass_through_inputs(g, id);
  }
  void forward(const sn::Graph& g, int id, sn::LayerIO& io, bool training) const override {
    cpu_->forward(g, id, io, training);
  }
  void backward(const sn::Graph& g, int id, sn::LayerIO& io) const override {
    cpu_->backward(g, id, io);
  }
  void sgd_update(int64_t n, const sn::SgdConfig& c, float* w, const float* dw,
                  float* v) const override {
    cpu_->sgd_update(n, c, w, dw, v);
  }
  void fill_zero(float* p, int64_t n) const override { cpu_->fill_zero(p, n); }
  bool all_finite(const float* p, int64_t n) const override { return cpu_->all_finite(p, n); }
  void copy(float* d, const float* s, int64_t n) const override { cpu_->copy(d, s, n); }

 protected:
  std::unique_ptr<sn::Backend> cpu_;
};

}  // namespace sn_test
