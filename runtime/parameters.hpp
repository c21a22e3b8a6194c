// runtime/parameters.hpp — creating and initialising trainable parameters.
#pragma once

#include <cstdint>

#include "runtime/node.hpp"

namespace noiseflow::runtime {

/// Fills p.value by p.init, drawing from the random stream `key`
/// (deterministic: the same key gives the same values).
void initialize(Param& p, uint64_t key);

/// A parameter named `name` of `shape`, value initialised, gradient zeroed.
Param make_param(const std::string& name, const Shape& shape, graph::Init init, uint64_t seed);

}  // namespace noiseflow::runtime
