// graph/params.cpp — a file's params (its defaults, then --set or subgraph instance
// overrides), "$name" / "${name}" substitution, and `--set key=value` parsing.
#include <algorithm>

#include "graph/loader_detail.hpp"
#include "graph/pipeline.hpp"

namespace noiseflow::graph {

namespace detail {

namespace {

std::vector<std::string> names_of(const Json& object) {
  std::vector<std::string> names;
  for (auto& [k, v] : object.items()) names.push_back(k);
  return names;
}

// "an integer", "a number", ... : what a param of this default value expects.
std::string type_phrase(const Json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "true or false";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "a list";
  return "an object";
}

// True if `v` may replace the default `def`: the same kind of JSON value, an integer stays one.
bool fits_default(const Json& def, const Json& v) {
  if (def.is_number_integer() && v.is_number_float()) return false;
  return (def.is_number() && v.is_number()) || (def.is_boolean() && v.is_boolean()) ||
         (def.is_string() && v.is_string()) || (def.is_array() && v.is_array()) || def.is_null() ||
         (def.is_object() && v.is_object());
}

// Values and characters of `j` (each value 1, plus the characters of its strings and keys), counted up
// to about `limit`, and its depth (counted up to `max_depth` + 1).
std::pair<int64_t, int> measure(const Json& j, int64_t limit, int max_depth) {
  if (j.is_string()) return {1 + int64_t(j.get_ref<const std::string&>().size()), 0};
  if (!j.is_structured()) return {1, 0};
  int64_t n = 1;
  int depth = 1;
  if (max_depth < 1) return {n, depth};
  for (auto& [k, x] : j.items()) {
    if (n > limit || depth > max_depth) break;
    auto [xn, xd] = measure(x, limit - n, max_depth - 1);
    n += int64_t(j.is_object() ? k.size() : 0) + xn;
    depth = std::max(depth, xd + 1);
  }
  return {n, depth};
}

// Applies one override to `params`, or reports why it cannot.
void apply_override(Json& params, const std::string& key, const Json& value, const std::string& path,
                    const std::optional<InstanceSite>& site, Diagnostics& diag) {
  if (!params.contains(key)) {
    const std::vector<std::string> names = names_of(params);
    if (!site)
      diag.add(path, "", "params", "unknown_param",
               "unknown param " + quote(key) + suggest(key, names) +
                   (names.empty() ? " (the pipeline declares no params)" : ""));
    else
      diag.add(site->file, site->node, "attr " + quote(key), "unknown_attr",
               "subgraph " + quote(path) + " has no param " + quote(key) + suggest(key, names));
    return;
  }
  const Json& def = params[key];
  if (!fits_default(def, value)) {
    const std::string message = "param " + quote(key) + " expects " + type_phrase(def) + ", got " + value.dump();
    if (!site) diag.add(path, "", "params", "wrong_type", message);
    else diag.add(site->file, site->node, "attr " + quote(key), "wrong_type", message);
    return;
  }
  params[key] = value;
}

}  // namespace

Json resolve_params(const Json& doc, const std::string& path, const std::map<std::string, Json>& overrides,
                    const std::optional<InstanceSite>& site, Diagnostics& diag) {
  Json params = Json::object();
  if (doc.contains("params")) {
    if (!doc["params"].is_object()) diag.add(path, "", "params", "wrong_type", "expected an object of name: value");
    else params = doc["params"];
  }
  for (auto& [key, value] : overrides) apply_override(params, key, value, path, site, diag);
  // Params may refer to each other ("$batch"): substitute once, in order.
  const Substituter substitute(params, path, diag);
  for (auto& [key, value] : params.items()) value = substitute(value, "", "params/" + key);
  return params;
}

Json Substituter::operator()(const Json& v, const std::string& node, const std::string& field) const {
  return substitute(v, node, field, 0);
}

Json Substituter::substitute(const Json& v, const std::string& node, const std::string& field, int depth) const {
  if (v.is_string()) return substitute_string(v, node, field, depth);
  if (v.is_object()) {
    Json o = Json::object();
    for (auto& [k, x] : v.items()) o[k] = substitute(x, node, field == "attrs" ? "attr " + quote(k) : field, depth + 1);
    return o;
  }
  if (v.is_array()) {
    Json a = Json::array();
    for (auto& x : v) a.push_back(substitute(x, node, field, depth + 1));
    return a;
  }
  return v;
}

bool Substituter::charge(const Json& value, int depth, const std::string& node, const std::string& field) const {
  if (over_) return false;
  auto [units, d] = measure(value, units_left_, kMaxDepth - depth);
  units_left_ -= units;
  if (units_left_ >= 0 && depth + d <= kMaxDepth) return true;
  over_ = true;
  diag_.add(path_, node, field, "params_too_large",
            units_left_ < 0 ? "substituting params makes more than " + std::to_string(kMaxUnits) +
                                  " values and characters (params built from other params many times over?)"
                            : "substituting params nests deeper than " + std::to_string(kMaxDepth) + " levels");
  return false;
}

Json Substituter::substitute_string(const Json& v, const std::string& node, const std::string& field, int depth) const {
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() > 1 && s[0] == '$' && s[1] != '{' && s[1] != '$') {
    // "$name": the param itself, of its own type.
    const std::string name = s.substr(1);
    if (params_.contains(name)) return charge(params_[name], depth, node, field) ? params_[name] : v;
    unknown_param(s, name, node, field);
    return v;
  }
  if (s.find("${") == std::string::npos && s.find("$$") == std::string::npos) return v;
  std::optional<std::string> text = interpolate(s, node, field);
  return text ? Json(*text) : v;
}

// "${name}" formatted into the string, "$$" as '$'; nullopt (reported) for an unterminated "${".
std::optional<std::string> Substituter::interpolate(const std::string& s, const std::string& node,
                                                    const std::string& field) const {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      const size_t end = s.find('}', i);
      if (end == std::string::npos) {
        diag_.add(path_, node, field, "bad_param_ref", "unterminated ${...} in " + quote(s));
        return std::nullopt;
      }
      const std::string name = s.substr(i + 2, end - i - 2);
      if (!params_.contains(name)) {
        unknown_param("${" + name + "}", name, node, field);
      } else {
        const Json& p = params_[name];
        if (!charge(p, 0, node, field)) return std::nullopt;
        out += p.is_string() ? p.get<std::string>() : p.dump();
      }
      i = end;
    } else {
      out += s[i];
    }
  }
  return out;
}

void Substituter::unknown_param(const std::string& written, const std::string& name, const std::string& node,
                                const std::string& field) const {
  diag_.add(path_, node, field, "unknown_param", "unknown param " + quote(written) + suggest(name, names_of(params_)));
}

}  // namespace detail

std::pair<std::string, Json> parse_set(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    Diagnostics d;
    d.add("--set", "", detail::quote(arg), "bad_set", "expected key=value (e.g. --set batch=128)");
    d.throw_if_any();
  }
  std::string key = arg.substr(0, eq), text = arg.substr(eq + 1);
  Json v = Json::parse(text, nullptr, false);
  if (v.is_discarded()) v = text;
  return {key, v};
}

}  // namespace noiseflow::graph
