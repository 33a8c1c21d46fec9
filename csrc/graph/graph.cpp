#include "graph/graph.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/errors.h"

namespace sn {
namespace {

struct KindInfo {
  LayerKind kind;
  const char* name;
  int min_inputs;  // -1: any number >= 1
  int max_inputs;
  std::vector<std::string> attrs;  // accepted hyperparameter names
};

const std::vector<KindInfo>& kinds() {
  static const std::vector<KindInfo> table = {
      {LayerKind::kInput, "input", 0, 0, {"c", "h", "w"}},
      {LayerKind::kConv2d,
       "conv2d",
       1,
       1,
       {"out_channels", "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w",
        "dilation_h", "dilation_w", "groups", "bias"}},
      {LayerKind::kBatchNorm, "batchnorm", 1, 1, {"eps", "momentum"}},
      {LayerKind::kRelu, "relu", 1, 1, {}},
      {LayerKind::kMaxPool,
       "maxpool",
       1,
       1,
       {"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"}},
      {LayerKind::kAvgPool,
       "avgpool",
       1,
       1,
       {"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"}},
      {LayerKind::kGlobalAvgPool, "global_avgpool", 1, 1, {}},
      {LayerKind::kFc, "fc", 1, 1, {"out_features", "bias"}},
      {LayerKind::kDropout, "dropout", 1, 1, {"p"}},
      {LayerKind::kLrn, "lrn", 1, 1, {"size", "alpha", "beta", "k"}},
      {LayerKind::kAdd, "add", 2, 2, {}},
      {LayerKind::kConcat, "concat", 1, -1, {}},
      {LayerKind::kFlatten, "flatten", 1, 1, {}},
      {LayerKind::kSoftmaxXent, "softmax_cross_entropy", 1, 1, {}},
  };
  return table;
}

const KindInfo& kind_info(const std::string& layer, const std::string& kind) {
  for (const auto& k : kinds())
    if (kind == k.name) return k;
  std::string known;
  for (const auto& k : kinds()) known += std::string(known.empty() ? "" : ", ") + k.name;
  throw GraphError(layer, "unknown layer kind '" + kind + "' (known: " + known + ")");
}

// Reads hyperparameters from the attribute map, checking names, integrality and ranges.
class AttrReader {
 public:
  AttrReader(const std::string& layer, const AttrMap& attrs) : layer_(layer), attrs_(attrs) {}

  int64_t integer(const std::string& key, int64_t fallback, int64_t min_value) const {
    auto it = attrs_.find(key);
    if (it == attrs_.end()) return fallback;
    double v = it->second;
    if (!std::isfinite(v) || v != std::floor(v))
      throw GraphError(layer_, key + " must be an integer, got " + std::to_string(v));
    constexpr double kLargest = 9007199254740992.0;  // 2^53: exact in a double
    if (std::fabs(v) > kLargest)
      throw GraphError(layer_, key + " is too large: " + std::to_string(v));
    auto i = static_cast<int64_t>(v);
    if (i < min_value)
      throw GraphError(
          layer_, key + " must be >= " + std::to_string(min_value) + ", got " + std::to_string(i));
    return i;
  }

  float real(const std::string& key, float fallback, double lo, double hi, bool lo_open,
             bool hi_open) const {
    auto it = attrs_.find(key);
    if (it == attrs_.end()) return fallback;
    double v = it->second;
    bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
      throw GraphError(layer_, key + " must be in " + (lo_open ? "(" : "[") + fmt(lo) + ", " +
                                   fmt(hi) + (hi_open ? ")" : "]") + ", got " + fmt(v));
    return static_cast<float>(v);
  }

  bool flag(const std::string& key, bool fallback) const {
    auto it = attrs_.find(key);
    if (it == attrs_.end()) return fallback;
    if (it->second != 0.0 && it->second != 1.0)
      throw GraphError(layer_, key + " must be 0 or 1 (a boolean)");
    return it->second != 0.0;
  }

