// nodes/kernels/isa.cpp — current_isa(): oneDNN's effective ISA, intersected with the CPU's.
#include "nodes/kernels/isa.hpp"

#include <oneapi/dnnl/dnnl.hpp>

namespace noiseflow::nodes::kernels {
namespace {

Isa detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto has = [&](dnnl_cpu_isa_t want) { return (isa & unsigned(want)) == unsigned(want); };
  __builtin_cpu_init();
  if (has(dnnl_cpu_isa_avx512_core) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (has(dnnl_cpu_isa_avx2) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::generic;
}

}  // namespace

Isa current_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

std::vector<Isa> usable_isas() {
  std::vector<Isa> v{Isa::generic};
  if (current_isa() != Isa::generic) v.push_back(Isa::avx2);
  if (current_isa() == Isa::avx512) v.push_back(Isa::avx512);
  return v;
}

}  // namespace noiseflow::nodes::kernels
