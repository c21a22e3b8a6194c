#include "runtime/parameters.hpp"

#include <cmath>

#include "runtime/random.hpp"

namespace noiseflow::runtime {

void initialize(Param& p, uint64_t key) {
  Tensor& v = p.value;
  const auto& init = p.init;
  switch (init.kind) {
    case graph::Init::Zeros: v.fill(0.f); break;
    case graph::Init::Ones: v.fill(1.f); break;
    case graph::Init::KaimingUniform:  // gain sqrt(2/(1+5)) * sqrt(3/fan_in) = 1/sqrt(fan_in)
    case graph::Init::UniformFanIn: {
      float b = float(1.0 / std::sqrt(double(std::max<int64_t>(init.fan_in, 1))));
      random::fill_uniform(v.data(), v.numel(), key, 0, -b, b);
      break;
    }
    case graph::Init::Normal: random::fill_normal(v.data(), v.numel(), key, 0, 0.f, float(init.scale)); break;
  }
}

Param make_param(const std::string& name, const Shape& shape, graph::Init init, uint64_t seed) {
  Param p{name, Tensor(shape), Tensor(shape), init};
  initialize(p, random::mix(seed, random::hash(name)));
  return p;
}

}  // namespace noiseflow::runtime
