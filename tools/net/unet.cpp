// tools/net/unet.cpp — the UNet net-file generator of `noiseflow net unet` (tools/net/unet.hpp).
#include "tools/net/unet.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

namespace noiseflow::tools {

namespace {

using OJson = nlohmann::ordered_json;

std::string join(const std::vector<int64_t>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

/// One line of JSON with ", " and ": " between items, keys in insertion order.
void write_compact(std::ostream& out, const OJson& v) {
  if (v.is_object()) {
    out << '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << (first ? "" : ", ") << OJson(it.key()).dump() << ": ";
      write_compact(out, it.value());
      first = false;
    }
    out << '}';
  } else if (v.is_array()) {
    out << '[';
    for (size_t i = 0; i < v.size(); ++i) {
      out << (i ? ", " : "");
      write_compact(out, v[i]);
    }
    out << ']';
  } else {
    out << v.dump();
  }
}

std::string compact(const OJson& v) {
  std::ostringstream s;
  write_compact(s, v);
  return s.str();
}

/// The net's nodes, built once for the file and the parameter count alike.
class Builder {
 public:
  explicit Builder(const UnetSpec& s) : s_(s), temb_(s.temb_mult * s.ch) {}

  void build() {
    const int64_t levels = int64_t(s_.mult.size());
    node("temb_sin", "nn.timestep_embedding", {{"t", "t"}}, {{"dim", "$ch"}});
    linear("temb1", "temb_sin", s_.ch);
    node("temb_act", "nn.silu", {{"x", "temb1"}}, {});
    linear("temb2", "temb_act", temb_);
    if (s_.classes > 0) {
      node("class_emb", "nn.class_embedding", {{"labels", "labels"}},
           {{"num_classes", "$num_classes"}, {"dim", "$temb_dim"}});
      params_ += (s_.classes + 1) * temb_;
      node("temb_cond", "nn.add", {{"a", "temb2"}, {"b", "class_emb"}}, {});
      node("emb", "nn.silu", {{"x", "temb_cond"}}, {});
    } else {
      node("emb", "nn.silu", {{"x", "temb2"}}, {});
    }

    // Down: the stem and every block's output are skips.
    int64_t res = s_.size, c = s_.ch * s_.mult[0];
    conv("stem", "x", s_.in_channels, s_.mult[0], 3, 1, false);
    std::vector<std::pair<std::string, int64_t>> skips{{"stem", c}};
    std::string cur = "stem";
    int64_t k = 0;
    for (int64_t l = 0; l < levels; ++l) {
      const int64_t m = s_.mult[size_t(l)];
      for (int64_t r = 0; r < s_.res_blocks; ++r, ++k) {
        const std::string id = "down." + std::to_string(k);
        res_block(id, cur, c, m);
        cur = id, c = s_.ch * m;
        if (s_.attn.count(res)) cur = attention(id + ".attn", id, c);
        skips.emplace_back(cur, c);
      }
      if (l + 1 < levels) {
        const std::string id = "down." + std::to_string(k++) + ".conv";
        conv(id, cur, c, m, 3, 2, false);
        cur = id, res /= 2;
        skips.emplace_back(cur, c);
      }
    }

    // Middle.
    const int64_t m_last = s_.mult.back();
    res_block("mid1", cur, c, m_last);
    cur = "mid1";
    if (s_.mid_attn) cur = attention("mid_attn", "mid1", c);
    res_block("mid2", cur, c, m_last);
    cur = "mid2";

    // Up: each block takes [path, skip].
    k = 0;
    for (int64_t l = levels - 1; l >= 0; --l) {
      const int64_t m = s_.mult[size_t(l)];
      for (int64_t r = 0; r <= s_.res_blocks; ++r, ++k) {
        const auto [skip, skip_c] = skips.back();
        skips.pop_back();
        const std::string n = std::to_string(k), cat = "cat." + n, id = "up." + n;
        node(cat, "nn.concat", {{"a", cur}, {"b", skip}}, {});
        res_block(id, cat, c + skip_c, m);
        cur = id, c = s_.ch * m;
        if (s_.attn.count(res)) cur = attention(id + ".attn", id, c);
      }
      if (l > 0) {
        const std::string id = "up." + std::to_string(k++);
        node(id + ".up", "nn.upsample", {{"x", cur}}, {{"scale", 2}});
        conv(id + ".conv", id + ".up", c, m, 3, 1, false);
        cur = id + ".conv", res *= 2;
      }
    }

    OJson norm_attrs{{"groups", s_.groups}, {"activation", "silu"}};
    node("out_norm", "nn.group_norm", {{"x", cur}}, norm_attrs);
    params_ += 2 * c;
    node("out_conv", "nn.conv2d", {{"x", "out_norm"}}, {{"out_channels", "$out_channels"}, {"zero_init", true}});
    params_ += c * out_channels() * 9 + out_channels();
  }

