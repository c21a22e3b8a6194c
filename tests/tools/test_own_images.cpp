// tests/tools/test_own_images.cpp — a user's own data end to end: a folder of coloured-shape PNGs made
// here, a UNet written by `noiseflow net unet`, pipelines/train_images.json and sample_images.json run by
// the built CLI at smoke size.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "runtime/checkpoint.hpp"
#include "runtime/random.hpp"
#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

namespace fs = std::filesystem;
using noiseflow::test::run_cli;
using noiseflow::test::TempDir;

namespace {

const std::string kResBlock = std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/nets/res_block.json";

// `count` RGB images of one shape each on a dark background: a red square, a green disc or a blue
// bar, at a random place and size.
void make_shapes(const fs::path& dir, int count, int size) {
  fs::create_directories(dir);
  namespace random = noiseflow::runtime::random;
  for (int k = 0; k < count; ++k) {
    std::vector<unsigned char> px(size_t(size * size * 3), 20);
    const uint64_t key = random::hash("shapes");
    const int kind = k % 3;
    const int r = size / 6 + int(random::below(uint64_t(size / 6), key, uint64_t(k), 0));
    const int cx = r + int(random::below(uint64_t(size - 2 * r), key, uint64_t(k), 1));
    const int cy = r + int(random::below(uint64_t(size - 2 * r), key, uint64_t(k), 2));
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const int dx = x - cx, dy = y - cy;
        const bool in = kind == 0 ? (std::abs(dx) < r && std::abs(dy) < r)
                        : kind == 1 ? dx * dx + dy * dy < r * r
                                    : (std::abs(dx) < r / 3 + 1 && std::abs(dy) < r);
        if (in) px[size_t((y * size + x) * 3 + kind)] = 230;
      }
    char name[32];
    std::snprintf(name, sizeof name, "shape_%03d.png", k);
    REQUIRE(stbi_write_png((dir / name).string().c_str(), size, size, 3, px.data(), size * 3) != 0);
  }
}

// log.csv's loss column.
std::vector<double> losses(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  std::getline(in, line);
  REQUIRE(line.rfind("tick,loss,", 0) == 0);
  std::vector<double> out;
  while (std::getline(in, line)) {
    const auto a = line.find(','), b = line.find(',', a + 1);
    out.push_back(std::stod(line.substr(a + 1, b - a - 1)));
  }
  return out;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / double(to - from);
}

}  // namespace

TEST_CASE("noiseflow net unet writes a net file, refuses bad specs and a missing ResBlock file") {
  TempDir dir;
  const std::string net = (dir.path / "nets/tiny.json").string();
  // Without res_block.json beside it (or --res-block), nothing is written.
  auto missing = run_cli("net unet --in-channels 3 --size 16 --ch 8 --mult 1,2 -o " + net);
  CHECK(missing.status == 1);
  CHECK(missing.err.find("would include res_block.json, but there is no") != std::string::npos);
  CHECK_FALSE(fs::exists(net));
  auto ok = run_cli("net unet --name tiny --in-channels 3 --size 16 --ch 8 --mult 1,2 --attn 8 -o " + net +
                    " --res-block " + kResBlock);
  INFO(ok.err);
  REQUIRE(ok.status == 0);
  CHECK(ok.out.find("wrote " + net + ": ") == 0);
  CHECK(ok.out.find("(noiseflow net unet --name tiny --in-channels 3 --size 16 --ch 8 --mult 1,2 --res-blocks 2 "
                    "--attn 8)") != std::string::npos);
  auto check = run_cli("check " + net);
  CHECK(check.status == 0);
  CHECK(check.out.find("out_norm.y -> out_conv.x  [2, 8, 16, 16]") != std::string::npos);
  CHECK(check.out.find("trainable parameters: 64,483") != std::string::npos);
  // Standard output: the defaults are pipelines/nets/unet_small.json but for the name.
  auto out = run_cli("net unet --name unet_small");
  CHECK(out.out == noiseflow::test::read_bytes(NOISEFLOW_SOURCE_DIR "/pipelines/nets/unet_small.json"));
  auto bad = run_cli("net unet --size 30");
  CHECK(bad.status == 2);
  CHECK(bad.err.find("noiseflow net unet: --size 30 does not halve 2 times") != std::string::npos);
  CHECK(bad.out.empty());
}

