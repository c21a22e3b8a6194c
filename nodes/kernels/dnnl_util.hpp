// nodes/kernels/dnnl_util.hpp — the "reorder only if the descs differ" recipe and a node-owned
// user-mode scratchpad, shared by the oneDNN-backed nodes (conv2d, linear, concat, attention) and the
// Winograd kernels' working memory. Support code (nodes/kernels/), not a node type.
//
// A tensor reaches a node in its own layout (plain, or nChw16c where the executor keeps it blocked). A
// primitive built with format_tag::any may want another one (nChw16c, blocked or Winograd weights); a
// Staged tensor holds, once per node, the reorder primitive,
// and at run time either wraps the plain tensor directly (the descs match) or reorders into / out of a
// buffer in the primitive's layout. That buffer lives only during one call, so it comes from a per-thread
// staging slot shared by every node (a thread runs one primitive at a time): one set of staging buffers
// per thread instead of six activation-sized copies per layer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/tensor.hpp"

namespace noiseflow::nodes::kernels::dnnl_util {

/// The calling thread's staging buffer `slot`, at least `bytes` long (64-byte aligned; grows, never
/// shrinks). Valid until the next call for the same slot on the same thread.
inline void* staging_buffer(int slot, size_t bytes) {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  struct Slot {
    std::unique_ptr<void, Free> p;
    size_t size = 0;
  };
  thread_local Slot slots[8];
  Slot& sl = slots[slot];
  if (sl.size < bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    sl.p.reset(std::aligned_alloc(64, n));
    if (!sl.p) throw std::bad_alloc();
    sl.size = n;
  }
  return sl.p.get();
}

/// A tensor as one primitive argument wants it.
class Staged {
 public:
  Staged() = default;
  /// `user_md` is the tensor's own layout, `prim_md` what the primitive chose. `slot` (0..7) names
  /// the staging buffer used when they differ: arguments of one primitive call need distinct slots.
  Staged(const dnnl::memory::desc& user_md, const dnnl::memory::desc& prim_md, const dnnl::engine& eng, int slot)
      : user_md_(user_md), prim_md_(prim_md), slot_(slot) {
    if (user_md != prim_md) {
      prim_mem_ = dnnl::memory(prim_md, eng, DNNL_MEMORY_NONE);  // the buffer is bound at each use
      to_prim_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, user_md, eng, prim_md));
      to_user_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, prim_md, eng, user_md));
    }
  }

  bool reorders() const { return bool(prim_mem_); }

  /// An input argument: the tensor itself, or its reorder into the primitive's layout.
  dnnl::memory in(const runtime::Tensor& t, const dnnl::engine& eng, dnnl::stream& s) {
    dnnl::memory user = t.dnnl_read_memory(eng, user_md_);
    if (!reorders()) return user;
    bind();
    to_prim_.execute(s, user, prim_mem_);
    return prim_mem_;
  }

  /// An output argument: the tensor itself, or the buffer in the primitive's layout (then call finish()).
  dnnl::memory out(runtime::Tensor& t, const dnnl::engine& eng) {
    if (!reorders()) return t.dnnl_memory(eng, user_md_);
    bind();
    return prim_mem_;
  }

  /// After the primitive ran: reorders its output back into the tensor's layout when needed.
  void finish(runtime::Tensor& t, const dnnl::engine& eng, dnnl::stream& s) {
    if (!reorders()) return;
    dnnl::memory user = t.dnnl_memory(eng, user_md_);
    to_user_.execute(s, prim_mem_, user);
  }

 private:
  void bind() { prim_mem_.set_data_handle(staging_buffer(slot_, prim_md_.get_size())); }

  dnnl::memory::desc user_md_, prim_md_;
  int slot_ = 0;
  dnnl::memory prim_mem_;
  dnnl::reorder to_prim_, to_user_;
};

/// The user-mode scratchpad of a node's primitives. Like the staging buffers it lives on the calling
/// thread and is shared by every node (a thread runs one primitive at a time): Winograd convolutions
/// want 7-10 MB each, which per node would add ~400 MB to a unet-small training run.
class Scratchpad {
 public:
  /// Grows the size to fit `pd`'s scratchpad (call for every primitive_desc at plan time).
  void reserve(const dnnl::primitive_desc_base& pd) {
    size_ = std::max<size_t>(size_, pd.scratchpad_desc().get_size());
  }
  /// The scratchpad argument for `pd`, for one execution on the calling thread.
  dnnl::memory memory_for(const dnnl::primitive_desc_base& pd, const dnnl::engine& eng) const {
    return dnnl::memory(pd.scratchpad_desc(), eng, staging_buffer(kSlot, std::max<size_t>(size_, 64)));
  }

 private:
  static constexpr int kSlot = 7;  // Staged arguments use slots 0..5
  size_t size_ = 0;
};

/// A primitive_attr asking for a user-mode scratchpad.
inline dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

}  // namespace noiseflow::nodes::kernels::dnnl_util