  int64_t out_channels() const { return s_.out_channels > 0 ? s_.out_channels : s_.in_channels; }
  /// The param naming a level's channel count: ch for multiplier 1, chM for M.
  static std::string channel_param(int64_t m) { return m == 1 ? "ch" : "ch" + std::to_string(m); }

  std::vector<std::pair<std::string, OJson>> nodes;
  int64_t params_ = 0;

 private:
  void node(const std::string& id, const std::string& op, OJson inputs, OJson attrs) {
    OJson n{{"op", op}};
    if (!inputs.empty()) n["inputs"] = std::move(inputs);
    if (!attrs.empty()) n["attrs"] = std::move(attrs);
    nodes.emplace_back(id, std::move(n));
  }

  void linear(const std::string& id, const std::string& x, int64_t in) {
    node(id, "nn.linear", {{"x", x}}, {{"out_features", "$temb_dim"}});
    params_ += in * temb_ + temb_;
  }

  void conv(const std::string& id, const std::string& x, int64_t cin, int64_t m, int64_t kernel, int64_t stride,
            bool zero) {
    OJson attrs{{"out_channels", "$" + channel_param(m)}};
    if (stride != 1) attrs["stride"] = stride;
    if (zero) attrs["zero_init"] = true;
    node(id, "nn.conv2d", {{"x", x}}, attrs);
    const int64_t cout = s_.ch * m;
    params_ += cin * cout * kernel * kernel + cout;
  }

  void res_block(const std::string& id, const std::string& x, int64_t cin, int64_t m) {
    const int64_t cout = s_.ch * m;
    OJson attrs{{"cout", "$" + channel_param(m)}};
    if (cin != cout) attrs["skip"] = true, attrs["residual"] = "skip";
    if (s_.groups != 8) attrs["groups"] = s_.groups;
    if (s_.dropout > 0) attrs["dropout"] = s_.dropout;
    node(id, "res_block", {{"x", x}, {"emb", "emb"}}, attrs);
    params_ += 2 * cin + temb_ * cout + cout + cin * cout * 9 + cout + 2 * cout + cout * cout * 9 + cout;
    if (cin != cout) params_ += cin * cout + cout;
  }

  std::string attention(const std::string& id, const std::string& x, int64_t c) {
    OJson attrs{{"heads", s_.heads}, {"zero_init", true}};
    if (s_.groups != 8) attrs["groups"] = s_.groups;
    node(id, "nn.attention", {{"x", x}}, attrs);
    params_ += 2 * c + c * 3 * c + 3 * c + c * c + c;
    return id;
  }

