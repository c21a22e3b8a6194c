// graph/loader_detail.hpp — what the pipeline loader's stages hand each other (internal to graph/).
//
//   text ──parse.cpp──> Json ──expand.cpp──> Expansion: flat nodes, aliases, scopes
//        (params.cpp: params and $subst in every file; includes.cpp: subgraph instances)
//   Expansion ──resolve.cpp──> GraphNodes with their inputs as NodeRefs
//        (Schema::check_attrs: attributes) ──pipeline.cpp──> Graph, ordered and shape-checked
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "graph/diagnostics.hpp"
#include "graph/pipeline.hpp"
#include "graph/schema.hpp"

namespace noiseflow::graph::detail {

/// `s` in double quotes, for messages.
inline std::string quote(const std::string& s) { return "\"" + s + "\""; }

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

  /// What one substituter may produce: values and characters (params built from params can grow
  /// exponentially: 26 params each "${prev}${prev}" make 1 GB from 705 bytes), and nesting depth.
  static constexpr int64_t kMaxUnits = int64_t(1) << 24;
  static constexpr int kMaxDepth = 100;

 private:
  Json substitute(const Json& v, const std::string& node, const std::string& field, int depth) const;
  Json substitute_string(const Json& v, const std::string& node, const std::string& field, int depth) const;
  std::optional<std::string> interpolate(const std::string& s, const std::string& node, const std::string& field) const;
  void unknown_param(const std::string& written, const std::string& name, const std::string& node,
                     const std::string& field) const;
  /// Charges a param's value, copied in at `depth`, against the limits; false (reported once) past them.
  bool charge(const Json& value, int depth, const std::string& node, const std::string& field) const;

  const Json& params_;
  std::string path_;
  Diagnostics& diag_;
  mutable int64_t units_left_ = kMaxUnits;
  mutable bool over_ = false;
};

// ---- expand.cpp, includes.cpp: files -> flat nodes ------------------------------

/// An input reference as written, and the scope it is resolved in.
struct RawRef {
  std::string qualified;  ///< scope prefix + text
  std::string text;       ///< as written
  int scope = 0;          ///< index into Expansion::scopes
};

/// A node of the expanded pipeline (subgraph instances inlined), references not yet resolved.
struct FlatNode {
  std::string id, op, file;
  Json attrs;                                          ///< params substituted, defaults not filled
  std::vector<std::pair<std::string, RawRef>> inputs;  ///< port -> reference
  int64_t every = 0;
  bool at_end = false;
  /// "params_of": the qualified id of the node whose parameters this one shares (empty: none), and where
  /// that was written (a node's own key, or the subgraph instance that carried it), for errors.
  std::string params_of, params_of_file, params_of_node;
  bool bad = false;  ///< its op was already reported (unknown, or a missing include): skip later checks
};

/// The names one file declares, for did-you-mean suggestions.
struct Scope {
  std::string prefix;              ///< "" for the top-level file, "net." in instance net
  std::vector<std::string> names;  ///< local node and input names
};

/// A subgraph instance named alone when it has several outputs and none named "out".
struct AmbiguousInstance {
  std::string message;  ///< reported where the name is used
};
/// What an alias stands for: a qualified reference, or no one output.
using AliasTarget = std::variant<std::string, AmbiguousInstance>;

/// Where a subgraph output was declared, to report one that points nowhere.
struct OutputSite {
  std::string file;
  int scope = 0;
};

/// Every file of a pipeline, expanded.
struct Expansion {
  std::vector<FlatNode> nodes;
  /// Qualified names that are no node: instances ("net"), their outputs ("net.out") and subgraph inputs.
  std::map<std::string, AliasTarget> aliases;
  std::vector<Scope> scopes;
  /// Names already reported (failed subgraph instances, unconnected subgraph inputs): references
  /// to them, or to their outputs, add no further message.
  std::set<std::string> broken;
  std::map<std::string, OutputSite> outputs;  ///< subgraph output targets (qualified)
  Json params = Json::object();               ///< the top-level file's, resolved
  Json run = Json::object();                  ///< its run block, params substituted
  std::string name;                           ///< its name (default: the file's stem)
};

/// Expands the top-level document `doc` (from `path`) and every file it includes.
Expansion expand_pipeline(const Json& doc, const std::string& path, const LoadOptions& options, Diagnostics& diag);

/// One file being expanded: where it sits in the pipeline and what it declares.
struct FileFrame {
  FileFrame(const Json& doc_, std::string path_, std::string prefix_, std::optional<InstanceSite> site_,
            std::vector<std::string> stack_)
      : doc(doc_), path(std::move(path_)), prefix(std::move(prefix_)), site(std::move(site_)), stack(std::move(stack_)) {}

  const Json& doc;
  std::string path;
  std::string prefix;                 ///< prefix of its qualified ids ("" at top level)
  std::optional<InstanceSite> site;   ///< the instance it is expanded for; none for the top-level file
  std::vector<std::string> stack;     ///< include chain from the top-level file (for cycles)
  Json params = Json::object();       ///< resolved
  std::map<std::string, std::string> includes;  ///< alias -> file
  std::set<std::string> missing_includes;       ///< aliases already reported: their instances stay silent
  std::vector<std::string> input_names;         ///< a subgraph's declared inputs
  int scope = 0;                                ///< index into Expansion::scopes
  bool top() const { return !site; }
};

