// The copy engine under stress (also run under ThreadSanitizer in CI): many iterations of
// copies with random delays, waited for in a different order than submitted; every copy
// lands, waits never return early, and drain() leaves nothing in flight.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "exec/copy_engine.h"

namespace {

using sn_test::check;

}  // namespace

int main() {
  constexpr int kEvents = 16;
  constexpr int kFloats = 4096;
  sn::CpuCopyEngine engine(kEvents, /*max_delay_us=*/50, /*seed=*/7);
  std::vector<std::vector<float>> src(kEvents, std::vector<float>(kFloats));
  std::vector<std::vector<float>> dst(kEvents, std::vector<float>(kFloats));
  std::mt19937 rng(3);
  for (int it = 0; it < 40; ++it) {
    engine.begin_iteration();
    for (int e = 0; e < kEvents; ++e) {
      for (int i = 0; i < kFloats; i += 97) src[e][static_cast<size_t>(i)] = float(it * 1000 + e);
      engine.submit(e, e % 2 ? sn::CopyDirection::kDeviceToHost : sn::CopyDirection::kHostToDevice,
                    dst[e].data(), src[e].data(), kFloats * 4);
    }
    std::vector<int> order(kEvents);
    for (int e = 0; e < kEvents; ++e) order[static_cast<size_t>(e)] = e;
    std::shuffle(order.begin(), order.end(), rng);
    for (int e : order) {
      engine.wait(e);
      const auto& d = dst[static_cast<size_t>(e)];
      check(d[0] == float(it * 1000 + e) && d[kFloats - 1 - (kFloats - 1) % 97] == d[0],
            "iteration " + std::to_string(it) + " event " + std::to_string(e) + " landed");
    }
  }
  engine.drain();
  check(engine.bytes_copied() == int64_t{40} * kEvents * kFloats * 4, "every byte copied once");
  return sn_test::report("test_copy_engine");
}
