#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "memory/arena_pool.h"
#include "plan/memory_plan.h"

namespace sn::python {
void register_errors(pybind11::module_& m);
void register_build_info(pybind11::module_& m);
void register_graph(pybind11::module_& m);
void register_memory(pybind11::module_& m);
void register_plan(pybind11::module_& m);
void register_session(pybind11::module_& m);
void register_cuda(pybind11::module_& m);
void register_dlpack(pybind11::module_& m);
void register_compress(pybind11::module_& m);
void register_threads(pybind11::module_& m);

// An arena's counters as a Python dict (ArenaPool.stats and Session.memory_stats).
pybind11::dict pool_stats(const ArenaPool& pool);

// The plan as a Python dict (shared by plan_memory and Session.plan).
pybind11::dict plan_dict(const Graph& g, std::shared_ptr<const MemoryPlan> plan);
}  // namespace sn::python
