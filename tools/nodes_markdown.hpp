// tools/nodes_markdown.hpp — the node reference (docs/nodes.md) from the registry's schemas.
#pragma once

#include <string>

#include "runtime/node.hpp"

namespace noiseflow::tools {

/// Every registered node type as Markdown: a table of contents, then per group (the op's prefix before
/// the dot; ops without one are `core`) each type's doc, properties and tables of its inputs, outputs and
/// attributes. Deterministic: the same registry gives the same text (`noiseflow nodes --markdown`).
std::string nodes_markdown(const runtime::Registry& registry);

}  // namespace noiseflow::tools
