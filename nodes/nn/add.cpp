// nodes/nn/add.cpp — y = a + b with broadcasting; backward sums the gradient over broadcast dimensions.
//
// Two alignments: "trailing" (numpy rules: shapes aligned at their last dimension) and "leading" (b's
// dimensions match a's first ones: [N, C] adds per channel onto [N, C, H, W], the UNet's time-embedding
// add). At plan time the broadcast is reduced to a few coalesced dimensions (e.g. [N*C, H*W] with b
// strides [1, 0]), so the loops run over long contiguous rows.
//
// Layouts (uniform): same-shape operands share y's layout, plain or nChw16c, so the flat loop serves both.
// With y nChw16c and one operand constant over H and W (a per-channel or per-sample bias such as [N, C]
// leading, stored plain), a kernel runs over y's channel blocks with the 16 bias values in registers.
// Any other mix with a blocked tensor goes through plain copies.
#include <algorithm>
#include <cstring>
#include <vector>

#include "nodes/kernels/nchw16c.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace nchw16c = kernels::nchw16c;

// a's and b's shapes padded to the same rank: trailing prepends 1s to the shorter one, leading appends
// 1s to b (which must not be longer than a).
bool pad_shapes(const Shape& a, const Shape& b, bool leading, Shape& pa, Shape& pb) {
  const size_t r = std::max(a.size(), b.size());
  if (leading && b.size() > a.size()) return false;
  pa = a, pb = b;
  if (leading) {
    pb.resize(r, 1);
  } else {
    pa.insert(pa.begin(), r - a.size(), 1);
    pb.insert(pb.begin(), r - b.size(), 1);
  }
  return true;
}

// Contiguous strides of `s`, 0 where the dimension is 1 (broadcast).
std::vector<int64_t> broadcast_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 0);
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = s[i] == 1 ? 0 : acc;
    acc *= s[i];
  }
  return st;
}

// Sum of a contiguous row, float SIMD lanes accumulated into double per chunk.
inline double row_sum(const float* p, int64_t m) {
  double s = 0;
  for (int64_t o = 0; o < m; o += 1024) {
    const int64_t e = std::min(m, o + 1024);
    float c = 0.f;
#pragma omp simd reduction(+ : c)
    for (int64_t i = o; i < e; ++i) c += p[i];
    s += c;
  }
  return s;
}

