// What the CUDA backend can see at run time.
#pragma once

#include <string>

namespace sn::cuda {

// Number of usable CUDA devices; 0 (with the driver's reason) when there are none.
int device_count(std::string* reason);

}  // namespace sn::cuda
