#include "runtime/plan/autodiff.hpp"

#include <map>

#include "runtime/errors.hpp"

namespace noiseflow::runtime::plan {

namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

bool ordering_edge(const graph::GraphNode& gn, size_t port) {
  return gn.inputs[port] && !gn.schema->is_back_edge(gn.schema->inputs()[port].name);
}

// The optimizer and its loss input, or -1 without an optimizer.
int find_optimizer(const graph::Graph& g, ValueId& loss) {
  std::vector<int> optimizers;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].schema->is_optimizer()) optimizers.push_back(int(i));
  if (optimizers.empty()) return -1;
  const graph::GraphNode& opt = g.nodes[size_t(optimizers[0])];
  if (optimizers.size() > 1) {
    const graph::GraphNode& second = g.nodes[size_t(optimizers[1])];
    throw RunError({opt.file, second.id, "op", "two_optimizers",
                    "only one optimizer per pipeline is supported (found " + q(opt.id) + " too)"},
                   "plan");
  }
  const int li = opt.schema->input_index("loss");
  if (li < 0 || !opt.inputs[size_t(li)])
    throw plan_error(opt, "input \"loss\"", "missing_loss", "the optimizer needs a loss input");
  loss = {opt.inputs[size_t(li)]->node, opt.inputs[size_t(li)]->output};
  return optimizers[0];
}

// requires_grad: a node has parameters, or a differentiable input fed by such a node.
std::vector<char> requires_grad(const graph::Graph& g) {
  std::vector<char> req(g.nodes.size(), 0);
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    if (!gn.params.empty() && !gn.schema->is_optimizer()) req[size_t(i)] = 1;
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && gn.schema->inputs()[p].differentiable && req[size_t(gn.inputs[p]->node)]) req[size_t(i)] = 1;
  }
  return req;
}

// Ancestors of the loss through ordering edges (the loss included); with `differentiable_only`, those a
// gradient reaches: through differentiable inputs only. A gradient barrier (tensor.stop_gradient) cuts that
// path, so a net feeding the loss only through one is not trained.
std::vector<char> ancestors(const graph::Graph& g, int loss, bool differentiable_only = false) {
  std::vector<char> anc(g.nodes.size(), 0);
  anc[size_t(loss)] = 1;
  for (auto it = g.order.rbegin(); it != g.order.rend(); ++it) {
    if (!anc[size_t(*it)]) continue;
    const graph::GraphNode& gn = g.nodes[size_t(*it)];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (ordering_edge(gn, p) && (!differentiable_only || gn.schema->inputs()[p].differentiable))
        anc[size_t(gn.inputs[p]->node)] = 1;
  }
  return anc;
}

// A node on the loss path whose gradient would be silently dropped is an error (a gradient barrier drops
// it on purpose).
void check_differentiable(const graph::Graph& g, const std::vector<char>& req, const std::vector<char>& anc, int loss) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!anc[i]) continue;
    const graph::GraphNode& gn = g.nodes[i];
    if (gn.schema->is_gradient_barrier()) continue;
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && req[size_t(gn.inputs[p]->node)] && !gn.schema->inputs()[p].differentiable)
        throw plan_error(gn, "input " + q(gn.schema->inputs()[p].name), "not_differentiable",
                         gn.op + " is not differentiable in this input, but it lies between trainable parameters and the loss " +
                             q(g.nodes[size_t(loss)].id));
  }
}

// One Gradient per (consumer, port) that sends gradient to a backward node's output, in backward order.
void route_gradients(const graph::Graph& g, const std::vector<std::vector<Layout>>& layouts, AutodiffPlan& ad) {
  std::map<ValueId, std::vector<int>> senders;  // value -> its gradients
  for (int c : ad.backward_order) {
    const graph::GraphNode& gn = g.nodes[size_t(c)];
    for (size_t p = 0; p < gn.inputs.size(); ++p) {
      if (!gn.inputs[p] || !gn.schema->inputs()[p].differentiable || !ad.in_backward[size_t(gn.inputs[p]->node)]) continue;
      const ValueId v{gn.inputs[p]->node, gn.inputs[p]->output};
      Gradient gr;
      gr.value = v;
      gr.consumer = c;
      gr.port = int(p);
      gr.layout = layouts[size_t(v.node)][size_t(v.output)];
      gr.converted = gr.layout == Layout::nChw16c && gn.schema->layout_support() == graph::LayoutSupport::plain;
      senders[v].push_back(int(ad.gradients.size()));
      ad.gradients.push_back(gr);
    }
  }
  for (auto& [v, list] : senders)
    if (list.size() > 1) ad.fan_in.push_back({v, list});
  for (int i : ad.backward_order)
    for (size_t o = 0; o < g.nodes[size_t(i)].output_shapes.size(); ++o)
      if (!senders.count({i, int(o)})) ad.zero_gradients.push_back({i, int(o)});
}

}  // namespace

AutodiffPlan plan_autodiff(const graph::Graph& g, const std::vector<std::vector<Layout>>& layouts) {
  AutodiffPlan ad;
  ad.in_backward.assign(g.nodes.size(), 0);
  ad.optimizer = find_optimizer(g, ad.loss);
  if (ad.optimizer < 0) return ad;
  const graph::GraphNode& opt = g.nodes[size_t(ad.optimizer)];
  const auto req = requires_grad(g);
  const auto anc = ancestors(g, ad.loss.node);
  const auto reach = ancestors(g, ad.loss.node, true);
  if (!req[size_t(ad.loss.node)])
    throw plan_error(opt, "input \"loss\"", "nothing_to_optimise",
                     "no trainable parameter upstream of " + q(g.nodes[size_t(ad.loss.node)].id) + " (nothing to optimise)");
  check_differentiable(g, req, anc, ad.loss.node);
  for (auto it = g.order.rbegin(); it != g.order.rend(); ++it)
    if (reach[size_t(*it)] && req[size_t(*it)]) {
      ad.backward_order.push_back(*it);
      ad.in_backward[size_t(*it)] = 1;
    }
  route_gradients(g, layouts, ad);
  // Weight tying: a tied node's gradients go to its owner's parameters, which train when any user of them
  // is in the backward (the owner itself or a tied node).
  std::map<int, AutodiffPlan::TieSum> ties;
  for (int i : ad.backward_order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    if (gn.params.empty()) continue;
    const int owner = gn.params_of.empty() ? i : g.find(gn.params_of);
    AutodiffPlan::TieSum& t = ties[owner];
    t.owner = owner;
    if (owner == i) t.users.insert(t.users.begin(), i);
    else t.users.push_back(i);
  }
  for (int i : ad.backward_order)
    if (!g.nodes[size_t(i)].params.empty() && g.nodes[size_t(i)].params_of.empty()) ad.trainable_nodes.push_back(i);
  for (auto& [owner, t] : ties) {
    const bool tied = t.users.size() > 1 || t.users.front() != owner;
    if (!tied) continue;
    if (!ad.in_backward[size_t(owner)]) ad.trainable_nodes.push_back(owner);
    ad.tie_sums.push_back(t);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : g.nodes[i].inputs)
      if (in && in->node == ad.optimizer) {
        ad.optimizer_readers.push_back(int(i));
        break;
      }
  return ad;
}

}  // namespace noiseflow::runtime::plan
