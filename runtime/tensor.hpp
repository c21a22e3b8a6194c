// runtime/tensor.hpp — float32 tensors on 64-byte-aligned shared buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "graph/schema.hpp"

namespace noiseflow::runtime {

using graph::Shape;

/// Raised when a tensor's buffer cannot be allocated; what() names the shape and the bytes asked for.
struct OutOfMemory : std::bad_alloc {
  Shape shape;
  int64_t bytes = 0;
  std::string message;
  OutOfMemory(Shape s, int64_t b);
  const char* what() const noexcept override { return message.c_str(); }
};

/// Physical layout of a tensor's buffer. Logical shapes are always NCHW order; `nChw16c` stores a rank-4
/// tensor whose channel count is a multiple of 16 in blocks of 16 channels, innermost — the layout
/// oneDNN's AVX-512 convolutions run fastest on. Element (n, c, h, w) of an nChw16c tensor of shape
/// [N, C, H, W] lives at ((n * C/16 + c/16) * H * W + h * W + w) * 16 + c % 16 (Tensor::offset()).
enum class Layout : uint8_t { plain, nChw16c };

/// A float32 tensor: a logical shape (outermost first) over a shared,
/// 64-byte-aligned buffer. Copies share the buffer (a handle, like
/// std::shared_ptr); use clone() for a deep copy. The layout is plain
/// row-major unless the plan made it nChw16c (layout(), desc()); dnnl_memory()
/// wraps the buffer in its physical layout without copying. Code that reads
/// raw floats of a tensor that may be blocked asks for to_plain() or offset().
///
/// Const: no const member gives write access through this handle; a const tensor's oneDNN
/// memory is dnnl_read_memory(), for arguments oneDNN only reads. A copy, view() or prefix_view() is
/// another handle on the same buffer with full access, as copying a shared_ptr is: const guards the
/// access path, not the buffer (a read-only buffer would need a separate tensor type).
class Tensor {
 public:
  Tensor() = default;
  /// Allocates a zero-filled tensor.
  explicit Tensor(Shape shape);
  Tensor(Shape shape, const std::vector<float>& values);

  const Shape& shape() const { return shape_; }
  int rank() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : size_t(i)); }
  int64_t numel() const { return numel_; }
  bool empty() const { return !buf_; }

  float* data() { return buf_.get(); }
  const float* data() const { return buf_.get(); }
  std::span<float> span() { return {buf_.get(), size_t(numel_)}; }
  std::span<const float> span() const { return {buf_.get(), size_t(numel_)}; }
  float& operator[](int64_t i) { return buf_.get()[i]; }
  float operator[](int64_t i) const { return buf_.get()[i]; }

  /// A tensor with a shape and a layout but no buffer yet (planning); allocate() gives it one.
  static Tensor unallocated(Shape shape);
  /// Gives an unallocated tensor its zero-filled buffer (no-op when it has one).
  void allocate();

  /// The same buffer seen with another shape of the same element count (plain tensors only).
  Tensor view(Shape shape) const;
  /// A plain tensor of `shape` on the first elements of this buffer (numel(shape) <= numel()).
  Tensor prefix_view(Shape shape) const;

  Layout layout() const { return layout_; }
  bool blocked() const { return layout_ == Layout::nChw16c; }
  /// Sets how this handle reads its buffer (plan time, before the handle is copied). nChw16c needs rank 4
  /// and channels a multiple of 16 (can_block()).
  void set_layout(Layout l);
  /// Whether a shape can be stored nChw16c.
  static bool can_block(const Shape& s) { return s.size() == 4 && s[1] > 0 && s[1] % 16 == 0; }
  /// Buffer index of logical element (n, c, h, w) of a rank-4 tensor, whatever its layout.
  int64_t offset(int64_t n, int64_t c, int64_t h, int64_t w) const {
    if (layout_ == Layout::plain) return ((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w;
    return (((n * (shape_[1] >> 4) + (c >> 4)) * shape_[2] + h) * shape_[3] + w) * 16 + (c & 15);
  }
  /// A plain copy (converted from nChw16c when blocked; a deep copy otherwise).
  Tensor to_plain() const;
  /// Copies a plain tensor of the same shape into this one, converting to this tensor's layout.
  void assign_plain(const Tensor& plain);
  /// Copies the values of a tensor of the same shape, converting between layouts when they differ.
  void assign(const Tensor& src);
  /// oneDNN descriptor of the physical layout (plain_desc() or nChw16c).
  dnnl::memory::desc desc() const;
  /// A deep copy.
  Tensor clone() const;
  void fill(float v);
  void zero() { fill(0.f); }
  /// Copies values from a tensor of the same element count.
  void copy_from(const Tensor& other);
  /// True when both handles share one buffer.
  bool same_buffer(const Tensor& other) const { return buf_ == other.buf_; }

  /// Plain row-major oneDNN descriptor of this tensor (abcd... format).
  dnnl::memory::desc plain_desc() const;
  /// Plain descriptor viewing the tensor with `dims` (same element count).
  dnnl::memory::desc plain_desc(const dnnl::memory::dims& dims) const;
  /// A dnnl::memory over this buffer in its physical layout, desc() (no copy).
  dnnl::memory dnnl_memory(const dnnl::engine& eng) { return dnnl_memory(eng, desc()); }
  /// A dnnl::memory over this buffer seen through `md` (no larger than the buffer).
  dnnl::memory dnnl_memory(const dnnl::engine& eng, const dnnl::memory::desc& md);
  /// dnnl_memory() of a const tensor, for an argument oneDNN only reads (a primitive's src, weights or
  /// diff_dst, a reorder's source): dnnl::memory has no read-only form, so never pass it as a destination.
  dnnl::memory dnnl_read_memory(const dnnl::engine& eng) const { return dnnl_read_memory(eng, desc()); }
  dnnl::memory dnnl_read_memory(const dnnl::engine& eng, const dnnl::memory::desc& md) const;

  std::vector<float> to_vector() const { return {data(), data() + numel_}; }

 private:
  dnnl::memory wrap(const dnnl::engine& eng, const dnnl::memory::desc& md, float* p) const;

  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<float> buf_;
  Layout layout_ = Layout::plain;
};

/// Plain row-major format tag for a rank (a, ab, abc, abcd, abcde).
dnnl::memory::format_tag plain_tag(int rank);
/// Shape as oneDNN dims.
dnnl::memory::dims to_dims(const Shape& s);

}  // namespace noiseflow::runtime
