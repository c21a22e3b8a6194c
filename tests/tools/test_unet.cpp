// tests/tools/test_unet.cpp — the UNet generator (tools/net/unet.hpp): the committed nets are exactly what it
// writes, every generated net loads and shape-checks with the parameter count it announces, and specs that
// cannot make a net are refused naming the option.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "graph/pipeline.hpp"
#include "tests/test_util.hpp"
#include "tools/net/unet.hpp"

namespace fs = std::filesystem;
using noiseflow::tools::UnetSpec;
using noiseflow::test::read_bytes;
using noiseflow::test::TempDir;
using noiseflow::test::write_bytes;

namespace {

const std::string kNets = std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/nets/";

// The graph a spec makes, loaded from a file in a temporary folder (the ResBlock included from pipelines/nets/).
noiseflow::graph::Graph load_generated(UnetSpec s) {
  s.res_block = kNets + "res_block.json";
  TempDir dir;
  const std::string path = (dir.path / (s.name + ".json")).string();
  write_bytes(path, noiseflow::tools::unet_net_file(s));
  return noiseflow::graph::load_pipeline(path, noiseflow::test::load_options());
}

bool has_node(const noiseflow::graph::Graph& g, const std::string& id) { return g.find(id) >= 0; }

std::string problems(const UnetSpec& s) {
  std::string all;
  for (auto& p : noiseflow::tools::unet_problems(s)) all += p + "\n";
  return all;
}

}  // namespace

TEST_CASE("net unet: the defaults are unet-small, pipelines/nets/unet_small.json to the byte") {
  UnetSpec s;
  s.name = "unet_small";
  CHECK(problems(s).empty());
  CHECK(noiseflow::tools::unet_parameter_count(s) == 1539329);  // shared/UNET_SMALL.md
  const std::string file = read_bytes(kNets + "unet_small.json");
  CHECK_MESSAGE(noiseflow::tools::unet_net_file(s) == file,
                "regenerate it: build/tools/noiseflow net unet --name unet_small -o pipelines/nets/unet_small.json");
  const auto g = load_generated(s);
  CHECK(g.param_count() == 1539329);
}

TEST_CASE("net unet --classes 10 is unet_cond, pipelines/nets/unet_cond.json to the byte") {
  UnetSpec s;
  s.name = "unet_cond";
  s.classes = 10;
  CHECK_MESSAGE(noiseflow::tools::unet_net_file(s) == read_bytes(kNets + "unet_cond.json"),
                "regenerate it: build/tools/noiseflow net unet --name unet_cond --classes 10 -o "
                "pipelines/nets/unet_cond.json");
  CHECK(load_generated(s).param_count() == 1539329 + 11 * 128);
}

TEST_CASE("net unet: the committed image nets are what their commands write") {
  for (int64_t size : {32, 64}) {
    UnetSpec s;
    s.name = "unet_images" + std::to_string(size);
    s.in_channels = 3, s.size = size, s.ch = 64, s.mult = {1, 2, 2, 2}, s.attn = {16}, s.dropout = 0.1;
    CAPTURE(s.name);
    CHECK_MESSAGE(noiseflow::tools::unet_net_file(s) == read_bytes(kNets + s.name + ".json"),
                  "regenerate it: build/tools/noiseflow net unet --name ", s.name, " --in-channels 3 --size ", size,
                  " --ch 64 --mult 1,2,2,2 --attn 16 --dropout 0.1 -o pipelines/nets/", s.name, ".json");
  }
}