  const UnetSpec& s_;
  const int64_t temb_;
};

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// 1234567 -> "1,234,567".
std::string thousands(int64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

}  // namespace

std::vector<std::string> unet_problems(const UnetSpec& s) {
  std::vector<std::string> p;
  auto positive = [&](int64_t v, const char* opt) {
    if (v < 1) p.push_back(std::string(opt) + " must be at least 1, got " + std::to_string(v));
  };
  if (s.name.empty() || s.name.find_first_of(" \t\"/\\") != std::string::npos)
    p.push_back("--name must be a non-empty name without spaces, quotes or slashes, got \"" + s.name + "\"");
  positive(s.in_channels, "--in-channels");
  if (s.out_channels < 0) p.push_back("--out-channels must be 0 (as --in-channels) or more, got " + std::to_string(s.out_channels));
  positive(s.size, "--size");
  positive(s.ch, "--ch");
  positive(s.res_blocks, "--res-blocks");
  positive(s.heads, "--heads");
  positive(s.groups, "--groups");
  positive(s.temb_mult, "--temb-mult");
  if (s.classes < 0) p.push_back("--classes must be 0 (unconditional) or more, got " + std::to_string(s.classes));
  if (!(s.dropout >= 0 && s.dropout < 1)) p.push_back("--dropout must be in [0, 1), got " + format_number(s.dropout));
  if (s.mult.empty()) p.push_back("--mult needs at least one level, e.g. 1,2,2");
  for (int64_t m : s.mult)
    if (m < 1) p.push_back("--mult: every multiplier must be at least 1, got " + join(s.mult, ","));
  if (!p.empty()) return p;

  const int64_t levels = int64_t(s.mult.size());
  if (levels > 20 || s.size % (int64_t(1) << (levels - 1)) != 0)
    p.push_back("--size " + std::to_string(s.size) + " does not halve " + std::to_string(levels - 1) + " times (--mult " +
                join(s.mult, ",") + " has " + std::to_string(levels) + " levels): use a multiple of " +
                std::to_string(int64_t(1) << std::min<int64_t>(levels - 1, 20)) + " or fewer levels");
  std::vector<int64_t> resolutions;
  for (int64_t l = 0, r = s.size; l < levels && p.empty(); ++l, r /= 2) resolutions.push_back(r);
  for (int64_t a : s.attn)
    if (p.empty() && std::find(resolutions.begin(), resolutions.end(), a) == resolutions.end())
      p.push_back("--attn " + std::to_string(a) + " is not a resolution of this net: its levels are at " +
                  join(resolutions, ", "));
  for (int64_t m : s.mult) {
    const int64_t c = s.ch * m;
    if (c % s.groups != 0) {
      p.push_back("--groups " + std::to_string(s.groups) + " does not divide the " + std::to_string(c) +
                  " channels of a level (--ch " + std::to_string(s.ch) + " times " + std::to_string(m) + ")");
      break;
    }
    if ((s.mid_attn || !s.attn.empty()) && c % s.heads != 0) {
      p.push_back("--heads " + std::to_string(s.heads) + " does not divide the " + std::to_string(c) +
                  " channels of a level");
      break;
    }
  }
  if (s.ch % 2 != 0) p.push_back("--ch must be even (the sinusoidal time embedding has ch / 2 frequencies), got " + std::to_string(s.ch));
  return p;
}

std::string unet_command(const UnetSpec& s) {
  const UnetSpec d;
  std::string c = "noiseflow net unet --name " + s.name;
  c += " --in-channels " + std::to_string(s.in_channels);
  if (s.out_channels > 0 && s.out_channels != s.in_channels) c += " --out-channels " + std::to_string(s.out_channels);
  c += " --size " + std::to_string(s.size) + " --ch " + std::to_string(s.ch) + " --mult " + join(s.mult, ",");
  c += " --res-blocks " + std::to_string(s.res_blocks);
  if (!s.attn.empty()) c += " --attn " + join(std::vector<int64_t>(s.attn.begin(), s.attn.end()), ",");
  if (!s.mid_attn) c += " --no-mid-attn";
  if (s.heads != d.heads) c += " --heads " + std::to_string(s.heads);
  if (s.dropout > 0) c += " --dropout " + format_number(s.dropout);
  if (s.groups != d.groups) c += " --groups " + std::to_string(s.groups);
  if (s.temb_mult != d.temb_mult) c += " --temb-mult " + std::to_string(s.temb_mult);
  if (s.classes > 0) c += " --classes " + std::to_string(s.classes);
  return c;
}

int64_t unet_parameter_count(const UnetSpec& spec) {
  Builder b(spec);
  b.build();
  return b.params_;
}

std::string unet_net_file(const UnetSpec& s) {
  Builder b(s);
  b.build();
  const int64_t levels = int64_t(s.mult.size()), out_c = b.out_channels();

  // The doc: what the file is and the command that writes it.
  std::vector<int64_t> res, chans;
  for (int64_t l = 0, r = s.size; l < levels; ++l, r /= 2) res.push_back(r), chans.push_back(s.ch * s.mult[size_t(l)]);
  std::string at;
  for (size_t i = 0; i < res.size(); ++i) at += (i ? ", " : "") + std::to_string(res[i]) + "x" + std::to_string(res[i]);
  std::string attn = s.mid_attn ? "self-attention (" + std::to_string(s.heads) + (s.heads == 1 ? " head" : " heads") +
                                      ") in the middle" : "no attention in the middle";
  if (!s.attn.empty()) {
    std::string where;
    for (int64_t a : s.attn) where += (where.empty() ? "" : ", ") + std::to_string(a) + "x" + std::to_string(a);
    attn += " and after every ResBlock at " + where;
  }
  std::ostringstream doc;
  doc << "DDPM UNet (improved-diffusion's layout) written by `" << unet_command(s)
      << "` (regenerate it rather than edit it): " << levels << (levels == 1 ? " level" : " levels") << " at " << at
      << " with " << join(chans, ", ") << " channels, " << s.res_blocks << " ResBlocks down and " << s.res_blocks + 1
      << " up per level (res_block.json";
  if (s.dropout > 0) doc << ", dropout " << format_number(s.dropout) << " while training";
  doc << "), stride-2 convolutions down, nearest upsampling and a convolution up, " << attn << ". ";
  if (s.classes > 0)
    doc << "Class-conditional: a learned vector per class (nn.class_embedding, num_classes + 1 rows, the last the "
           "null class of classifier-free guidance) is added to the time embedding. ";
  doc << "Predicts [N, " << out_c << ", " << s.size << ", " << s.size << "] from x_t [N, " << s.in_channels << ", "
      << s.size << ", " << s.size << "], t [N]" << (s.classes > 0 ? " and labels [N]" : "") << "; "
      << thousands(b.params_) << " parameters.";

  OJson params;
  if (s.classes > 0) params["num_classes"] = s.classes;
  params["ch"] = s.ch;
  for (int64_t m : s.mult)
    if (m != 1) params[Builder::channel_param(m)] = s.ch * m;
  params["temb_dim"] = s.temb_mult * s.ch;
  params["out_channels"] = out_c;
  params["batch"] = 2;

  OJson inputs{{"x", {{"shape", {"$batch", s.in_channels, s.size, s.size}}}}, {"t", {{"shape", {"$batch"}}}}};
  if (s.classes > 0) inputs["labels"] = {{"shape", {"$batch"}}};

  std::ostringstream f;
  f << "{\n  \"noiseflow\": 1,\n";
  f << "  \"name\": " << OJson(s.name).dump() << ",\n";
  f << "  \"doc\": " << OJson(doc.str()).dump() << ",\n";
  f << "  \"params\": " << compact(params) << ",\n";
  f << "  \"include\": " << compact(OJson{{"res_block", s.res_block}}) << ",\n";
  f << "  \"inputs\": " << compact(inputs) << ",\n";
  f << "  \"outputs\": {\"out\": \"out_conv\"},\n";
  f << "  \"nodes\": {\n";
  for (size_t i = 0; i < b.nodes.size(); ++i)
    f << "    " << OJson(b.nodes[i].first).dump() << ": " << compact(b.nodes[i].second)
      << (i + 1 < b.nodes.size() ? ",\n" : "\n");
  f << "  }\n}\n";
  return f.str();
}

}  // namespace noiseflow::tools
