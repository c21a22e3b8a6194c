// nodes/io/write_metrics.cpp — named scalars of a run (an accuracy, a Fréchet distance) to a JSON file.
//
// { "pipeline": NAME, "tick": T, "a_name": value, ... } written to PATH.tmp and renamed over PATH; also
// recorded as run scalars and as a "metrics" artifact (the CLI prints it).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/node.hpp"
#include "runtime/node_files.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace fs = std::filesystem;

constexpr const char* kInputs[] = {"a", "b", "c", "d"};

struct WriteMetrics final : Node {
  static Schema schema() {
    Schema s("io.write_metrics",
             "Writes named scalars ([1] tensors a..d) to a JSON file {\"tick\": T, NAME: value, ...}, atomically "
             "(PATH.tmp, then renamed); each is also recorded as a run scalar");
    for (const char* name : kInputs) s.optional_input(name, "a [1] scalar, named by the matching entry of `names`");
    return s.attr_string("path", std::nullopt, {}, "the JSON file to write")
        .attr_string("names", std::nullopt, {}, "comma-separated names of the connected inputs, in order a, b, c, d")
        .sink()
        .shape([](graph::ShapeContext& c) {
          int64_t connected = 0;
          for (const char* name : kInputs)
            if (c.has_input(name)) {
              ++connected;
              if (graph::numel(c.input(name)) != 1)
                c.fail(name, "expected a scalar [1], got " + graph::shape_str(c.input(name)));
            }
          if (connected == 0) c.fail("a", "connect at least one scalar");
          const std::string names = c.attr_string("names");
          const int64_t given = names.empty() ? 0 : int64_t(std::count(names.begin(), names.end(), ',')) + 1;
          if (given != connected)
            c.fail("names", std::to_string(given) + " names for " + std::to_string(connected) + " connected inputs");
        });
  }

  void plan(Context& ctx) override {
    const std::string names = ctx.attr_string("names");
    size_t from = 0;
    for (const char* name : kInputs) {
      if (!ctx.has_input(name)) continue;
      const size_t comma = names.find(',', from);
      pairs_.push_back({name, names.substr(from, comma == std::string::npos ? std::string::npos : comma - from)});
      from = comma == std::string::npos ? names.size() : comma + 1;
    }
  }

  void forward(Context& ctx) override {
    graph::Json j{{"tick", ctx.tick()}};
    for (const auto& [input, name] : pairs_) {
      const double v = ctx.input(input)[0];
      j[name] = v;
      if (ctx.run_state()) ctx.run_state()->scalar(name, ctx.tick(), v);
    }
    const fs::path path = ctx.attr_string("path");
    runtime::write_file_atomically(ctx, path, j.dump(2) + "\n");
    if (ctx.run_state()) ctx.run_state()->artifact("metrics", path.string(), ctx.id());
  }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;  // (input, name)
};

NOISEFLOW_REGISTER_NODE(WriteMetrics);

}  // namespace
}  // namespace noiseflow::nodes