 private:
  static std::string fmt(double v) {
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  const std::string& layer_;
  const AttrMap& attrs_;
};

std::string dims_str(const Dims& d) {
  return "(" + std::to_string(d.c) + ", " + std::to_string(d.h) + ", " + std::to_string(d.w) + ")";
}

// Output length of a sliding window; throws when the window does not fit.
int64_t window_out(const std::string& layer, const char* axis, int64_t in, int64_t kernel,
                   int64_t stride, int64_t pad, int64_t dilation) {
  int64_t span = dilation * (kernel - 1) + 1;
  if (in + 2 * pad < span)
    throw GraphError(layer, std::string("kernel spans ") + std::to_string(span) + " along " + axis +
                                " but the padded input is only " + std::to_string(in + 2 * pad) +
                                " (input " + std::to_string(in) + ", padding " +
                                std::to_string(pad) + ")");
  return (in + 2 * pad - span) / stride + 1;
}

void read_window(const std::string& name, const AttrReader& r, LayerAttrs& a, bool dilated) {
  a.kernel_h = r.integer("kernel_h", 1, 1);
  a.kernel_w = r.integer("kernel_w", 1, 1);
  a.stride_h = r.integer("stride_h", 1, 1);
  a.stride_w = r.integer("stride_w", 1, 1);
  a.pad_h = r.integer("pad_h", 0, 0);
  a.pad_w = r.integer("pad_w", 0, 0);
  if (dilated) {
    a.dilation_h = r.integer("dilation_h", 1, 1);
    a.dilation_w = r.integer("dilation_w", 1, 1);
  } else if (2 * a.pad_h > a.kernel_h || 2 * a.pad_w > a.kernel_w) {
    // A pooling window lying entirely in the padding has no defined value.
    throw GraphError(name, "pooling padding must be at most half the kernel, got padding (" +
                               std::to_string(a.pad_h) + ", " + std::to_string(a.pad_w) +
                               ") for kernel (" + std::to_string(a.kernel_h) + ", " +
                               std::to_string(a.kernel_w) + ")");
  }
}

// Validates hyperparameters and infers the output shape of one layer.
Layer make_layer(const std::string& name, const KindInfo& info, std::vector<int> inputs,
                 const std::vector<Dims>& in, const AttrMap& attrs) {
  for (const auto& kv : attrs)
    if (std::find(info.attrs.begin(), info.attrs.end(), kv.first) == info.attrs.end())
      throw GraphError(name,
                       std::string("unknown hyperparameter '") + kv.first + "' for " + info.name);
  Layer l;
  l.name = name;
  l.kind = info.kind;
  l.inputs = std::move(inputs);
  LayerAttrs& a = l.attrs;
  AttrReader r(name, attrs);
  switch (info.kind) {
    case LayerKind::kInput:
      for (const char* key : {"c", "h", "w"})
        if (!attrs.count(key)) throw GraphError(name, std::string("input needs '") + key + "'");
      a.input_shape = {r.integer("c", 0, 1), r.integer("h", 0, 1), r.integer("w", 0, 1)};
      l.out = a.input_shape;
      break;
    case LayerKind::kConv2d: {
      if (!attrs.count("out_channels")) throw GraphError(name, "conv2d needs out_channels");
      a.out_channels = r.integer("out_channels", 0, 1);
      read_window(name, r, a, true);
      a.groups = r.integer("groups", 1, 1);
      a.bias = r.flag("bias", true);
      if (in[0].c % a.groups != 0 || a.out_channels % a.groups != 0)
        throw GraphError(name, "groups=" + std::to_string(a.groups) +
                                   " must divide both input channels (" + std::to_string(in[0].c) +
                                   ") and out_channels (" + std::to_string(a.out_channels) + ")");
      l.out = {a.out_channels,
               window_out(name, "height", in[0].h, a.kernel_h, a.stride_h, a.pad_h, a.dilation_h),
               window_out(name, "width", in[0].w, a.kernel_w, a.stride_w, a.pad_w, a.dilation_w)};
      break;
    }
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool:
      read_window(name, r, a, false);
      l.out = {in[0].c, window_out(name, "height", in[0].h, a.kernel_h, a.stride_h, a.pad_h, 1),
               window_out(name, "width", in[0].w, a.kernel_w, a.stride_w, a.pad_w, 1)};
      break;
    case LayerKind::kBatchNorm:
      a.eps = r.real("eps", 1e-5f, 0.0, 1.0, true, false);
      a.momentum = r.real("momentum", 0.1f, 0.0, 1.0, false, false);
      l.out = in[0];
      break;
    case LayerKind::kRelu:
      l.out = in[0];
      break;
    case LayerKind::kGlobalAvgPool:
      l.out = {in[0].c, 1, 1};
      break;
    case LayerKind::kFc:
      if (!attrs.count("out_features")) throw GraphError(name, "fc needs out_features");
      a.out_features = r.integer("out_features", 0, 1);
      a.bias = r.flag("bias", true);
      l.out = {a.out_features, 1, 1};
      break;
    case LayerKind::kDropout:
      a.p = r.real("p", 0.5f, 0.0, 1.0, false, true);
      l.out = in[0];
      break;
    case LayerKind::kLrn:
      a.size = r.integer("size", 5, 1);
      if (a.size % 2 == 0)
        throw GraphError(name, "lrn size must be odd, got " + std::to_string(a.size));
      a.alpha = r.real("alpha", 1e-4f, 0.0, INFINITY, false, true);
      a.beta = r.real("beta", 0.75f, 0.0, INFINITY, true, true);
      a.k = r.real("k", 2.0f, 0.0, INFINITY, true, true);
      l.out = in[0];
      break;
    case LayerKind::kAdd:
      if (!(in[0] == in[1]))
        throw GraphError(name, "add needs inputs of the same shape, got " + dims_str(in[0]) +
                                   " and " + dims_str(in[1]));
      l.out = in[0];
      break;
    case LayerKind::kConcat: {
      int64_t c = 0;
      for (const auto& d : in) {
        if (d.h != in[0].h || d.w != in[0].w)
          throw GraphError(name, "concat needs inputs of the same height and width, got " +
                                     dims_str(in[0]) + " and " + dims_str(d));
        c += d.c;
      }
      l.out = {c, in[0].h, in[0].w};
      break;
    }
    case LayerKind::kFlatten:
      l.out = {in[0].numel(), 1, 1};
      break;
    case LayerKind::kSoftmaxXent:
      if (in[0].numel() < 2)
        throw GraphError(name, "softmax_cross_entropy needs at least 2 classes, got " +
                                   std::to_string(in[0].numel()));
      l.out = {1, 1, 1};
      break;
  }
  // Per-sample sizes stay far below int64 overflow even after multiplying by a batch.
  constexpr int64_t kMaxElements = int64_t{1} << 40;  // elements per sample
  const double elements =
      static_cast<double>(l.out.c) * static_cast<double>(l.out.h) * static_cast<double>(l.out.w);
  if (elements > static_cast<double>(kMaxElements))
    throw GraphError(name, "output shape " + dims_str(l.out) + " is too large (over 2^40 " +
                               "elements per sample)");
  return l;
}

}  // namespace

const char* kind_name(LayerKind kind) {
  for (const auto& k : kinds())
    if (k.kind == kind) return k.name;
  return "?";
}

int64_t ParamShape::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int Graph::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

int Graph::add(const std::string& name, const std::string& kind,
               const std::vector<std::string>& inputs, const AttrMap& attrs) {
  if (name.empty()) throw GraphError(name, "layer name must not be empty");
  if (index_.count(name)) throw GraphError(name, "a layer with this name already exists");
  const KindInfo& info = kind_info(name, kind);
  int n_in = static_cast<int>(inputs.size());
  if (n_in < info.min_inputs || (info.max_inputs >= 0 && n_in > info.max_inputs)) {
    std::string want = info.max_inputs < 0 ? "at least " + std::to_string(info.min_inputs)
                                           : std::to_string(info.min_inputs);
    throw GraphError(
        name, std::string(info.name) + " takes " + want + " input(s), got " + std::to_string(n_in));
  }
  std::vector<int> ids;
  std::vector<Dims> dims;
  for (const auto& in : inputs) {
    int id = find(in);
    if (id < 0) throw GraphError(name, "input '" + in + "' does not exist");
    if (layers_[static_cast<size_t>(id)].kind == LayerKind::kSoftmaxXent)
      throw GraphError(name, "input '" + in + "' is a loss; a loss has no output to consume");
    ids.push_back(id);
    dims.push_back(layers_[static_cast<size_t>(id)].out);
  }
  Layer l = make_layer(name, info, ids, dims, attrs);
  if (l.kind == LayerKind::kInput && input_layer() >= 0)
    throw GraphError(name, "the graph already has an input layer '" +
                               layers_[static_cast<size_t>(input_layer())].name + "'");
  if (l.kind == LayerKind::kSoftmaxXent && loss_layer() >= 0)
    throw GraphError(name, "the graph already has a loss layer '" +
                               layers_[static_cast<size_t>(loss_layer())].name + "'");
  // Validation is complete: commit.
  int id = size();
  layers_.push_back(std::move(l));
  consumers_.emplace_back();
  index_[name] = id;
  for (int in : ids) {
    auto& c = consumers_[static_cast<size_t>(in)];
    if (std::find(c.begin(), c.end(), id) == c.end()) c.push_back(id);
  }
  return id;
}

Graph Graph::from_specs(const std::vector<LayerSpec>& specs) {
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!by_name.emplace(specs[i].name, i).second)
      throw GraphError(specs[i].name, "a layer with this name already exists");
  }
  // Kahn's algorithm taking the lowest spec index first: specs already in a topological
  // order keep it (so a graph round-trips through to_dict/from_dict unchanged).
  std::vector<int> pending(specs.size(), 0);
  std::vector<std::vector<size_t>> users(specs.size());
  std::vector<std::vector<size_t>> producers(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    for (const auto& in : specs[i].inputs) {
      auto it = by_name.find(in);
      if (it == by_name.end()) throw GraphError(specs[i].name, "input '" + in + "' does not exist");
      ++pending[i];
      users[it->second].push_back(i);
      producers[i].push_back(it->second);
    }
  }
  std::vector<size_t> order;
  std::set<size_t> ready;
  for (size_t i = 0; i < specs.size(); ++i)
    if (pending[i] == 0) ready.insert(i);
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t u : users[i])
      if (--pending[u] == 0) ready.insert(u);
  }
  if (order.size() != specs.size()) {
    // Walk backwards through unfinished producers until a layer repeats: it lies on a
    // cycle (a layer merely downstream of one would not be revisited).
    size_t at = 0;
    while (pending[at] == 0) ++at;
    std::vector<bool> seen(specs.size(), false);
    while (!seen[at]) {
      seen[at] = true;
      for (size_t p : producers[at])
        if (pending[p] > 0) {
          at = p;
          break;
        }
    }
    throw GraphError(specs[at].name, "the graph has a cycle through this layer");
  }
  Graph g;
  for (size_t i : order) g.add(specs[i].name, specs[i].kind, specs[i].inputs, specs[i].attrs);
  return g;
}

