// The DAG IR: layers, their hyperparameters and per-sample output shapes.
//
// Usage:
//   sn::Graph g;
//   g.add("data", "input", {}, {{"c", 3}, {"h", 32}, {"w", 32}});
//   g.add("conv1", "conv2d", {"data"}, {{"out_channels", 16}, {"kernel_h", 3}, {"kernel_w", 3}});
//   g.add("loss", "softmax_cross_entropy", {"fc"}, {});
//   g.check_complete();            // one input, one loss, nothing dangling
//   auto route = sn::forward_route(g);
//
// Every layer has exactly one output tensor, identified by the layer's index, so "tensor i"
// and "the output of layer i" are the same thing. Layers are stored in a topological order
// (an input always precedes its consumers); adding a layer either succeeds completely or
// throws GraphError and leaves the graph unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sn {

enum class LayerKind {
  kInput,
  kConv2d,
  kBatchNorm,
  kRelu,
  kMaxPool,
  kAvgPool,
  kGlobalAvgPool,
  kFc,
  kDropout,
  kLrn,
  kAdd,
  kConcat,
  kFlatten,
  kSoftmaxXent,
};

const char* kind_name(LayerKind kind);

// Per-sample shape (C, H, W); the batch dimension is chosen when a session is compiled.
struct Dims {
  int64_t c = 0, h = 0, w = 0;
  int64_t numel() const { return c * h * w; }
  bool operator==(const Dims& o) const { return c == o.c && h == o.h && w == o.w; }
};

// The union of every kind's hyperparameters, typed and validated.
struct LayerAttrs {
  Dims input_shape;                             // input
  int64_t out_channels = 0;                     // conv2d
  int64_t kernel_h = 1, kernel_w = 1;           // conv2d, pools
  int64_t stride_h = 1, stride_w = 1;           // conv2d, pools
  int64_t pad_h = 0, pad_w = 0;                 // conv2d, pools
  int64_t dilation_h = 1, dilation_w = 1;       // conv2d
  int64_t groups = 1;                           // conv2d
  bool bias = true;                             // conv2d, fc
  int64_t out_features = 0;                     // fc
  float p = 0.5f;                               // dropout
  float eps = 1e-5f, momentum = 0.1f;           // batchnorm
  int64_t size = 5;                             // lrn (channels)
  float alpha = 1e-4f, beta = 0.75f, k = 2.0f;  // lrn
};

struct Layer {
  std::string name;
  LayerKind kind = LayerKind::kInput;
  std::vector<int> inputs;  // layer indices
  LayerAttrs attrs;
  Dims out;  // per-sample output shape
};

// Hyperparameters as they arrive from Python: name -> number.
using AttrMap = std::map<std::string, double>;

struct LayerSpec {
  std::string name;
  std::string kind;
  std::vector<std::string> inputs;
  AttrMap attrs;
};

// A trainable parameter or persistent buffer of a layer, e.g. conv weight [co, ci/g, kh, kw].
struct ParamShape {
  std::string role;            // "weight", "bias", "gamma", "beta", "running_mean", "running_var"
  std::vector<int64_t> shape;  // dims, row-major
  bool trainable = true;
  int64_t numel() const;
};

class Graph {
 public:
  // Validates one layer whose inputs already exist and appends it; returns its index.
  int add(const std::string& name, const std::string& kind, const std::vector<std::string>& inputs,
          const AttrMap& attrs);
  // Builds a graph from specs listed in any order; detects missing inputs and cycles.
  static Graph from_specs(const std::vector<LayerSpec>& specs);
  // The whole-graph checks a session needs: exactly one input and one loss, every other
  // layer's output consumed by someone.
  void check_complete() const;

  const std::vector<Layer>& layers() const { return layers_; }
  const Layer& layer(int i) const { return layers_.at(static_cast<size_t>(i)); }
  int size() const { return static_cast<int>(layers_.size()); }
  int find(const std::string& name) const;  // -1 when absent
  const std::vector<int>& consumers(int i) const { return consumers_.at(static_cast<size_t>(i)); }
  int input_layer() const;  // -1 when absent
  int loss_layer() const;   // -1 when absent

 private:
  std::vector<Layer> layers_;
  std::vector<std::vector<int>> consumers_;
  std::map<std::string, int> index_;
};

// Parameters and persistent buffers of one layer, in a fixed order.
std::vector<ParamShape> param_shapes(const Graph& g, int layer);

// Algorithm 8 of the source (Sec. 8.3.1): depth-first from the input with per-layer
// counters of unfinished inputs, so that a join runs only after all of its inputs.
// The backward route is the reverse of this one.
std::vector<int> forward_route(const Graph& g);

}  // namespace sn
