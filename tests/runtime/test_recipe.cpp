// tests/runtime/test_recipe.cpp — checkpoints record how their model was trained (schedule, T, betas,
// zero-SNR, objective, class count), and a pipeline that loads one to sample is checked against it: a
// mismatch is an error naming both values and the fix.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <string>

#include "noiseflow/noiseflow.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/recipe.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;

namespace {

std::string example(const char* name) { return std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/" + name; }

std::string train_toy(const test::TempDir& dir, const char* pipeline = "toy2d_train.json") {
  const std::string ck = dir / "model.safetensors";
  Options o;
  o.threads = 1;
  o.params = {{"steps", 3}, {"batch", 16}, {"checkpoint", ck}};
  Pipeline(example(pipeline), o).run();
  return ck;
}

// The error message of sampling `file` with `params`, empty when it runs.
std::string sample_error(const std::string& file, std::map<std::string, nlohmann::json> params) {
  Options o;
  o.threads = 1;
  o.params = std::move(params);
  o.params["n"] = 8;
  try {
    Pipeline(file, o).run();
    return "";
  } catch (const RunError& e) {
    return e.what();
  }
}

// toy2d_sample.json with its sampler step's prediction (and optionally the schedule kind) changed.
std::string variant(const test::TempDir& dir, const std::string& edit_from, const std::string& edit_to) {
  std::ifstream f(example("toy2d_sample.json"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  text = std::regex_replace(text, std::regex(R"("\.\./nets/)"), "\"" NOISEFLOW_SOURCE_DIR "/pipelines/nets/");
  REQUIRE(text.find(edit_from) != std::string::npos);
  text.replace(text.find(edit_from), edit_from.size(), edit_to);
  return dir.write("variant.json", text);
}

}  // namespace

TEST_CASE("a checkpoint records the schedule, T, betas, zero-SNR and objective it was trained with") {
  test::TempDir dir;
  const auto st = runtime::read_safetensors(train_toy(dir));
  const auto recipe = nlohmann::json::parse(st.metadata.at("recipe"));
  CHECK(recipe == nlohmann::json::parse(R"({ "schedule": "linear", "T": 100, "beta_start": 0.001, "beta_end": 0.2,
      "cosine_s": 0.008, "max_beta": 0.999, "zero_snr": false, "objective": "eps" })"));
  test::TempDir cdir;
  const auto cond = runtime::read_safetensors(train_toy(cdir, "toy2d_cond_train.json"));
  CHECK(nlohmann::json::parse(cond.metadata.at("recipe")).at("classes") == 8);
}

TEST_CASE("sampling with another T than the model's is an error naming both values and the --set that fixes it") {
  test::TempDir dir;
  const std::string ck = train_toy(dir);
  CHECK(sample_error(example("toy2d_sample.json"), {{"checkpoint", ck}}) == "");
  const std::string e = sample_error(example("toy2d_sample.json"), {{"checkpoint", ck}, {"T", 50}});
  CHECK(e.find(R"(toy2d_sample.json: node "load", attr "path": )" + ck +
               R"(: the model was trained differently from how this pipeline uses it: trained with T 100, but )"
               R"(node "sched" attr "T" is 50 (run with --set T=100))") != std::string::npos);
}

TEST_CASE("an eps-trained model sampled as x0 is an error naming the objective and the fix") {
  test::TempDir dir;
  const std::string ck = train_toy(dir);
  // A sampler with a prediction param.
  std::string file = variant(dir, R"("attrs": { "variance": "$variance" })",
                             R"("attrs": { "variance": "$variance", "prediction": "$prediction" })");
  {
    std::ifstream f(file);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    text.replace(text.find(R"("n": 1024,)"), 10, R"("n": 1024, "prediction": "eps",)");
    file = dir.write("variant.json", text);
  }
  CHECK(sample_error(file, {{"checkpoint", ck}}) == "");
  const std::string e = sample_error(file, {{"checkpoint", ck}, {"prediction", "x0"}});
  CHECK(e.find(R"(trained with objective "eps", but node "step" attr "prediction" is "x0" (run with --set )"
               R"(prediction=eps))") != std::string::npos);
}

TEST_CASE("another schedule written into the file is an error that says where to change it") {
  test::TempDir dir;
  const std::string ck = train_toy(dir);
  const std::string file = variant(dir, R"("kind": "linear")", R"("kind": "cosine")");
  const std::string e = sample_error(file, {{"checkpoint", ck}});
  CHECK(e.find(R"(trained with schedule "linear", but node "sched" attr "kind" is "cosine" (set it to "linear" in )" +
               file + ")") != std::string::npos);
}

TEST_CASE("a checkpoint without a recipe (written before they were recorded) loads unchecked") {
  test::TempDir dir;
  const std::string ck = train_toy(dir);
  auto st = runtime::read_safetensors(ck);
  st.metadata.erase("recipe");
  runtime::NamedTensorList tensors(st.tensors.begin(), st.tensors.end());
  runtime::write_safetensors(ck, tensors, st.metadata);
  CHECK(sample_error(example("toy2d_sample.json"), {{"checkpoint", ck}, {"T", 50}}) == "");
}

TEST_CASE("a distilled (consistency) model and an ordinary one each refuse the other's sampler, saying which --set fixes it") {
  const std::string file = std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/gaussian_sampler.json";
  const auto g_ddim = graph::load_pipeline(file, test::load_options({{"sampler", "ddim"}}));
  const auto g_cm = graph::load_pipeline(file, test::load_options({{"sampler", "consistency"}, {"steps", 2}, {"spacing", "trailing"}}));
  const nlohmann::json diffusion = {{"objective", "eps"}}, consistency = {{"objective", "eps"}, {"model", "consistency"}};
  CHECK(runtime::recipe_mismatches(g_ddim, diffusion).empty());
  CHECK(runtime::recipe_mismatches(g_cm, consistency).empty());
  const auto a = runtime::recipe_mismatches(g_ddim, consistency);
  REQUIRE(a.size() == 1);
  CHECK(a[0] == "the checkpoint holds a consistency model (distilled), which only the consistency sampler samples: run "
                "with --set sampler=consistency --set steps=1 (or 2, 4)");
  const auto b = runtime::recipe_mismatches(g_cm, diffusion);
  REQUIRE(b.size() == 1);
  CHECK(b[0] == "the checkpoint holds a diffusion model, but node \"step\" (sampler.consistency) expects a consistency "
                "model: distil it first (noiseflow run pipelines/distill.json) or sample it with a diffusion sampler "
                "(--set sampler=dpmpp_2m_sde)");
}
