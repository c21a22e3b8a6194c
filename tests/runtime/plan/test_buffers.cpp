// tests/runtime/plan/test_buffers.cpp — the interval allocator, the schedule and the lifetimes it gives.
#include <doctest/doctest.h>

#include <stdexcept>

#include "runtime/plan/buffers.hpp"
#include "tests/runtime/plan/plan_graphs.hpp"

using namespace noiseflow;
using runtime::plan::ExecutionPlan;
using runtime::plan::IntervalAllocator;
using runtime::plan::Slot;
using runtime::plan::Storage;
using runtime::plan::Task;
using test::node_index;

namespace {
bool overlap(const Storage& a, const Storage& b) { return a.life.from <= b.life.until && b.life.from <= a.life.until; }

// No two tenants of one slot are alive at once, and every slot holds its largest tenant.
void check_slots(const ExecutionPlan& p) {
  std::vector<const Storage*> all;
  for (const auto& outs : p.tensors)
    for (const auto& t : outs) all.push_back(&t.storage);
  for (const auto& gr : p.autodiff.gradients) all.push_back(&gr.storage);
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i]->slot < 0) continue;
    CHECK(p.slots[size_t(all[i]->slot)].bytes >= all[i]->bytes);
    for (size_t j = i + 1; j < all.size(); ++j)
      if (all[j]->slot == all[i]->slot) CHECK_FALSE(overlap(*all[i], *all[j]));
  }
}
}  // namespace

TEST_CASE("IntervalAllocator: a slot is reused once its tenant's lifetime has ended, best fit first") {
  std::vector<Slot> slots;
  IntervalAllocator alloc(Slot::Pool::activations, slots);
  CHECK(alloc.take(100, {0, 2}) == 0);  // a
  CHECK(alloc.take(100, {1, 4}) == 1);  // b overlaps a
  CHECK(alloc.take(300, {2, 6}) == 2);  // a is still alive at 2
  CHECK(alloc.take(80, {3, 5}) == 0);   // a ended at 2: its slot fits
  CHECK(alloc.take(50, {5, 7}) == 1);   // b ended at 4; slot 0 is busy until 5
  CHECK(alloc.take(200, {7, 8}) == 2);  // only slot 2 (300) fits 200
  CHECK(alloc.take(90, {9, 9}) == 0);   // all free: the smallest that fits, the first of equals
  CHECK(slots.size() == 3);
  CHECK(alloc.bytes() == 500);
  CHECK_THROWS_AS(alloc.take(10, {8, 9}), std::logic_error);  // out of order
}

TEST_CASE("schedule: forward, then backward consumers first, then the optimizer and what it feeds") {
  const auto g = test::load_graph(test::kDiamond);
  const ExecutionPlan p = runtime::plan::make_plan(g);
  const int opt = node_index(g, "opt"), ema = node_index(g, "ema"), loss = node_index(g, "loss");
  REQUIRE(p.schedule.size() == g.nodes.size() + p.autodiff.backward_order.size());
  CHECK(p.schedule[p.schedule.size() - 2] == Task{opt, false});
  CHECK(p.schedule.back() == Task{ema, false});
  const int first_bwd = p.position({loss, true});
  CHECK(first_bwd == int(g.nodes.size()) - 2);
  for (int k = 0; k < first_bwd; ++k) CHECK_FALSE(p.schedule[size_t(k)].backward);
  CHECK(p.serial_backward);
  CHECK(p.serial_forward);  // activations share slots, so the forward tasks run in the planned order
}

