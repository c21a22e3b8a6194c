// tools/net/unet.hpp — a DDPM UNet of any size as a net file (`noiseflow net unet`), so nobody writes 40
// nodes by hand. It writes nn.* op names and the ResBlock subgraph's wiring, so it sits with the CLI, not in
// graph/ (which knows no op).
//
//   x ─stem─ [ResBlock x R (+attn)] ─down─ [ResBlock x R (+attn)] ─down─ ... ─ mid: ResBlock, attn, ResBlock
//             │ skips pushed ...                                                          │
//   out ─norm,conv─ [ResBlock x (R+1) (+attn)] ─up─ [ResBlock x (R+1)] ─up─ ... <─────────┘ skips popped, concatenated
//
// The layout of improved-diffusion's UNet (Nichol & Dhariwal 2021) as pipelines/nets/unet_small.json
// builds it: a stem convolution, per level R ResBlocks (res_block.json) then a stride-2 convolution, a
// middle of ResBlock, self-attention, ResBlock, per level R + 1 ResBlocks each fed the concatenation of
// the path and the matching skip, then nearest upsampling and a convolution; GroupNorm, SiLU and a
// zero-initialised convolution out. Node ids (and so parameter names) are unet_small's: down.K, up.K,
// down.K.conv, up.K.up, up.K.conv, cat.K, mid1, mid_attn, mid2; attention at a level's resolution adds
// down.K.attn / up.K.attn after that ResBlock. With classes > 0 a class embedding (num_classes + 1
// rows, the last the null class of classifier-free guidance) is added to the time embedding, as in
// pipelines/nets/unet_cond.json.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace noiseflow::tools {

/// What `noiseflow net unet` takes. The defaults are unet-small (shared/UNET_SMALL.md).
struct UnetSpec {
  std::string name = "unet";
  int64_t in_channels = 1;
  int64_t out_channels = 0;  ///< 0: in_channels
  int64_t size = 28;         ///< input height and width; divisible by 2^(levels - 1)
  int64_t ch = 32;           ///< base channels
  std::vector<int64_t> mult = {1, 2, 2};  ///< channels per level, times ch
  int64_t res_blocks = 2;    ///< ResBlocks per level on the way down (one more on the way up)
  std::set<int64_t> attn;    ///< resolutions whose ResBlocks are followed by self-attention
  bool mid_attn = true;      ///< self-attention between the two middle ResBlocks
  int64_t heads = 1;         ///< attention heads
  double dropout = 0.0;      ///< dropout in every ResBlock (before its second convolution), while training
  int64_t groups = 8;        ///< GroupNorm groups
  int64_t temb_mult = 4;     ///< time-embedding width, times ch
  int64_t classes = 0;       ///< > 0: class-conditional (classifier-free guidance's null class added)
  std::string res_block = "res_block.json";  ///< the include path written for the ResBlock subgraph
};

/// What is wrong with a spec, one sentence per problem naming the option (--size, --mult, ...); empty if
/// nothing is.
std::vector<std::string> unet_problems(const UnetSpec& spec);

/// The command line that writes this net (every option that differs from the defaults, in a fixed order).
std::string unet_command(const UnetSpec& spec);

/// Trainable parameters of the net (weights, biases, GroupNorm scales and shifts, the class table).
int64_t unet_parameter_count(const UnetSpec& spec);

/// The net file's text (a `noiseflow: 1` subgraph, one node a line). The spec must have no problems.
std::string unet_net_file(const UnetSpec& spec);

}  // namespace noiseflow::tools
