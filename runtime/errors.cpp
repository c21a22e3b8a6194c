#include "runtime/errors.hpp"

#include <new>

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/tensor.hpp"

namespace noiseflow::runtime {

namespace {
std::string q(const std::string& s) { return "\"" + s + "\""; }
}  // namespace

RunError::RunError(graph::Diagnostic d, std::string phase_)
    : std::runtime_error(d.str()), diagnostic(std::move(d)), node(diagnostic.node), phase(std::move(phase_)) {}

RunError plan_error(const graph::GraphNode& gn, std::string field, std::string code, std::string message) {
  return RunError({gn.file, gn.id, std::move(field), std::move(code), std::move(message)}, "plan");
}

RunError as_run_error(const std::exception& e, const graph::GraphNode& gn, const std::string& phase) {
  graph::Diagnostic d{gn.file, gn.id, phase, "node_failed", e.what()};
  if (auto* ne = dynamic_cast<const NodeError*>(&e)) {
    const graph::Schema& s = *gn.schema;
    d.field = ne->field;
    if (s.find_input(ne->field)) d.field = "input " + q(ne->field);
    else if (s.find_attr(ne->field)) d.field = "attr " + q(ne->field);
    else if (d.field.empty()) d.field = phase;
    d.code = ne->code;
  } else if (auto* se = dynamic_cast<const graph::ShapeError*>(&e)) {
    d.field = se->field.empty() ? phase : se->field;
    d.code = "shape_error";
  } else if (auto* oom = dynamic_cast<const OutOfMemory*>(&e)) {
    d.code = "out_of_memory";
    d.message = std::string("out of memory: ") + oom->what();
  } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
    d.code = "out_of_memory";
    d.message = "out of memory while the node ran (" + std::string(e.what()) + ")";
  } else if (auto* de = dynamic_cast<const dnnl::error*>(&e)) {
    d.code = de->status == dnnl_out_of_memory ? "out_of_memory" : "dnnl_error";
    d.message = std::string("oneDNN: ") + de->what() + " (status " + std::to_string(int(de->status)) + ")";
  }
  return RunError(std::move(d), phase);
}

}  // namespace noiseflow::runtime
