// graph/loader_detail.hpp — what the pipeline loader's stages hand each other (internal to graph/).
//
//   text ──parse.cpp──> Json ──params.cpp──> params, $subst
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph/diagnostics.hpp"
#include "graph/schema.hpp"

namespace noiseflow::graph::detail {

/// `s` in double quotes, for messages.
inline std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// ---- parse.cpp: JSON text -> document ----------------------------------------

/// The whole content of a file; nullopt if it cannot be opened.
std::optional<std::string> read_file(const std::string& path);
/// The JSON document in `text`; nullopt after an empty_file or syntax_error diagnostic
/// (syntax errors name `path:line:column`).
std::optional<Json> parse_document(const std::string& text, const std::string& path, Diagnostics& diag);
/// The same for an included file; a file that cannot be opened is reported as missing_file
/// against `from_file`, `from_field` (the include that names it).
std::optional<Json> parse_included(const std::string& path, const std::string& from_file, const std::string& from_field,
                                   Diagnostics& diag);

// ---- params.cpp: params, overrides, "$name" / "${name}" ------------------------

/// The subgraph instance a file is expanded for: the file declaring it and its qualified id.
/// Its attrs override the subgraph's params; its problems are reported there.
struct InstanceSite {
  std::string file;
  std::string node;
};

/// A file's params: its `params` defaults, then `overrides` (--set and the API for the top-level
/// file, the instance's attrs for a subgraph at `site`), each of its default's type; then params
/// that refer to each other ("$batch") are substituted once, in order.
Json resolve_params(const Json& doc, const std::string& path, const std::map<std::string, Json>& overrides,
                    const std::optional<InstanceSite>& site, Diagnostics& diag);

/// Substitutes one file's params into values: "$name" (the whole string, keeping the param's
/// type), "${name}" (formatted into a string), "$$" (a literal '$').
class Substituter {
 public:
  Substituter(const Json& params, std::string path, Diagnostics& diag)
      : params_(params), path_(std::move(path)), diag_(diag) {}

  /// `v` substituted; problems are reported against `node` and `field` (inside "attrs", each
  /// attribute is its own `attr "NAME"` field).
  Json operator()(const Json& v, const std::string& node, const std::string& field) const;

 private:
  Json substitute_string(const Json& v, const std::string& node, const std::string& field) const;
  std::optional<std::string> interpolate(const std::string& s, const std::string& node, const std::string& field) const;
  void unknown_param(const std::string& written, const std::string& name, const std::string& node,
                     const std::string& field) const;

  const Json& params_;
  std::string path_;
  Diagnostics& diag_;
};

}  // namespace noiseflow::graph::detail
