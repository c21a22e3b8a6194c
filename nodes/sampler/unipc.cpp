// nodes/sampler/unipc.cpp — UniPC (Zhao et al. 2023) with the B(h) = e^h - 1 variant ("bh2"), order 2,
// in the data prediction (diffusers' UniPCMultistepScheduler defaults): at every step after the
// first, the corrector UniC-2 refines x_p with the net's x0_hat at p, then the predictor UniP-2 steps
// to q. With lambda = log(a / b), m_j the x0_hat at grid point j and, for a step from s0 to t,
// h = lambda_t - lambda_s0, hh = -h, phi1 = e^hh - 1, B = e^hh - 1 and r_k = (lambda_sk - lambda_s0) / h:
//
//   predictor, order 1:  x_t = (b_t / b_s0) x_s0 - a_t phi1 m_s0
//   predictor, order 2:  ... - a_t B / 2 (m_s1 - m_s0) / r_1
//   corrector (from s0 = p-1 to t = p, refining x_p):
//     x_p' = (b_p / b_s0) x_s0 - a_p phi1 m_s0 - a_p B (rho_1 (m_s1 - m_s0) / r_1 + rho_t (m_p - m_s0))
//     order 1: rho_t = 1/2; order 2: [1 1; r_1 1] [rho_1 rho_t]' = [g_1 g_2]', g_k = k! phi_k(hh) / B
//   with phi_1(hh)... built as diffusers does: phi = phi1 / hh - 1, g_1 = phi / B, phi = phi / hh - 1/2,
//   g_2 = 2 phi / B.
// The orders follow diffusers with lower_order_final: step j predicts with min(2, K - j, j + 1), the
// corrector at step j uses the previous step's predictor order. A history point at pure noise
// (lambda = -inf) lowers the order to 1 (its r is infinite). History: x_{p-1} (corrected), m_{p-1},
// m_{p-2}.
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

// The diffusers-style coefficient vector g_1, g_2 of a step with hh = -h (B = phi1 = e^hh - 1).
void unipc_g(double hh, double& phi1, double& g1, double& g2) {
  phi1 = std::expm1(hh);
  const double B = phi1;
  double phi = phi1 / hh - 1.0;
  g1 = phi / B;
  phi = phi / hh - 0.5;
  g2 = 2.0 * phi / B;
}

struct UniPC final : StepNode {
  static Schema schema() {
    return step_schema("unipc",
                       "UniPC step (Zhao et al. 2023), bh2, order 2, data prediction: the corrector UniC refines "
                       "the current sample with the net's new x0_hat, then the predictor UniP steps to the next "
                       "grid point; lower orders at the first and last steps as diffusers does")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("unipc")); });
  }

 protected:
  void plan_sampler(Context&) override { info_ = &sampler_info("unipc"); }

  void step(Context&, StepIo& io) override {
    const int64_t j = io.eval.step, K = io.steps;
    const Point p = io.point(j), q = io.point(j + 1);
    const Denoised den = denoiser(io, j);
    const float* x_last = io.hist(0);
    const float* m1 = io.hist(1);  // m_{j-1}
    const float* m2 = io.hist(2);  // m_{j-2}
    float* x_last_next = io.hist_next(0);
    float* m1_next = io.hist_next(1);
    float* m2_next = io.hist_next(2);

    // Corrector coefficients: x_p' = cx x_{j-1} + c0 m_{j-1} + c1 m_{j-2} + ct m_j.
    bool correct = j > 0;
    double cx = 0, c0 = 0, c1 = 0, ct = 0;
    if (correct) {
      const Point s0 = io.point(j - 1);
      int64_t order = std::min<int64_t>({2, K - (j - 1), j});
      const double h = p.lambda() - s0.lambda(), hh = -h;
      double phi1, g1, g2;
      unipc_g(hh, phi1, g1, g2);
      const double B = phi1;
      cx = p.b / s0.b;
      c0 = -p.a * phi1;
      double r1 = 0.0;
      if (order == 2) {
        r1 = (io.point(j - 2).lambda() - s0.lambda()) / h;
        if (!std::isfinite(r1) || !std::isfinite(h)) order = 1;
      }
      if (order == 1) {
        ct = -p.a * B * 0.5;
        c0 += p.a * B * 0.5;
      } else {
        const double rho1 = (g1 - g2) / (1.0 - r1), rho_t = g1 - rho1;
        // rho1 (m2 - m1) / r1 + rho_t (m_j - m1)
        c1 = -p.a * B * rho1 / r1;
        c0 += p.a * B * rho1 / r1 + p.a * B * rho_t;
        ct = -p.a * B * rho_t;
      }
    }

    // Predictor coefficients: x_q = px x_p' + pt m_j + pm m_{j-1}.
    int64_t order = std::min<int64_t>({2, K - j, j + 1});
    double px = 0, pt = 1, pm = 0;
    if (!q.data()) {
      const double h = q.lambda() - p.lambda(), hh = -h;
      double phi1, g1, g2;
      unipc_g(hh, phi1, g1, g2);
      const double B = phi1;
      px = q.b / p.b;
      pt = -q.a * phi1;
      double r1 = 0.0;
      if (order == 2) {
        r1 = (io.point(j - 1).lambda() - p.lambda()) / h;
        if (!std::isfinite(r1)) order = 1;
      }
      if (order == 2) {
        // - a_q B / 2 (m_{j-1} - m_j) / r1
        pm = -q.a * B * 0.5 / r1;
        pt += q.a * B * 0.5 / r1;
      }
    }

    const float CX = float(cx), C0 = float(c0), C1 = float(c1), CT = float(ct);
    const float PX = float(px), PT = float(pt), PM = float(pm);
    for (int64_t k = 0; k < io.numel; ++k) {
      float x0, eps;
      den(io.x[k], io.pred[k], x0, eps);
      const float xc = correct ? CX * x_last[k] + C0 * m1[k] + C1 * m2[k] + CT * x0 : io.x[k];
      io.x_next[k] = PX * xc + PT * x0 + PM * m1[k];
      x_last_next[k] = xc;
      m2_next[k] = m1[k];
      m1_next[k] = x0;
    }
  }
};

NOISEFLOW_REGISTER_NODE(UniPC);

}  // namespace
}  // namespace noiseflow::nodes
