// runtime/checkpoint.cpp — an executor's state saved to and loaded from safetensors (runtime/checkpoint.hpp).
#include "runtime/checkpoint.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/exec/executor.hpp"
#include "runtime/recipe.hpp"

namespace noiseflow::runtime {

using Json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw CheckpointError(path + ": " + msg); }

std::string q(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

NamedTensorList checkpoint_tensors(Executor& ex) {
  NamedTensorList v;
  for (auto& p : ex.params()) v.push_back({p.name, p.value});
  for (size_t i = 0; i < ex.graph().nodes.size(); ++i)
    for (auto& nt : ex.node(int(i)).state_tensors(ex.context(int(i)))) v.push_back(nt);
  return v;
}

void save_checkpoint(Executor& ex, const std::string& path, int64_t step) {
  std::map<std::string, std::string> meta{{"format", "noiseflow-checkpoint-1"},
                                          {"step", std::to_string(step)},
                                          {"pipeline_hash", ex.graph().hash()},
                                          {"pipeline", ex.graph().name},
                                          {"seed", std::to_string(ex.graph().seed)},
                                          {"recipe", recipe_of(ex.graph()).dump()}};
  if (!ex.graph().sized.is_null()) meta["sized"] = ex.graph().sized.dump();  // a run sized by its budget
  write_safetensors(path, checkpoint_tensors(ex), meta);
}

int64_t load_checkpoint(Executor& ex, const std::string& path, const LoadCheckpointOptions& options) {
  const LoadMode mode = options.mode;
  const std::string &prefix = options.prefix, &scope = options.scope, &file_scope = options.file_scope;
  SafeTensors st = read_safetensors(path);
  auto find = [&](const std::string& name) -> const Tensor* {
    auto it = st.tensors.find(name);
    if (it == st.tensors.end() && !prefix.empty() && name.rfind(prefix, 0) == 0)
      it = st.tensors.find(name.substr(prefix.size()));
    return it == st.tensors.end() ? nullptr : &it->second;
  };
  std::vector<std::pair<std::string, Tensor>> targets;
  if (mode == LoadMode::Resume) {
    targets = checkpoint_tensors(ex);
  } else {
    for (auto& p : ex.params())
      if (p.name.rfind(scope, 0) == 0) targets.push_back({p.name, p.value});
  }
  // Check everything before writing anything, so a mismatch leaves the run untouched.
  std::vector<std::pair<const Tensor*, Tensor>> copies;
  for (auto& [name, t] : targets) {
    const std::string in_file = scope.empty() ? name : file_scope + name.substr(scope.size());
    std::string want = mode == LoadMode::Ema ? options.ema_prefix + "." + in_file : in_file;
    const Tensor* src = find(want);
    if (!src) {
      std::string hint = mode == LoadMode::Ema && find(name) ? " (the file has raw weights but no EMA copies: load raw weights)" : "";
      fail(path, "has no tensor " + q(want) + " needed by the pipeline" + hint);
    }
    if (src->shape() != t.shape())
      fail(path, "tensor " + q(want) + " has shape " + graph::shape_str(src->shape()) + " but the pipeline needs " +
                     graph::shape_str(t.shape()));
    int64_t bad = 0;
    for (int64_t i = 0; i < src->numel(); ++i) bad += !std::isfinite((*src)[i]);
    if (bad && !options.allow_nonfinite)
      fail(path, "tensor " + q(want) + " holds " + std::to_string(bad) + " NaN or infinite value" +
                     (bad == 1 ? "" : "s") + " (of " + std::to_string(src->numel()) +
                     "): the run that wrote it diverged; load an earlier checkpoint (or allow_nonfinite to inspect it)");
    copies.push_back({src, t});
  }
  // The net fits; a model loaded for sampling or evaluation must also be used the way it was trained. (A scoped load is a
  // part of the pipeline, e.g. the classifier of a metric: the rest of the pipeline is not its recipe.)
  auto recipe = st.metadata.find("recipe");
  if (mode != LoadMode::Resume && scope.empty() && recipe != st.metadata.end()) {
    const Json recorded = parse_bounded_json(recipe->second).value_or(Json(Json::value_t::discarded));
    if (!recorded.is_object()) fail(path, "__metadata__ recipe is not a JSON object (of at most " +
                                          std::to_string(kMaxJsonDepth) + " levels)");
    const std::vector<std::string> problems = recipe_mismatches(ex.graph(), recorded);
    if (!problems.empty()) {
      std::string m = "the model was trained differently from how this pipeline uses it: ";
      for (size_t i = 0; i < problems.size(); ++i) m += (i ? "; " : "") + problems[i];
      fail(path, m);
    }
  }
  for (auto& [src, dst] : copies) dst.copy_from(*src);
  int64_t step = 0;
  auto it = st.metadata.find("step");
  if (it != st.metadata.end()) {
    try {
      step = std::stoll(it->second);
    } catch (...) {
      fail(path, "__metadata__ step " + q(it->second) + " is not a number");
    }
  }
  if (mode == LoadMode::Resume) {
    auto h = st.metadata.find("pipeline_hash");
    if (h != st.metadata.end() && h->second != ex.graph().hash())
      fail(path, "was written by a different pipeline (hash " + h->second + ", this one " + ex.graph().hash() +
                     "): resume needs the same nodes and attributes");
  }
  return step;
}

}  // namespace noiseflow::runtime
