// runtime/tensor.hpp — float32 tensors on 64-byte-aligned shared buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "graph/schema.hpp"

namespace noiseflow::runtime {

using graph::Shape;

/// A float32 tensor: a logical shape (outermost first) over a shared,
/// 64-byte-aligned buffer. Copies share the buffer (a handle, like
/// std::shared_ptr); use clone() for a deep copy. The layout is plain
/// row-major; dnnl_memory() wraps the buffer without copying.
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

  /// The same buffer seen with another shape of the same element count.
  Tensor view(Shape shape) const;
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
  /// A dnnl::memory over this buffer (no copy).
  dnnl::memory dnnl_memory(const dnnl::engine& eng) const;
  dnnl::memory dnnl_memory(const dnnl::engine& eng, const dnnl::memory::desc& md) const;

  std::vector<float> to_vector() const { return {data(), data() + numel_}; }

 private:
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<float> buf_;
};

/// Plain row-major format tag for a rank (a, ab, abc, abcd, abcde).
dnnl::memory::format_tag plain_tag(int rank);
/// Shape as oneDNN dims.
dnnl::memory::dims to_dims(const Shape& s);

}  // namespace noiseflow::runtime
