// The C++ tests' one assertion: check(ok, what) prints a failure and counts it; main
// returns report("name").
#pragma once

#include <cstdio>
#include <string>

namespace sn_test {

inline int failures = 0;

inline void check(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what.c_str());
    ++failures;
  }
}

// Exit status of a test binary: 0 when every check passed.
inline int report(const char* name) {
  if (failures == 0) std::printf("%s: all checks passed\n", name);
  return failures == 0 ? 0 : 1;
}

}  // namespace sn_test
