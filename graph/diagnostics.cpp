#include "graph/diagnostics.hpp"

#include <algorithm>

namespace noiseflow::graph {

std::string Diagnostic::str() const {
  std::string s = file.empty() ? std::string("<pipeline>") : file;
  s += ": ";
  if (!node.empty()) s += "node \"" + node + "\", ";
  if (!field.empty()) s += field + ": ";
  return s + message;
}

std::string Diagnostics::str() const {
  std::string s;
  for (auto& d : items_) s += d.str() + "\n";
  return s;
}

void Diagnostics::throw_if_any() const {
  if (!items_.empty()) throw GraphError(items_);
}

static std::string join_lines(const std::vector<Diagnostic>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += '\n';
    s += d[i].str();
  }
  return s;
}

GraphError::GraphError(std::vector<Diagnostic> d) : std::runtime_error(join_lines(d)), diagnostics(std::move(d)) {}

bool GraphError::has(const std::string& code) const {
  return std::any_of(diagnostics.begin(), diagnostics.end(), [&](const Diagnostic& d) { return d.code == code; });
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggest(const std::string& wrong, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (auto& c : candidates) {
    size_t d = edit_distance(wrong, c);
    if (d < best_d) best_d = d, best = c;
  }
  size_t limit = std::max<size_t>(2, wrong.size() / 3);
  if (best.empty() || best_d > limit) return "";
  return " (did you mean \"" + best + "\"?)";
}

}  // namespace noiseflow::graph
