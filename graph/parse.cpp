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

// Deeper nesting is refused before parsing: nlohmann's copies, comparisons and dump() recurse, and a
// 600 KB file of nested brackets overflowed the stack (segfault); a pipeline needs a handful of levels.
constexpr int kMaxDepth = 100;

// The byte offset at which `text` first nests deeper than kMaxDepth brackets (strings skipped), or npos.
size_t too_deep_at(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string::npos;
}

// Finds where a parse failed when the exception carries no position: nlohmann's number overflow
// (out_of_range 406, a literal beyond double's range) is raised through the SAX parse_error event, which
// does see it. A validating pass that builds nothing.
struct ErrorLocator final : Json::json_sax_t {
  size_t position = 0;
  std::string token;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string& last_token, const nlohmann::detail::exception&) override {
    position = pos, token = last_token;
    return false;
  }
};

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
  if (const size_t at = too_deep_at(text); at != std::string::npos) {
    auto [line, col] = line_col(text, at);
    diag.add(path + ":" + std::to_string(line) + ":" + std::to_string(col), "", "", "too_deep",
             "nested deeper than " + std::to_string(kMaxDepth) + " levels of [ and {");
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
  } catch (const Json::out_of_range&) {  // a number literal beyond double's range, e.g. 1e400
    ErrorLocator where;
    Json::sax_parse(text, &where);
    const size_t start = where.position >= where.token.size() ? where.position - where.token.size() : 0;
    auto [line, col] = line_col(text, start);
    diag.add(path + ":" + std::to_string(line) + ":" + std::to_string(col), "", "", "number_out_of_range",
             "the number " + where.token + " is out of range (beyond a double's largest, about 1.8e308)");
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
