// nodes/nn/add.cpp — y = a + b with broadcasting; backward sums the gradient over broadcast dimensions.
//
// Two alignments: "trailing" (numpy rules: shapes aligned at their last dimension) and "leading" (b's
// dimensions match a's first ones: [N, C] adds per channel onto [N, C, H, W], the UNet's time-embedding
// add). At plan time the broadcast is reduced to a few coalesced dimensions (e.g. [N*C, H*W] with b
// strides [1, 0]), so the loops run over long contiguous rows.
#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

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
        .heavy()
        .shape([](graph::ShapeContext& c) {
          const Shape &a = c.input("a"), &b = c.input("b");
          const std::string align = c.attr_string("align");
          if (align != "trailing" && align != "leading")
            c.fail("align", "must be \"trailing\" or \"leading\", got \"" + align + "\"");
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

  void plan(Context& ctx) override {
    Shape pa, pb;
    pad_shapes(ctx.input("a").shape(), ctx.input("b").shape(), ctx.attr_string("align") == "leading", pa, pb);
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
  }

  void forward(Context& ctx) override {
    const float* a = ctx.input("a").data();
    const float* b = ctx.input("b").data();
    float* y = ctx.output("y").data();
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

  void backward(Context& ctx) override {
    const Tensor& dy = ctx.grad_output("y");
    if (ctx.wants_grad("a")) reduce_into(dy, sa_, ctx.grad_input("a"));
    if (ctx.wants_grad("b")) reduce_into(dy, sb_, ctx.grad_input("b"));
  }

 private:
  // g[t] = sum of dy over the output positions that read element t of a tensor with strides `st`.
  void reduce_into(const Tensor& dy, const std::vector<int64_t>& st, Tensor& g) const {
    if (g.numel() == total_) {
      std::memcpy(g.data(), dy.data(), size_t(total_) * sizeof(float));
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
    const float* dyp = dy.data();
    float* gp = g.data();
    const int64_t n = g.numel();

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
};

NOISEFLOW_REGISTER_NODE(Add);

}  // namespace
}  // namespace noiseflow::nodes
