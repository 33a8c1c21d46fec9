// Typed errors of the core. Two channels (STYLE.md 7):
//   - user and resource errors are exceptions below; the Python gateway maps GraphError to
//     superneurons.GraphError (a ValueError) and OutOfMemoryError to
//     superneurons.OutOfMemoryError (a MemoryError);
//   - broken internal invariants use SN_ASSERT, which throws InternalError (a bug report,
//     never an exit or abort).
//
// Usage:
//   if (groups < 1) throw sn::GraphError(layer_name, "groups must be >= 1, got " + ...);
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace sn {

// A malformed graph or bad hyperparameter. The message always starts with the layer name.
class GraphError : public std::invalid_argument {
 public:
  GraphError(const std::string& layer, const std::string& what)
      : std::invalid_argument("layer '" + layer + "': " + what), layer_(layer) {}
  const std::string& layer() const { return layer_; }

 private:
  std::string layer_;
};

// Bad argument that is not tied to one layer (batch size, array shapes handed to a session).
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A request that does not fit in the memory budget.
class OutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A non-finite loss, gradient or parameter found inside a training step; the Python
// gateway maps it to FloatingPointError.
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace sn

#define SN_ASSERT(cond, msg)                                                                   \
  do {                                                                                         \
    if (!(cond))                                                                               \
      throw ::sn::InternalError(std::string("internal error: ") + (msg) + " [" #cond "] at " + \
                                __FILE__ + ":" + std::to_string(__LINE__));                    \
  } while (0)