struct Add final : Node {
  static Schema schema() {
    return Schema("nn.add", "Elementwise sum y = a + b with broadcasting (numpy trailing rules, or b aligned with a's leading dimensions)")
        .input("a", "any shape")
        .input("b", "broadcastable against a")
        .output("y", "the broadcast shape of a and b")
        .attr_string("align", "trailing", {"trailing", "leading"},
                     "trailing: numpy rules (shapes aligned at the last dimension); leading: b's dimensions "
                     "match a's first ones ([N, C] onto [N, C, H, W] adds per channel)")
        .differentiable({"a", "b"})
        .backward_reads({})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) {
          const Shape &a = c.input("a"), &b = c.input("b");
          const std::string align = c.attr_string("align");
          const bool leading = align == "leading";
          Shape pa, pb;
          if (!pad_shapes(a, b, leading, pa, pb))
            c.fail("b", "b " + graph::shape_str(b) + " has more dimensions than a " + graph::shape_str(a) +
                            " (align leading)");
          Shape y(pa.size());
          for (size_t i = 0; i < pa.size(); ++i) {
            if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1)
              c.fail("b", "cannot broadcast a " + graph::shape_str(a) + " and b " + graph::shape_str(b) + " (align " +
                              align + "): dimension " + std::to_string(i) + " is " + std::to_string(pa[i]) +
                              " vs " + std::to_string(pb[i]));
            y[i] = std::max(pa[i], pb[i]);
          }
          if (y.empty()) y = {1};
          c.set_output("y", y);
        });
  }

  // Add (numpy broadcasting); align leading first Unsqueezes b at its end.
  static void onnx(onnx::OpContext& c) {
    std::string b = c.input("b");
    const size_t ra = c.input_shape("a").size(), rb = c.input_shape("b").size();
    if (c.attr_string("align") == "leading" && rb < ra) {
      // b's dimensions match a's first ones: append 1s so numpy broadcasting lines them up.
      std::vector<int64_t> axes;
      for (size_t i = rb; i < ra; ++i) axes.push_back(int64_t(i));
      b = c.add_temp("b_leading", "Unsqueeze", {b, c.ints(axes)});
    }
    c.add("Add", {c.input("a"), b}, {c.output()});
  }

  void plan(Context& ctx) override {
    const Tensor &a = ctx.input("a"), &b = ctx.input("b"), &y = ctx.output("y");
    Shape pa, pb;
    pad_shapes(a.shape(), b.shape(), ctx.attr_string("align") == "leading", pa, pb);
    const auto sa = broadcast_strides(pa), sb = broadcast_strides(pb);
    // Drop size-1 output dimensions; merge neighbours with the same broadcast pattern.
    for (size_t i = 0; i < pa.size(); ++i) {
      const int64_t d = std::max(pa[i], pb[i]);
      if (d == 1) continue;
      const bool ba = sa[i] == 0, bb = sb[i] == 0;
      if (!dims_.empty() && (sa_.back() == 0) == ba && (sb_.back() == 0) == bb) {
        dims_.back() *= d;
        sa_.back() = sa[i];
        sb_.back() = sb[i];
      } else {
        dims_.push_back(d);
        sa_.push_back(sa[i]);
        sb_.push_back(sb[i]);
      }
    }
    if (dims_.empty()) dims_ = {1}, sa_ = {1}, sb_ = {1};
    so_.assign(dims_.size(), 1);
    for (size_t i = dims_.size() - 1; i-- > 0;) so_[i] = so_[i + 1] * dims_[i + 1];
    total_ = so_[0] * dims_[0];

    // A blocked tensor with H = W = 1 has the plain layout's offsets.
    auto plain_offsets = [](const Tensor& t) { return !t.blocked() || t.dim(2) * t.dim(3) == 1; };
    auto hw_constant = [](const Shape& p) { return p.size() == 4 && p[2] == 1 && p[3] == 1; };
    const bool a_full = a.shape() == y.shape(), b_full = b.shape() == y.shape();
    if ((plain_offsets(a) && plain_offsets(b) && plain_offsets(y)) || (a_full && b_full)) {
      mode_ = Mode::flat;
    } else if (y.blocked() && ((a_full && hw_constant(pb)) || (b_full && hw_constant(pa)))) {
      mode_ = Mode::channel_bias;
      bias_is_a_ = !a_full;
      const Shape& pq = bias_is_a_ ? pa : pb;
      bias_sn_ = pq[0] > 1 ? pq[1] : 0;
      bias_sc_ = pq[1] > 1 ? 1 : 0;
      chan_sums_.assign(size_t(y.dim(0) * y.dim(1)), 0.0);
      bias_sums_.assign(size_t((bias_is_a_ ? a : b).numel()), 0.0);
    } else {
      mode_ = Mode::staged;
    }
  }

  void forward(Context& ctx) override {
    const Tensor &a = ctx.input("a"), &b = ctx.input("b");
    Tensor& y = ctx.output("y");
    if (mode_ == Mode::flat) {
      add_flat(a.data(), b.data(), y.data());
    } else if (mode_ == Mode::channel_bias) {
      add_channel_bias(bias_is_a_ ? b : a, bias_is_a_ ? a : b, y);
    } else {
      const Tensor pa = a.blocked() ? a.to_plain() : a, pb = b.blocked() ? b.to_plain() : b;
      Tensor py = y.blocked() ? Tensor(y.shape()) : y;
      add_flat(pa.data(), pb.data(), py.data());
      if (y.blocked()) y.assign_plain(py);
    }
  }

  void backward(Context& ctx) override {
    const Tensor& dy = ctx.grad_output("y");
    if (mode_ == Mode::channel_bias) {
      const char* full = bias_is_a_ ? "b" : "a";
      const char* bias = bias_is_a_ ? "a" : "b";
      if (ctx.wants_grad(full)) std::memcpy(ctx.grad_input(full).data(), dy.data(), size_t(total_) * sizeof(float));
      if (ctx.wants_grad(bias)) channel_bias_grad(dy, ctx.grad_input(bias));
      return;
    }
    const Tensor pdy = mode_ == Mode::staged && dy.blocked() ? dy.to_plain() : dy;
    for (const char* name : {"a", "b"}) {
      if (!ctx.wants_grad(name)) continue;
      Tensor& g = ctx.grad_input(name);
      const auto& st = name[0] == 'a' ? sa_ : sb_;
      if (mode_ == Mode::staged && g.blocked()) {
        Tensor pg(g.shape());
        reduce_into(pdy.data(), st, pg.data(), pg.numel());
        g.assign_plain(pg);
      } else {
        reduce_into(pdy.data(), st, g.data(), g.numel());
      }
    }
  }

 private:
  // Which loops run (chosen at plan time from the tensors' layouts).
  enum class Mode {
    flat,          // every tensor plain (or same-shape operands sharing y's layout): coalesced rows
    channel_bias,  // y nChw16c, one operand of y's shape, the other constant over H and W
    staged,        // anything else with a blocked tensor: the flat loops on plain copies
  };

  // y = a + b over plain (or identically laid out) buffers, with the coalesced dims and strides.
  void add_flat(const float* a, const float* b, float* y) const {
    const int64_t d = int64_t(dims_.size()), inner = dims_.back(), outer = total_ / inner;
    const int64_t ia = sa_.back(), ib = sb_.back();
    const int64_t* dims = dims_.data();
    const int64_t *sa = sa_.data(), *sb = sb_.data();

#pragma omp parallel for schedule(static) if (total_ >= 65536)
    for (int64_t o = 0; o < outer; ++o) {
      // Offsets of row o in a and b.
      int64_t oa = 0, ob = 0, rest = o;
      for (int64_t k = d - 2; k >= 0; --k) {
        const int64_t c = rest % dims[k];
        rest /= dims[k];
        oa += c * sa[k];
        ob += c * sb[k];
      }
      const float* ap = a + oa;
      const float* bp = b + ob;
      float* yp = y + o * inner;
      if (ia && ib) {
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) yp[i] = ap[i] + bp[i];
      } else if (ia) {
        const float bv = *bp;
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) yp[i] = ap[i] + bv;
      } else {
        const float av = *ap;
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) yp[i] = av + bp[i];
      }
    }
  }

  // y = full + bias over y's nChw16c channel blocks; bias element (n, c) is at n * bias_sn_ + c * bias_sc_.
  void add_channel_bias(const Tensor& full, const Tensor& bias, Tensor& y) const {
    using nchw16c::kLanes;
    const int64_t cb = y.dim(1) / kLanes, hw = y.dim(2) * y.dim(3), blocks = y.dim(0) * cb;
    const int64_t sn = bias_sn_, sc = bias_sc_;
    const float* fp = full.data();
    const float* q = bias.data();
    float* yp = y.data();

#pragma omp parallel for schedule(static) if (total_ >= 65536)
    for (int64_t k = 0; k < blocks; ++k) {
      const int64_t n = k / cb, c0 = (k % cb) * kLanes;
      float bv[kLanes];
      for (int l = 0; l < kLanes; ++l) bv[l] = q[n * sn + (c0 + l) * sc];
      const float* src = fp + k * hw * kLanes;
      float* dst = yp + k * hw * kLanes;
      for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) dst[i * kLanes + l] = src[i * kLanes + l] + bv[l];
    }
  }

  // Gradient of the channel_bias operand: per-(n, c) sums of dy over H*W, then summed over what the bias
  // broadcasts (n and/or c).
  void channel_bias_grad(const Tensor& dy, Tensor& g) {
    using nchw16c::kLanes;
    const int64_t c = dy.dim(1), cb = c / kLanes, hw = dy.dim(2) * dy.dim(3), blocks = dy.dim(0) * cb;
    const float* dyp = dy.data();
    double* sums = chan_sums_.data();  // [N, C]

#pragma omp parallel for schedule(static) if (total_ >= 65536)
    for (int64_t k = 0; k < blocks; ++k) nchw16c::block_sums(dyp + k * hw * kLanes, hw, sums + k * kLanes);

    std::fill(bias_sums_.begin(), bias_sums_.end(), 0.0);
    for (int64_t n = 0; n < dy.dim(0); ++n)
      for (int64_t j = 0; j < c; ++j) bias_sums_[size_t(n * bias_sn_ + j * bias_sc_)] += sums[n * c + j];
    float* gp = g.data();
    for (size_t t = 0; t < bias_sums_.size(); ++t) gp[t] = float(bias_sums_[t]);
  }

  // g[t] = sum of dy over the output positions that read element t of a tensor with strides `st` (plain
  // buffers, or same-shape ones sharing dy's layout).
  void reduce_into(const float* dyp, const std::vector<int64_t>& st, float* gp, int64_t n) const {
    if (n == total_) {
      std::memcpy(gp, dyp, size_t(total_) * sizeof(float));
      return;
    }
    // Kept dimensions (the tensor's own, in order) and reduced ones (broadcast), with output strides.
    std::vector<int64_t> kd, ks, rd, rs;
    for (size_t i = 0; i < dims_.size(); ++i) {
      (st[i] ? kd : rd).push_back(dims_[i]);
      (st[i] ? ks : rs).push_back(so_[i]);
    }
    const int64_t nk = int64_t(kd.size()), nr = int64_t(rd.size());
    const int64_t r_inner = rd.back(), r_stride = rs.back();
    int64_t r_outer = 1;
    for (int64_t k = 0; k + 1 < nr; ++k) r_outer *= rd[k];

#pragma omp parallel for schedule(static) if (total_ >= 65536 && n > 1)
    for (int64_t t = 0; t < n; ++t) {
      int64_t base = 0, rest = t;
      for (int64_t k = nk - 1; k >= 0; --k) {
        base += (rest % kd[k]) * ks[k];
        rest /= kd[k];
      }
      double s = 0;
      for (int64_t r = 0; r < r_outer; ++r) {
        int64_t off = base, rr = r;
        for (int64_t k = nr - 2; k >= 0; --k) {
          off += (rr % rd[k]) * rs[k];
          rr /= rd[k];
        }
        if (r_stride == 1) {
          s += row_sum(dyp + off, r_inner);
        } else {
          float c = 0.f;
          for (int64_t i = 0; i < r_inner; ++i) c += dyp[off + i * r_stride];
          s += c;
        }
      }
      gp[t] = float(s);
    }
  }

  std::vector<int64_t> dims_, sa_, sb_, so_;  // coalesced output dims, a/b strides (0: broadcast), y strides
  int64_t total_ = 1;
  Mode mode_ = Mode::flat;
  bool bias_is_a_ = false;                     // channel_bias: a is the bias operand (b has y's shape)
  int64_t bias_sn_ = 0, bias_sc_ = 0;          // channel_bias: the bias's strides over n and c (0: broadcast)
  std::vector<double> chan_sums_, bias_sums_;  // channel_bias backward scratch: [N, C] and the bias's size
};

NOISEFLOW_REGISTER_NODE(Add);

}  // namespace
}  // namespace noiseflow::nodes
