// nodes/diffusion/mask.cpp — built-in inpainting masks: 1 where a pixel is known (kept), 0 where it is
// to be generated, for sampler.inpaint. `region` names what is generated: a half of the image or a box.
#include <string>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Mask final : Node {
  static Schema schema() {
    return Schema("diffusion.mask",
                  "A built-in inpainting mask [1, 1, H, W]: 0 over the region to generate (the top, bottom, left or "
                  "right half, or a box [y0, x0, y1, x1) in pixels), 1 where the pixel is known; `invert` swaps them")
        .input("like", "any tensor [N, C, H, W]: the height and width")
        .output("mask", "[1, 1, H, W] 1 = known, 0 = generated")
        .attr_string("region", "bottom", {"top", "bottom", "left", "right", "box"}, "what is generated")
        .attr_ints("box", std::vector<int64_t>{7, 7, 21, 21},
                   "region box: [y0, x0, y1, x1), rows and columns (read only when region is box)")
        .attr_bool("invert", false, "generate everything but the region")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.size() != 4) c.fail("like", "expected [N, C, H, W], got " + graph::shape_str(like));
          const auto box = c.attr_ints("box");
          if (c.attr_string("region") == "box" &&
              (box.size() != 4 || box[0] < 0 || box[1] < 0 || box[2] <= box[0] || box[3] <= box[1] ||
               box[2] > like[2] || box[3] > like[3]))
            c.fail("box", "expected [y0, x0, y1, x1) with 0 <= y0 < y1 <= " + std::to_string(like[2]) +
                              " and 0 <= x0 < x1 <= " + std::to_string(like[3]));
          c.set_output("mask", {1, 1, like[2], like[3]});
        });
  }

  void forward(Context& ctx) override {
    Tensor& m = ctx.output("mask");
    const int64_t H = m.dim(2), W = m.dim(3);
    const std::string region = ctx.attr_string("region");
    const auto box = ctx.attr_ints("box");
    const bool invert = ctx.attr_bool("invert");
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        bool gen = false;
        if (region == "top") gen = 2 * y < H;
        else if (region == "bottom") gen = 2 * y >= H;
        else if (region == "left") gen = 2 * x < W;
        else if (region == "right") gen = 2 * x >= W;
        else gen = y >= box[0] && y < box[2] && x >= box[1] && x < box[3];
        m[y * W + x] = gen != invert ? 0.f : 1.f;
      }
  }
};

NOISEFLOW_REGISTER_NODE(Mask);

}  // namespace
}  // namespace noiseflow::nodes