/// A subgraph output: its name and the qualified reference it stands for.
struct SubgraphOutput {
  std::string name, target;
};

/// One node declaration as read from its file, before it becomes a flat node or an instance.
struct NodeDecl {
  std::string qid;  ///< qualified id
  std::string op;
  Json attrs;       ///< params substituted
  std::string op_written;  ///< "op" as written when params chose it ("sampler.${sampler}"), else empty
  std::vector<std::pair<std::string, RawRef>> inputs;
  std::string params_of;  ///< "params_of" qualified with the file's prefix, empty when absent
};

/// Walks a pipeline file and, through its instances, the files it includes.
class Expander {
 public:
  Expander(const LoadOptions& options, Diagnostics& diag, Expansion& out) : options_(options), diag_(diag), out_(out) {}

  /// Expands `f` into the Expansion; `overrides` set its params, `bindings` connect its inputs
  /// (input name -> reference in the including file). Returns its outputs, in declaration order.
  std::vector<SubgraphOutput> expand_file(FileFrame& f, const std::map<std::string, Json>& overrides,
                                          const std::map<std::string, RawRef>& bindings);

 private:
  // expand.cpp: the file itself and its nodes.
  bool check_header(const FileFrame& f);
  void read_top_level(const FileFrame& f, const Substituter& subst);
  void add_placeholder_inputs(FileFrame& f, const Substituter& subst);
  bool expand_nodes(const FileFrame& f, const Substituter& subst);
  std::optional<NodeDecl> read_node(const FileFrame& f, const std::string& id, const Json& nd, const Substituter& subst);
  bool condition_holds(const FileFrame& f, const std::string& qid, const Json& nd, const Substituter& subst);
  std::vector<std::pair<std::string, RawRef>> read_inputs(const FileFrame& f, const std::string& qid, const Json& nd,
                                                          const Substituter& subst);
  void add_flat_node(const FileFrame& f, NodeDecl decl, const Json& nd, const Substituter& subst);

  // includes.cpp: the include table, subgraph inputs and outputs, instances.
  void read_includes(FileFrame& f, const Substituter& subst);
  void declare_inputs(FileFrame& f, const std::map<std::string, RawRef>& bindings);
  void expand_instance(const FileFrame& f, const NodeDecl& decl, const Json& nd);
  void alias_instance(const std::string& qid, const std::vector<SubgraphOutput>& outs, const std::string& file);
  std::vector<SubgraphOutput> read_outputs(const FileFrame& f);

  const LoadOptions& options_;
  Diagnostics& diag_;
  Expansion& out_;
};

// ---- resolve.cpp: flat nodes -> graph nodes, references -> NodeRefs ----------------

/// Node id -> index into Graph::nodes.
using NodeIndex = std::map<std::string, int>;

/// Adds a GraphNode (schema looked up, inputs unset) for every flat node with a new id;
/// reports ids used twice or clashing with an alias.
NodeIndex add_graph_nodes(Graph& g, const Expansion& ex, const LoadOptions& options, Diagnostics& diag);

/// Why a reference did not resolve.
struct RefError {
  enum class Kind {
    no_node,           ///< it names nothing (reported as unknown_node, with a suggestion from its scope)
    already_reported,  ///< it points into something reported before: no further message
    unknown_output,    ///< `message` says what is wrong: no such output, several outputs, an alias loop
  };
  Kind kind = Kind::no_node;
  std::string message;
};

/// Resolves qualified references ("net.out", "sched.table") through the expansion's aliases.
class Resolver {
 public:
  Resolver(const Graph& g, const Expansion& ex, const NodeIndex& index) : g_(g), ex_(ex), index_(index) {}

  std::variant<NodeRef, RefError> resolve(const std::string& ref) const { return resolve(ref, 0); }

 private:
  std::variant<NodeRef, RefError> resolve(const std::string& ref, int depth) const;
  std::optional<std::variant<NodeRef, RefError>> resolve_output(const std::string& head, const std::string& tail,
                                                                int depth) const;
  bool is_broken(const std::string& ref) const;

  const Graph& g_;
  const Expansion& ex_;
  const NodeIndex& index_;
};

/// Sets the inputs of `n` (declared as `f`) and reports unknown ports, references that do not
/// resolve and required inputs left unconnected.
void connect_inputs(const FlatNode& f, GraphNode& n, const Resolver& resolver, const Expansion& ex, Diagnostics& diag);
/// Reports subgraph outputs whose target names no node.
void check_subgraph_outputs(const Resolver& resolver, const Expansion& ex, Diagnostics& diag);
/// Every alias that resolves, to its node output.
std::map<std::string, NodeRef> resolve_aliases(const Resolver& resolver, const Expansion& ex);

}  // namespace noiseflow::graph::detail
