// graph/diagnostics.hpp — collected, formatted pipeline errors.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace noiseflow::graph {

/// One problem found in a pipeline: `FILE: node "ID", FIELD: message`.
struct Diagnostic {
  std::string file;     ///< the pipeline or subgraph file
  std::string node;     ///< node id (qualified), empty for file-level problems
  std::string field;    ///< `input "t"`, `attr "kind"`, `op`, `params`, ...
  std::string code;     ///< stable snake_case id: unknown_op, missing_input, ...
  std::string message;  ///< what is wrong, with a suggestion where one exists
  std::string str() const;
};

/// Every problem found, in the order found.
class Diagnostics {
 public:
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  void add(std::string file, std::string node, std::string field, std::string code, std::string message) {
    items_.push_back({std::move(file), std::move(node), std::move(field), std::move(code), std::move(message)});
  }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  /// One line per diagnostic.
  std::string str() const;
  /// Throws GraphError if any diagnostic was added.
  void throw_if_any() const;

 private:
  std::vector<Diagnostic> items_;
};

/// Thrown when a pipeline is invalid; what() lists every diagnostic.
struct GraphError : std::runtime_error {
  std::vector<Diagnostic> diagnostics;
  explicit GraphError(std::vector<Diagnostic> d);
  /// True if some diagnostic has this code.
  bool has(const std::string& code) const;
};

/// Edit distance between two strings.
size_t edit_distance(const std::string& a, const std::string& b);
/// ` (did you mean "x"?)` for the closest candidate within a sensible distance, else "".
std::string suggest(const std::string& wrong, const std::vector<std::string>& candidates);

}  // namespace noiseflow::graph
