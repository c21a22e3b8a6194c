// tests/tools/test_distill.cpp — pipelines/distill.json end to end on a 2-tick teacher: a few ticks of
// consistency tuning write a checkpoint that records what it is (model consistency) and holds each tensor
// once (the tied target adds none); sample.json samples it with sampler.consistency in 1 and 2 steps, and
// refuses it with a diffusion sampler (and the teacher with the consistency sampler), saying which --set fixes it.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/safetensors.hpp"
#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

using noiseflow::test::run_cli;
using noiseflow::test::TempDir;

TEST_CASE("distill.json: a consistency checkpoint from a teacher, sampled in 1 and 2 steps, refused by other samplers") {
  TempDir dir;
  const std::string teacher = dir / "teacher.safetensors", student = dir / "student.safetensors";
  const std::string folder = " --run-folder " + dir.file("run");
  auto train = run_cli("run pipelines/train.json --ticks 2 -q --set batch=2 --set preview=false --set checkpoint=" + teacher + folder);
  REQUIRE(train.status == 0);
  auto distill = run_cli("run pipelines/distill.json --ticks 3 -q --set batch=2 --set minutes=0 --set preview=false --set teacher=" +
                         teacher + " --set checkpoint=" + student + " --run-folder " + dir.file("distill"));
  INFO(distill.err);
  REQUIRE(distill.status == 0);
  const auto st = noiseflow::runtime::read_safetensors(student);
  CHECK(nlohmann::json::parse(st.metadata.at("recipe")).at("model") == "consistency");
  CHECK(st.tensors.count("net.stem.weight") == 1);
  CHECK(st.tensors.count("ema.net.stem.weight") == 1);
  for (const auto& [name, t] : st.tensors) CHECK(name.find("target.") == std::string::npos);
  // The student moved away from the teacher (3 Adam steps), the teacher's file is untouched.
  const auto te = noiseflow::runtime::read_safetensors(teacher);
  bool moved = false;
  for (const auto& [name, t] : te.tensors)
    if (name.rfind("net.", 0) == 0 && st.tensors.count(name))
      moved = moved || !noiseflow::test::same_bytes(t, st.tensors.at(name));
  CHECK(moved);

  for (int steps : {1, 2}) {
    CAPTURE(steps);
    const std::string out = dir / ("cm" + std::to_string(steps));
    auto r = run_cli("run pipelines/sample.json -q" + folder + " --set n=2 --set sampler=consistency --set spacing=trailing" +
                     " --set steps=" + std::to_string(steps) + " --set checkpoint=" + student + " --set samples=" + out +
                     ".png --set trajectory=" + out + "_traj.png --set samples_file=" + out + ".safetensors");
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto x = noiseflow::runtime::read_safetensors(out + ".safetensors").tensors.at("samples");
    CHECK(x.shape() == noiseflow::runtime::Shape{2, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::isfinite(x[i]));
  }
  auto wrong = run_cli("run pipelines/sample.json -q" + folder + " --set n=2 --set steps=3 --set checkpoint=" + student);
  CHECK(wrong.status == 1);
  CHECK(wrong.err.find("holds a consistency model (distilled), which only the consistency sampler samples: run with "
                       "--set sampler=consistency") != std::string::npos);
  auto reverse = run_cli("run pipelines/sample.json -q" + folder +
                         " --set n=2 --set steps=1 --set sampler=consistency --set spacing=trailing --set checkpoint=" + teacher);
  CHECK(reverse.status == 1);
  CHECK(reverse.err.find("expects a consistency model: distil it first (noiseflow run pipelines/distill.json)") != std::string::npos);
}

TEST_CASE("distill_conditional.json: a conditional consistency model, sampled with guidance in 1 step") {
  TempDir dir;
  const std::string teacher = dir / "teacher.safetensors", student = dir / "student.safetensors";
  auto train = run_cli("run pipelines/train_conditional.json --ticks 2 -q --set batch=4 --set preview=false --set checkpoint=" +
                       teacher + " --run-folder " + dir.file("run"));
  REQUIRE(train.status == 0);
  auto distill = run_cli("run pipelines/distill_conditional.json --ticks 2 -q --set batch=4 --set minutes=0 --set teacher=" +
                         teacher + " --set checkpoint=" + student + " --run-folder " + dir.file("distill"));
  INFO(distill.err);
  REQUIRE(distill.status == 0);
  const auto st = noiseflow::runtime::read_safetensors(student);
  const auto recipe = nlohmann::json::parse(st.metadata.at("recipe"));
  CHECK(recipe.at("model") == "consistency");
  CHECK(recipe.at("classes") == 10);
  const std::string out = dir / "cond";
  auto r = run_cli("run pipelines/sample_conditional.json -q --run-folder " + dir.file("run") +
                   " --set n=4 --set sampler=consistency --set steps=1 --set spacing=trailing --set guidance=2 --set checkpoint=" +
                   student + " --set samples=" + out + ".png --set trajectory=" + out + "_traj.png --set samples_file=" + out +
                   ".safetensors --set labels_file=" + out + "_labels.safetensors");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto x = noiseflow::runtime::read_safetensors(out + ".safetensors").tensors.at("samples");
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::isfinite(x[i]));
}