TEST_CASE("buffers: training shares activation and gradient slots by lifetime, what a backward reads lives until it ran") {
  const auto g = test::load_graph(test::kDiamond);
  const ExecutionPlan p = runtime::plan::make_plan(g);
  const auto pos = [&](const char* n, bool bwd) { return p.position({node_index(g, n), bwd}); };
  const auto life = [&](const char* n) { return p.tensor({node_index(g, n), 0}).storage; };
  // Every gradient lives from its consumer's backward to its producer's.
  for (const auto& gr : p.autodiff.gradients) {
    CHECK(gr.storage.slot >= 0);
    CHECK(gr.storage.life.from == p.position({gr.consumer, true}));
    CHECK(gr.storage.life.until == p.position({gr.value.node, true}));
  }
  // a is read by the backward of l (silu reads x) and of r (a convolution reads its input for the weight
  // gradient), not by its own (a convolution never reads its output): it lives until the later of those two.
  CHECK(life("a").life.from == pos("a", false));
  CHECK(life("a").life.until == std::max(pos("l", true), pos("r", true)));
  CHECK(life("a").life.until < pos("a", true));
  // l and r feed only an addition, whose backward reads nothing: they die at its forward.
  CHECK(life("l").life.until == pos("m", false));
  CHECK(life("r").life.until == pos("m", false));
  // m is the input of convolution c: until c's backward; c feeds the loss (which reads it): until the loss's.
  CHECK(life("m").life.until == pos("c", true));
  CHECK(life("c").life.until == pos("loss", true));
  // The heavy outputs are in shared slots, and c reuses r's (r ended before c started); the optimizer's
  // step count and the light sources stay whole.
  for (const char* n : {"a", "l", "r", "m", "c"}) CHECK(life(n).slot >= 0);
  CHECK(life("c").slot == life("r").slot);
  CHECK(life("opt").slot < 0);
  CHECK(life("x").slot < 0);
  CHECK(p.slots.size() < p.autodiff.gradients.size() + 5);
  check_slots(p);
}

TEST_CASE("buffers: the reference path keeps every activation whole") {
  const auto g = test::load_graph(test::kDiamond);
  runtime::plan::PlanOptions o;
  o.reference = true;
  const ExecutionPlan p = runtime::plan::make_plan(g, o);
  for (const auto& outs : p.tensors)
    for (const auto& t : outs) CHECK(t.storage.slot < 0);
}

TEST_CASE("buffers: without an optimizer, heavy nodes' outputs share slots, the last output stays whole") {
  const auto g = test::load_graph(test::kFanOut);
  const ExecutionPlan p = runtime::plan::make_plan(g);
  CHECK(p.serial_forward);
  const int a = node_index(g, "a"), b = node_index(g, "b"), c = node_index(g, "c"), d = node_index(g, "d"),
            e = node_index(g, "e");
  // a is read by b and c: it lives until the later of them.
  CHECK(p.tensor({a, 0}).storage.life.until == std::max(p.position({b, false}), p.position({c, false})));
  CHECK(p.shared({a, 0}));
  CHECK(p.shared({b, 0}));
  CHECK(p.shared({c, 0}));
  CHECK(p.shared({d, 0}));
  CHECK_FALSE(p.shared({e, 0}));  // unconsumed: what a caller reads
  CHECK_FALSE(p.shared({node_index(g, "x"), 0}));  // a light source: whole
  // a is still alive when b and c start (it dies at the later of them), b and c live until d, and d starts
  // where they end: a's slot is free again by then.
  CHECK(p.slots.size() == 3);
  CHECK(p.tensor({d, 0}).storage.slot == p.tensor({a, 0}).storage.slot);
  check_slots(p);
  // The reference path shares nothing.
  const ExecutionPlan r = runtime::plan::make_plan(g, {.reference = true});
  CHECK(r.slots.empty());
  CHECK_FALSE(r.serial_forward);
}

TEST_CASE("buffers: a value read through a state's back edge lives to the end of the tick") {
  const auto g = test::load_graph(test::kStateLoop);
  const ExecutionPlan p = runtime::plan::make_plan(g);
  const int step = node_index(g, "step"), c = node_index(g, "c"), c2 = node_index(g, "c2");
  CHECK(p.tensor({step, 0}).storage.life.until == int(p.schedule.size()) - 1);
  CHECK_FALSE(p.shared({step, 0}));
  CHECK(p.shared({c, 0}));
  CHECK(p.shared({c2, 0}));
  // c dies at c2's forward (its only reader), so c2 cannot take c's slot (c2 starts there) — two slots.
  CHECK(p.slots.size() == 2);
  check_slots(p);
}

TEST_CASE("plans are values: the same graph gives equal plans, another option a different one") {
  const auto g = test::load_graph(test::kDiamond);
  CHECK(runtime::plan::make_plan(g) == runtime::plan::make_plan(g));
  CHECK_FALSE(runtime::plan::make_plan(g) == runtime::plan::make_plan(g, {.reference = true}));
}