int Graph::input_layer() const {
  for (int i = 0; i < size(); ++i)
    if (layers_[static_cast<size_t>(i)].kind == LayerKind::kInput) return i;
  return -1;
}

int Graph::loss_layer() const {
  for (int i = 0; i < size(); ++i)
    if (layers_[static_cast<size_t>(i)].kind == LayerKind::kSoftmaxXent) return i;
  return -1;
}

void Graph::check_complete() const {
  if (input_layer() < 0) throw GraphError("<graph>", "the graph has no input layer");
  if (loss_layer() < 0)
    throw GraphError("<graph>", "the graph has no loss; call softmax_cross_entropy(logits)");
  for (int i = 0; i < size(); ++i) {
    const Layer& l = layers_[static_cast<size_t>(i)];
    if (l.kind != LayerKind::kSoftmaxXent && consumers(i).empty())
      throw GraphError(l.name, "its output is never used (every layer must lead to the loss)");
  }
}

std::vector<ParamShape> param_shapes(const Graph& g, int id) {
  const Layer& l = g.layer(id);
  const LayerAttrs& a = l.attrs;
  std::vector<ParamShape> out;
  switch (l.kind) {
    case LayerKind::kConv2d: {
      int64_t c_in = g.layer(l.inputs[0]).out.c;
      out.push_back({"weight", {a.out_channels, c_in / a.groups, a.kernel_h, a.kernel_w}, true});
      if (a.bias) out.push_back({"bias", {a.out_channels}, true});
      break;
    }
    case LayerKind::kFc: {
      int64_t in = g.layer(l.inputs[0]).out.numel();
      out.push_back({"weight", {a.out_features, in}, true});
      if (a.bias) out.push_back({"bias", {a.out_features}, true});
      break;
    }
    case LayerKind::kBatchNorm: {
      int64_t c = l.out.c;
      out.push_back({"gamma", {c}, true});
      out.push_back({"beta", {c}, true});
      out.push_back({"running_mean", {c}, false});
      out.push_back({"running_var", {c}, false});
      break;
    }
    default:
      break;
  }
  return out;
}

std::vector<int> forward_route(const Graph& g) {
  g.check_complete();
  std::vector<int> waiting(static_cast<size_t>(g.size()));
  for (int i = 0; i < g.size(); ++i) {
    // Count distinct producers: add(x, x) waits for x once.
    std::set<int> distinct(g.layer(i).inputs.begin(), g.layer(i).inputs.end());
    waiting[static_cast<size_t>(i)] = static_cast<int>(distinct.size());
  }
  std::vector<int> route, stack = {g.input_layer()};
  while (!stack.empty()) {
    int id = stack.back();
    stack.pop_back();
    route.push_back(id);
    const auto& users = g.consumers(id);
    // Push in reverse so the first consumer is visited first (depth-first).
    for (auto it = users.rbegin(); it != users.rend(); ++it)
      if (--waiting[static_cast<size_t>(*it)] == 0) stack.push_back(*it);
  }
  SN_ASSERT(static_cast<int>(route.size()) == g.size(), "route does not cover the graph");
  return route;
}

}  // namespace sn
