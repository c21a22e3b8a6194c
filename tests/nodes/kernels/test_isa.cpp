// tests/nodes/kernels/test_isa.cpp — the one choice of SIMD code (nodes/kernels/isa.hpp): current_isa()
// follows oneDNN's effective ISA, so ONEDNN_MAX_CPU_ISA=AVX2 holds noiseflow's kernels to AVX2 too.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "nodes/kernels/isa.hpp"

namespace kernels = noiseflow::nodes::kernels;

TEST_CASE("kernels: the ISA follows oneDNN's effective ISA") {
  const kernels::Isa isa = kernels::current_isa();
  CHECK((isa == kernels::Isa::generic || isa == kernels::Isa::avx2 || isa == kernels::Isa::avx512));
  CHECK(std::string(kernels::isa_name(isa)).size() > 0);
  // Never wider than what oneDNN may use.
  const auto onednn = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto has = [&](dnnl_cpu_isa_t want) { return (onednn & unsigned(want)) == unsigned(want); };
  if (!has(dnnl_cpu_isa_avx512_core)) CHECK(isa != kernels::Isa::avx512);
  if (!has(dnnl_cpu_isa_avx2)) CHECK(isa == kernels::Isa::generic);
  for (const char* env : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"})
    if (const char* v = std::getenv(env); v && std::string(v) == "AVX2") CHECK(isa != kernels::Isa::avx512);
  // Every ISA up to it, narrowest first.
  const auto usable = kernels::usable_isas();
  REQUIRE(!usable.empty());
  CHECK(usable.front() == kernels::Isa::generic);
  CHECK(usable.back() == isa);
  // pick() takes the table entry of the ISA.
  CHECK(kernels::pick(kernels::Isa::generic, 1, 2, 3) == 1);
  CHECK(kernels::pick(kernels::Isa::avx2, 1, 2, 3) == 2);
  CHECK(kernels::pick(kernels::Isa::avx512, 1, 2, 3) == 3);
}
