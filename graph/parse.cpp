// graph/parse.cpp — pipeline file text to a JSON document; syntax errors give line and column.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "graph/loader_detail.hpp"

namespace noiseflow::graph::detail {

namespace {

// Line and column (1-based) of a byte offset in text.
std::pair<size_t, size_t> line_col(const std::string& text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, col = 1;
    else ++col;
  }
  return {line, col};
}

}  // namespace

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<Json> parse_document(const std::string& text, const std::string& path, Diagnostics& diag) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    diag.add(path, "", "", "empty_file", "the file is empty (expected a JSON object with \"noiseflow\": 1)");
    return std::nullopt;
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // e.byte counts the bytes read, the offending one included.
    auto [line, col] = line_col(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    auto p = what.find("syntax error");
    std::string msg = p != std::string::npos ? what.substr(p) : what;
    diag.add(path + ":" + std::to_string(line) + ":" + std::to_string(col), "", "", "syntax_error", msg);
    return std::nullopt;
  }
}

std::optional<Json> parse_included(const std::string& path, const std::string& from_file, const std::string& from_field,
                                   Diagnostics& diag) {
  std::optional<std::string> text = read_file(path);
  if (!text) {
    diag.add(from_file, "", from_field, "missing_file",
             "cannot open " + quote(path) + (std::filesystem::exists(path) ? " (permission?)" : ": no such file"));
    return std::nullopt;
  }
  return parse_document(*text, path, diag);
}

}  // namespace noiseflow::graph::detail
