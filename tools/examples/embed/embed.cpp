// tools/examples/embed/embed.cpp — noiseflow embedded in a program of its own: sample a trained model
// through the public API, <noiseflow/noiseflow.hpp>, and the standard library only.
//
//   noise ──> x (state) ──> net (MLP) ──> sampler.ddpm ──┐   pipelines/examples/toy2d_sample.json:
//             ^                                          │   T ticks, one denoising step each
//             └────────────── next ──────────────────────┘
//
//   embed CHECKPOINT [--n N] [--seed S] [--pipeline FILE] [--output REF]
//
// Loads the pipeline (default pipelines/examples/toy2d_sample.json, relative to the current folder) with
// the checkpoint, n and the seed set through Options and set_param, runs it with a progress line per tick,
// then reads the samples (the state node `x`) as a Tensor and prints their count, mean and std. With a
// checkpoint of pipelines/train.json, `--pipeline pipelines/sample.json` samples digits the same way.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <noiseflow/noiseflow.hpp>

namespace {

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0 << " CHECKPOINT [--n N] [--seed S] [--pipeline FILE] [--output REF]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string checkpoint, pipeline = "pipelines/examples/toy2d_sample.json", output = "x";
  int64_t n = 256;
  uint64_t seed = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      const bool has_value = i + 1 < argc;
      if (a == "--n" && has_value) n = std::stoll(argv[++i]);
      else if (a == "--seed" && has_value) seed = std::stoull(argv[++i]);
      else if (a == "--pipeline" && has_value) pipeline = argv[++i];
      else if (a == "--output" && has_value) output = argv[++i];
      else if (a.rfind("--", 0) != 0 && checkpoint.empty()) checkpoint = a;
      else return usage(argv[0]);
    }
  } catch (const std::exception&) {  // --n or --seed not a number
    return usage(argv[0]);
  }
  if (checkpoint.empty() || n < 1) return usage(argv[0]);

  try {
    // The seed through Options, the params through set_param (each re-validates the pipeline).
    noiseflow::Options options;
    options.seed = seed;
    noiseflow::Pipeline p(pipeline, options);
    p.set_param("checkpoint", checkpoint);
    p.set_param("n", n);

    p.run([](const noiseflow::TickInfo& t) {
      std::cout << "tick " << t.tick + 1 << "/" << t.ticks << " (" << t.seconds << " s)\n";
    });

    // The samples: a handle on the tensor (shape() [n, 2]), its values in row-major order.
    const noiseflow::Tensor x = p.output(output);
    const std::vector<float> v = noiseflow::values(x);
    double sum = 0, sum_sq = 0;
    for (float f : v) sum += f;
    const double mean = sum / double(v.size());
    for (float f : v) sum_sq += (f - mean) * (f - mean);
    const double std_dev = std::sqrt(sum_sq / double(v.size()));
    std::cout << "samples: " << x.dim(0) << " of shape " << noiseflow::shape_str(x.shape()) << "\n"
              << "mean: " << mean << "\nstd: " << std_dev << "\n";
    return std::isfinite(mean) && std::isfinite(std_dev) ? 0 : 1;
  } catch (const noiseflow::GraphError& e) {  // an invalid pipeline: every problem, one per line
    std::cerr << e.what() << "\n";
  } catch (const noiseflow::RunError& e) {  // a node failed while planning or running (a missing checkpoint)
    std::cerr << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
  }
  return 1;
}