TEST_CASE("net unet: generated nets load, shape-check and have the parameters they announce") {
  struct Case {
    const char* what;
    UnetSpec s;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, auto edit) {
    UnetSpec s;
    s.name = "net";
    edit(s);
    cases.push_back({what, s});
  };
  add("RGB 32, 4 levels, attention at 16, dropout, 4 heads", [](UnetSpec& s) {
    s.in_channels = 3, s.size = 32, s.ch = 16, s.mult = {1, 2, 2, 2}, s.attn = {16}, s.dropout = 0.1, s.heads = 4;
  });
  add("RGB 64, attention at 16 and 8", [](UnetSpec& s) {
    s.in_channels = 3, s.size = 64, s.ch = 16, s.mult = {1, 1, 2, 2}, s.attn = {16, 8};
  });
  add("one level, one ResBlock, no attention", [](UnetSpec& s) {
    s.size = 12, s.ch = 8, s.mult = {1}, s.res_blocks = 1, s.mid_attn = false;
  });
  add("no multiplier 1, 4 groups, out channels 2, temb x2", [](UnetSpec& s) {
    s.size = 16, s.ch = 8, s.mult = {2, 3}, s.groups = 4, s.out_channels = 2, s.temb_mult = 2;
  });
  add("conditional, 3 ResBlocks, attention at full resolution", [](UnetSpec& s) {
    s.size = 8, s.ch = 8, s.mult = {1, 2}, s.res_blocks = 3, s.attn = {8}, s.classes = 3;
  });
  for (const Case& c : cases) {
    CAPTURE(c.what);
    REQUIRE(problems(c.s).empty());
    const auto g = load_generated(c.s);
    CHECK(g.param_count() == noiseflow::tools::unet_parameter_count(c.s));
    const int out = g.find("out_conv");
    REQUIRE(out >= 0);
    const int64_t oc = c.s.out_channels > 0 ? c.s.out_channels : c.s.in_channels;
    CHECK(g.nodes[size_t(out)].output_shapes[0] == noiseflow::graph::Shape{2, oc, c.s.size, c.s.size});
    // Attention where asked: after the first ResBlock of a level and after the last up block.
    CHECK(has_node(g, "mid_attn") == c.s.mid_attn);
    CHECK(has_node(g, "down.0.attn") == (c.s.attn.count(c.s.size) > 0));
    CHECK(has_node(g, "cat.0"));
    CHECK(has_node(g, "class_emb") == (c.s.classes > 0));
  }
  // Where attention sits by resolution: at 16 (level 2 of 64) but not 32 or 64.
  const auto g = load_generated(cases[1].s);
  CHECK(has_node(g, "down.6.attn"));   // level 2: down.6, down.7 (after down.0,1, down.2.conv, down.3,4, down.5.conv)
  CHECK(has_node(g, "down.7.attn"));
  CHECK(!has_node(g, "down.3.attn"));  // level 1, 32x32
  CHECK(has_node(g, "down.9.attn"));   // level 3, 8x8
  CHECK(g.nodes[size_t(g.find("down.6.attn"))].output_shapes[0] == noiseflow::graph::Shape{2, 32, 16, 16});
}

TEST_CASE("net unet: dropout reaches every ResBlock's second group norm") {
  UnetSpec s;
  s.name = "net", s.size = 8, s.ch = 8, s.mult = {1, 2}, s.dropout = 0.25;
  const auto g = load_generated(s);
  int with_dropout = 0, norms = 0;
  for (auto& n : g.nodes) {
    if (n.op != "nn.group_norm") continue;
    ++norms;
    if (n.attrs.at("dropout").get<double>() == 0.25) {
      ++with_dropout;
      CHECK(n.id.ends_with(".norm2"));
    }
  }
  // 2 levels: 4 down, 2 middle, 6 up ResBlocks; each has norm1 and norm2, plus out_norm.
  CHECK(with_dropout == 12);
  CHECK(norms == 25);
  CHECK(noiseflow::tools::unet_command(s).find("--dropout 0.25") != std::string::npos);
}

TEST_CASE("net unet: specs that make no net are refused, naming the option") {
  auto refused = [](auto edit, const std::string& want) {
    UnetSpec s;
    edit(s);
    const std::string p = problems(s);
    CAPTURE(p);
    CHECK(p.find(want) != std::string::npos);
  };
  refused([](UnetSpec& s) { s.size = 30; },
          "--size 30 does not halve 2 times (--mult 1,2,2 has 3 levels): use a multiple of 4 or fewer levels");
  refused([](UnetSpec& s) { s.attn = {10}; }, "--attn 10 is not a resolution of this net: its levels are at 28, 14, 7");
  refused([](UnetSpec& s) { s.ch = 36; }, "--groups 8 does not divide the 36 channels of a level (--ch 36 times 1)");
  refused([](UnetSpec& s) { s.heads = 3; }, "--heads 3 does not divide the 32 channels of a level");
  refused([](UnetSpec& s) { s.mult = {}; }, "--mult needs at least one level");
  refused([](UnetSpec& s) { s.mult = {1, 0}; }, "--mult: every multiplier must be at least 1, got 1,0");
  refused([](UnetSpec& s) { s.dropout = 1.0; }, "--dropout must be in [0, 1), got 1");
  refused([](UnetSpec& s) { s.in_channels = 0; }, "--in-channels must be at least 1, got 0");
  refused([](UnetSpec& s) { s.ch = 2, s.groups = 1, s.mult = {1}, s.ch = 3; }, "--ch must be even");
  refused([](UnetSpec& s) { s.name = "a/b"; }, "--name must be a non-empty name without spaces, quotes or slashes");
}
