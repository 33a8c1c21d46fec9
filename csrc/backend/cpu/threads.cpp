// The kernels' thread count: one setting for OpenMP, with OpenBLAS held at one thread.
#include <cblas.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "backend/cpu/kernels.h"
#include "core/errors.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sn::cpu {
namespace {

constexpr int kUnset = 0;          // no thread count chosen yet
constexpr int kMaxThreads = 1024;  // threads; a larger value is a typo, not a machine
std::atomic<int> g_threads{kUnset};
std::once_flag g_blas_once;

// Note [Threads after fork]
// GNU OpenMP's thread pool does not survive fork(): a child whose parent has run a
// parallel region hangs in its first one (NAS trials and data loaders fork workers).
// The child therefore runs the kernels on one thread, as PyTorch does after a fork.
std::atomic<bool> g_forked{false};
void mark_forked() { g_forked.store(true, std::memory_order_relaxed); }
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, &mark_forked);

// OpenBLAS must not start threads of its own under ours (oversubscription), and its
// default is every core. Done before the first GEMM, whichever call comes first.
void hold_blas_at_one_thread() {
  std::call_once(g_blas_once, [] { scipy_openblas_set_num_threads(1); });
}

int check_threads(long value, const std::string& source) {
  if (value < 1 || value > kMaxThreads) {
    throw ArgumentError(source + " must be an integer in [1, " + std::to_string(kMaxThreads) +
                        "], got " + std::to_string(value));
  }
  return static_cast<int>(value);
}

int threads_from_environment() {
  const char* env = std::getenv("SUPERNEURONS_NUM_THREADS");
  if (env == nullptr || *env == '\0') return default_num_threads();
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(env, &end, 10);
  if (errno != 0 || end == env || *end != '\0') {
    throw ArgumentError(std::string("SUPERNEURONS_NUM_THREADS must be an integer in [1, ") +
                        std::to_string(kMaxThreads) + "], got '" + env + "'");
  }
  return check_threads(value, "SUPERNEURONS_NUM_THREADS");
}

}  // namespace

int default_num_threads() {
#if defined(_OPENMP)
  return std::max(1, omp_get_num_procs());  // respects the process's CPU affinity
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

int num_threads() {
  (void)g_atfork_registered;
  if (g_forked.load(std::memory_order_relaxed)) return 1;  // Note [Threads after fork]
  int threads = g_threads.load(std::memory_order_relaxed);
  if (threads == kUnset) {
    hold_blas_at_one_thread();
    threads = threads_from_environment();
    int expected = kUnset;
    // A concurrent set_num_threads wins over the environment.
    if (!g_threads.compare_exchange_strong(expected, threads)) threads = expected;
  }
#if !defined(_OPENMP)
  threads = 1;  // built without OpenMP: the kernels are serial
#endif
  return threads;
}

void set_num_threads(int threads) {
  hold_blas_at_one_thread();
  g_threads.store(check_threads(threads, "the number of threads"), std::memory_order_relaxed);
}

}  // namespace sn::cpu
