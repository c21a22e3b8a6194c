// nodes/kernels/isa.hpp — one way to pick SIMD code for noiseflow's own kernels (support code for the node
// library, not a node type).
//
//   kernel source:  template <...> [[gnu::always_inline]] body(...)        one source for every ISA
//   per ISA:        NOISEFLOW_FOR_EACH_ISA(KERNELS)                          KERNELS(avx512, target attribute)
//                                                                            KERNELS(avx2, ...), KERNELS(generic, )
//   at plan time:   pick(current_isa(), table_generic, table_avx2, table_avx512)
//
// A kernel file writes its entry points once, as a macro KERNELS(ISA, TARGET) that defines functions
// marked TARGET whose bodies are always-inline templates; NOISEFLOW_FOR_EACH_ISA instantiates it for
// AVX-512, AVX2+FMA and baseline x86-64, so every loop inside is compiled (and vectorised) for each. The
// choice among them is current_isa(): oneDNN's effective ISA — which honours ONEDNN_MAX_CPU_ISA /
// DNNL_MAX_CPU_ISA — intersected with what the CPU reports, so `ONEDNN_MAX_CPU_ISA=AVX2` (tools/bench
// --isa avx2) holds oneDNN's primitives and these kernels (Winograd, GroupNorm) to AVX2 alike.
#pragma once

#include <vector>

namespace noiseflow::nodes::kernels {

/// The instruction sets kernels are compiled for, narrowest first.
enum class Isa { generic, avx2, avx512 };

/// The widest kernels allowed in this process: oneDNN's effective ISA (which honours ONEDNN_MAX_CPU_ISA),
/// intersected with what the CPU reports. Decided once.
Isa current_isa();
/// "generic", "avx2" or "avx512".
const char* isa_name(Isa isa);
/// Every ISA up to current_isa(), narrowest first (tests run each kernel set on each).
std::vector<Isa> usable_isas();

/// The entry of a per-ISA table for `isa`.
template <class T>
const T& pick(Isa isa, const T& generic, const T& avx2, const T& avx512) {
  switch (isa) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return generic;
  }
}

}  // namespace noiseflow::nodes::kernels

#if defined(__x86_64__) && defined(__GNUC__)
/// Compiles a function for AVX-512 (F, DQ, BW, VL) with AVX2 and FMA.
#define NOISEFLOW_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
/// Compiles a function for AVX2 with FMA.
#define NOISEFLOW_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define NOISEFLOW_TARGET_AVX512
#define NOISEFLOW_TARGET_AVX2
#endif

/// KERNELS(ISA, TARGET) once per ISA: ISA is the Isa enumerator's name (avx512, avx2, generic), TARGET the
/// attribute that compiles a function for it (empty for the baseline).
#define NOISEFLOW_FOR_EACH_ISA(KERNELS)   \
  KERNELS(avx512, NOISEFLOW_TARGET_AVX512) \
  KERNELS(avx2, NOISEFLOW_TARGET_AVX2)     \
  KERNELS(generic, )
