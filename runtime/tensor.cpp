#include "runtime/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "runtime/node.hpp"

namespace noiseflow::runtime {

OutOfMemory::OutOfMemory(Shape s, int64_t b)
    : shape(std::move(s)), bytes(b),
      message("cannot allocate a " + graph::shape_str(shape) + " tensor (" + std::to_string(bytes) + " bytes)") {}

namespace {
std::shared_ptr<float> alloc_floats(int64_t n, const Shape& shape) {
  size_t bytes = size_t(std::max<int64_t>(n, 1)) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  void* p = n > (int64_t(1) << 60) / int64_t(sizeof(float)) ? nullptr : std::aligned_alloc(64, bytes);
  if (!p) throw OutOfMemory(shape, n * int64_t(sizeof(float)));
  std::memset(p, 0, bytes);
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}
}  // namespace

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), numel_(graph::numel(shape_)) {
  for (auto d : shape_)
    if (d < 0) throw std::invalid_argument("Tensor: negative dimension in " + graph::shape_str(shape_));
  buf_ = alloc_floats(numel_, shape_);
}

Tensor Tensor::unallocated(Shape shape) {
  for (auto d : shape)
    if (d < 0) throw std::invalid_argument("Tensor: negative dimension in " + graph::shape_str(shape));
  Tensor t;
  t.numel_ = graph::numel(shape);
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::allocate() {
  if (!buf_) buf_ = alloc_floats(numel_, shape_);
}

Tensor::Tensor(Shape shape, const std::vector<float>& values) : Tensor(std::move(shape)) {
  if (int64_t(values.size()) != numel_)
    throw std::invalid_argument("Tensor: " + std::to_string(values.size()) + " values for shape " +
                                graph::shape_str(shape_));
  std::copy(values.begin(), values.end(), data());
}

Tensor Tensor::view(Shape shape) const {
  if (blocked()) throw std::invalid_argument("Tensor::view: an nChw16c tensor has no reshaped view");
  if (graph::numel(shape) != numel_)
    throw std::invalid_argument("Tensor::view: " + graph::shape_str(shape) + " does not fit " +
                                graph::shape_str(shape_));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::prefix_view(Shape shape) const {
  if (graph::numel(shape) > numel_)
    throw std::invalid_argument("Tensor::prefix_view: " + graph::shape_str(shape) + " does not fit " +
                                graph::shape_str(shape_));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.numel_ = graph::numel(t.shape_);
  t.layout_ = Layout::plain;
  return t;
}

void Tensor::set_layout(Layout l) {
  if (l == Layout::nChw16c && !can_block(shape_))
    throw std::invalid_argument("Tensor::set_layout: nChw16c needs [N, C, H, W] with C a multiple of 16, got " +
                                graph::shape_str(shape_));
  layout_ = l;
}

namespace {
// Copies `src` into `dst`, a tensor of the same shape in another layout (plain <-> nChw16c), with a oneDNN
// reorder between their descs on the process stream (the reorder primitive comes from oneDNN's cache).
void reorder(const Tensor& src, Tensor& dst) {
  if (src.numel() == 0) return;
  Engine& e = Engine::get();
  dnnl::memory from = src.dnnl_read_memory(e.engine), to = dst.dnnl_memory(e.engine);
  dnnl::reorder(from, to).execute(e.stream, from, to);
  e.stream.wait();
}
}  // namespace

Tensor Tensor::to_plain() const {
  if (!blocked()) return clone();
  Tensor t(shape_);
  reorder(*this, t);
  return t;
}

void Tensor::assign_plain(const Tensor& plain) {
  if (plain.shape_ != shape_ || plain.blocked())
    throw std::invalid_argument("Tensor::assign_plain: a plain " + graph::shape_str(shape_) + " tensor is needed, got " +
                                graph::shape_str(plain.shape_) + (plain.blocked() ? " (nChw16c)" : ""));
  if (blocked()) reorder(plain, *this);
  else copy_from(plain);
}

void Tensor::assign(const Tensor& src) {
  if (src.shape_ != shape_)
    throw std::invalid_argument("Tensor::assign: " + graph::shape_str(src.shape_) + " into " + graph::shape_str(shape_));
  if (src.layout_ == layout_) copy_from(src);
  else reorder(src, *this);
}

Tensor Tensor::clone() const {
  Tensor t(shape_);
  t.layout_ = layout_;
  if (numel_) std::memcpy(t.data(), data(), size_t(numel_) * sizeof(float));
  return t;
}

void Tensor::fill(float v) { std::fill(data(), data() + numel_, v); }

void Tensor::copy_from(const Tensor& other) {
  if (other.numel_ != numel_)
    throw std::invalid_argument("Tensor::copy_from: " + graph::shape_str(other.shape_) + " into " +
                                graph::shape_str(shape_));
  if (other.data() != data() && numel_) std::memcpy(data(), other.data(), size_t(numel_) * sizeof(float));
}

dnnl::memory::format_tag plain_tag(int rank) {
  using tag = dnnl::memory::format_tag;
  switch (rank) {
    case 1: return tag::a;
    case 2: return tag::ab;
    case 3: return tag::abc;
    case 4: return tag::abcd;
    case 5: return tag::abcde;
    case 6: return tag::abcdef;
  }
  throw std::invalid_argument("plain_tag: unsupported rank " + std::to_string(rank));
}

dnnl::memory::dims to_dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

dnnl::memory::desc Tensor::plain_desc() const { return plain_desc(to_dims(shape_.empty() ? Shape{1} : shape_)); }

dnnl::memory::desc Tensor::plain_desc(const dnnl::memory::dims& dims) const {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, plain_tag(int(dims.size())));
}

dnnl::memory::desc Tensor::desc() const {
  if (!blocked()) return plain_desc();
  return dnnl::memory::desc(to_dims(shape_), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nChw16c);
}

dnnl::memory Tensor::dnnl_memory(const dnnl::engine& eng, const dnnl::memory::desc& md) {
  return wrap(eng, md, data());
}

// oneDNN only reads a source argument; the cast is because dnnl::memory takes a void*.
dnnl::memory Tensor::dnnl_read_memory(const dnnl::engine& eng, const dnnl::memory::desc& md) const {
  return wrap(eng, md, const_cast<float*>(data()));
}

dnnl::memory Tensor::wrap(const dnnl::engine& eng, const dnnl::memory::desc& md, float* p) const {
  if (int64_t(md.get_size()) > std::max<int64_t>(numel_, 1) * int64_t(sizeof(float)) + 63)
    throw std::invalid_argument("Tensor::dnnl_memory: descriptor larger than the buffer");
  return dnnl::memory(md, eng, p);
}

}  // namespace noiseflow::runtime