TEST_CASE("train_images.json and sample_images.json on a folder of RGB shapes with a generated net") {
  TempDir dir;
  const fs::path data = dir.path / "shapes";
  make_shapes(data, 48, 32);
  const std::string net = (dir.path / "tiny.json").string(), ckpt = (dir.path / "ckpt.safetensors").string();
  REQUIRE(run_cli("net unet --name tiny --in-channels 3 --size 32 --ch 16 --mult 1,2 --attn 16 --dropout 0.1 -o " +
                  net + " --res-block " + kResBlock).status == 0);

  const std::string common = " --set net=" + net + " --set checkpoint=" + ckpt;
  auto train = run_cli("run pipelines/train_images.json -q --set dir=" + data.string() + common +
                       " --set steps=60 --set batch=8 --set warmup=0 --set lr=0.002 --set checkpoint_every=30"
                       " --set preview_every=30 --set preview_n=4"
                       " --run-folder " + (dir.path / "run").string());
  INFO(train.err);
  REQUIRE(train.status == 0);
  const auto loss = losses(dir.path / "run/log.csv");
  REQUIRE(loss.size() == 60);
  for (double l : loss) CHECK(std::isfinite(l));
  // The loss falls: the last 15 steps' mean well below the first 15's.
  CHECK(mean(loss, 45, 60) < 0.6 * mean(loss, 0, 15));
  // Pictures while it ran: the loss curve and a grid of 4 RGB samples from the EMA weights at steps 30 and 60.
  int pw = 0, ph = 0, pc = 0;
  CHECK(stbi_info((dir.path / "run/loss.png").string().c_str(), &pw, &ph, &pc) == 1);
  for (const char* step : {"step_000030.png", "step_000060.png"}) {
    CAPTURE(step);
    REQUIRE(stbi_info((dir.path / "run/samples" / step).string().c_str(), &pw, &ph, &pc) == 1);
    CHECK(pc == 3);
  }
  const auto meta = noiseflow::runtime::read_safetensors(ckpt).metadata;
  CHECK(meta.at("step") == "60");

  const std::string samples = (dir.path / "samples.png").string(), file = (dir.path / "samples.safetensors").string();
  auto sample = run_cli("run pipelines/sample_images.json -q" + common + " --set n=6 --set steps=4 --set samples=" +
                        samples + " --set samples_file=" + file + " --set trajectory=" +
                        (dir.path / "trajectory.png").string() + " --run-folder " + (dir.path / "srun").string());
  INFO(sample.err);
  REQUIRE(sample.status == 0);
  int w = 0, h = 0, c = 0;
  REQUIRE(stbi_info(samples.c_str(), &w, &h, &c) == 1);
  CHECK(c == 3);
  CHECK(w == 2 * (6 * (32 + 2) + 2));  // 6 columns of 32 pixels, padding 2, scale 2
  const auto t = noiseflow::runtime::read_safetensors(file).tensors.at("samples");
  CHECK(t.shape() == noiseflow::runtime::Shape{6, 3, 32, 32});
  double lo = 1e9, hi = -1e9;
  for (int64_t i = 0; i < t.numel(); ++i) {
    REQUIRE(std::isfinite(t.data()[i]));
    lo = std::min(lo, double(t.data()[i])), hi = std::max(hi, double(t.data()[i]));
  }
  CHECK(hi > lo);

  // The same net in grey: channels=1 trains and samples.
  auto grey = run_cli("run pipelines/train_images.json -q --set dir=" + data.string() + " --set net=" + net +
                      " --set channels=1 --set steps=3 --set batch=4 --set checkpoint=" +
                      (dir.path / "grey.safetensors").string() + " --run-folder " + (dir.path / "grey").string());
  INFO(grey.err);
  CHECK(grey.status == 0);
  // A checkpoint of 3 channels sampled as 1 is refused, naming the tensor and both shapes.
  auto wrong = run_cli("run pipelines/sample_images.json -q" + common + " --set channels=1 --set n=2 --set steps=2"
                       " --set samples=" + (dir.path / "w.png").string() + " --set samples_file=" +
                       (dir.path / "w.safetensors").string() + " --set trajectory=" + (dir.path / "wt.png").string() +
                       " --run-folder " + (dir.path / "wrun").string());
  INFO(wrong.err);
  CHECK(wrong.status == 1);
  CHECK(wrong.err.find("node \"load\"") != std::string::npos);
  CHECK(wrong.err.find("has shape [3, 16, 3, 3] but the pipeline needs [1, 16, 3, 3]") != std::string::npos);
}
