// tests/runtime/test_safetensors.cpp — safetensors files (runtime/safetensors.hpp): round trip, every
// corruption case with its message, and a writer killed mid-way leaving the previous file intact.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/safetensors.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using runtime::Tensor;
namespace fs = std::filesystem;

namespace {

using noiseflow::test::TempDir;

// Writes a raw safetensors file from a header and data bytes.
void write_raw(const std::string& path, const std::string& header, const std::string& data, int64_t len = -1) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = len < 0 ? header.size() : uint64_t(len);
  for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
  out << header << data;
}

std::string error_of(const std::string& path) {
  try {
    runtime::read_safetensors(path);
  } catch (const runtime::CheckpointError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, shapes, values and metadata") {
  TempDir d;
  Tensor a({2, 3}, {1, 2, 3, 4, 5, 6}), b({4}, {-1.5f, 0.f, 2.25f, 1e-8f});
  runtime::write_safetensors(d.file("x.safetensors"), {{"a", a}, {"b.weight", b}}, {{"step", "12"}});
  CHECK_FALSE(fs::exists(d.file("x.safetensors.tmp")));
  auto st = runtime::read_safetensors(d.file("x.safetensors"));
  REQUIRE(st.tensors.size() == 2);
  CHECK(st.tensors.at("a").shape() == graph::Shape{2, 3});
  CHECK(st.tensors.at("a").to_vector() == a.to_vector());
  CHECK(st.tensors.at("b.weight").to_vector() == b.to_vector());
  CHECK(st.metadata.at("step") == "12");
  // The header is the documented format: 8-byte little-endian length, JSON, data.
  std::ifstream in(d.file("x.safetensors"), std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  std::string h(n, '\0');
  in.read(h.data(), std::streamsize(n));
  auto j = nlohmann::json::parse(h);
  CHECK(j["a"]["dtype"] == "F32");
  CHECK(j["a"]["data_offsets"] == nlohmann::json::array({0, 24}));
  CHECK(j["b.weight"]["data_offsets"] == nlohmann::json::array({24, 40}));
}

TEST_CASE("safetensors reads F16, BF16 and F64") {
  TempDir d;
  std::string data;
  auto put16 = [&](uint16_t v) { data += char(v & 0xff), data += char(v >> 8); };
  put16(0x3c00), put16(0xc000);  // F16 1.0, -2.0
  put16(0x3f80), put16(0x4040);  // BF16 1.0, 3.0
  double dv[2] = {0.5, -0.25};
  data.append(reinterpret_cast<const char*>(dv), 16);
  write_raw(d.file("m.st"),
            R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
            R"("d":{"dtype":"F64","shape":[2],"data_offsets":[8,24]}})",
            data);
  auto st = runtime::read_safetensors(d.file("m.st"));
  CHECK(st.tensors.at("h").to_vector() == std::vector<float>{1.f, -2.f});
  CHECK(st.tensors.at("b").to_vector() == std::vector<float>{1.f, 3.f});
  CHECK(st.tensors.at("d").to_vector() == std::vector<float>{0.5f, -0.25f});
}

TEST_CASE("corrupt safetensors files give clear errors") {
  TempDir d;
  std::string p = d.file("c.safetensors");
  const std::string eight(8, 'x');
  SUBCASE("missing file") { CHECK(error_of(d.file("nope.safetensors")) == d.file("nope.safetensors") + ": no such file"); }
  SUBCASE("shorter than the length field") {
    std::ofstream(p, std::ios::binary) << "abc";
    CHECK(error_of(p) == p + ": truncated: 3 bytes, too short for the 8-byte header length");
  }
  SUBCASE("header length past the end") {
    write_raw(p, "{}", "", 1000);
    CHECK(error_of(p) == p + ": header length 1000 runs past the end of the file (10 bytes): truncated or not a safetensors file");
  }
  SUBCASE("header not JSON") {
    write_raw(p, "{not json", "");
    CHECK(error_of(p) == p + ": the header is not a JSON object: not a safetensors file");
  }
  SUBCASE("unknown dtype") {
    write_raw(p, R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": unknown dtype \"F33\"");
  }
  SUBCASE("unsupported dtype") {
    write_raw(p, R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": unsupported dtype \"I64\" (F32, F16, BF16 and F64 are read)");
  }
  SUBCASE("offsets out of range (truncated data)") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": data_offsets [0, 16] out of range: the data is 8 bytes (truncated file?)");
  }
  SUBCASE("offsets that run backwards") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": data_offsets [8, 0] run backwards");
  }
  SUBCASE("offsets that do not match the shape") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": data_offsets cover 8 bytes but shape [3] of F32 needs 12");
  }
  SUBCASE("overlapping tensors") {
    write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
              eight);
    CHECK(error_of(p) == p + ": tensors \"a\" and \"b\" overlap in the data");
    // Not neighbours once sorted: an empty tensor between them, or a short one inside the first.
    write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},)"
                 R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight);
    CHECK(error_of(p) == p + ": tensors \"a\" and \"c\" overlap in the data");
    write_raw(p, std::string(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)") +
                 R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", eight + eight);
    CHECK(error_of(p).find("overlap in the data") != std::string::npos);
  }
  SUBCASE("negative dimension") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": bad dimension -2 in the shape");
  }
  SUBCASE("a dimension beyond int64") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", eight);
    CHECK(error_of(p) == p + ": tensor \"w\": dimension 18446744073709551615 in the shape is beyond int64");
  }
  SUBCASE("a tensor named twice") {
    // Without the check the second entry would win silently.
    write_raw(p, R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
              eight);
    CHECK(error_of(p) == p + ": the header names \"w\" twice: a damaged or hand-edited file");
  }
  SUBCASE("a metadata key named twice") {
    write_raw(p, R"({"__metadata__":{"step":"1"},"__metadata__":{"step":"2"}})", "");
    CHECK(error_of(p) == p + ": the header names \"__metadata__\" twice: a damaged or hand-edited file");
  }
  SUBCASE("a header over the format's 100 MB cap") {
    // The length field claims 100,000,001 bytes, and the file really is that long (sparse).
    const uint64_t n = 100'000'001;
    {
      std::ofstream f(p, std::ios::binary);
      unsigned char len[8];
      for (int i = 0; i < 8; ++i) len[i] = (unsigned char)(n >> (8 * i));
      f.write(reinterpret_cast<const char*>(len), 8);
    }
    std::filesystem::resize_file(p, 8 + n);
    CHECK(error_of(p) == p + ": header length 100000001 exceeds the format's limit of 100000000 bytes: damaged or not a safetensors file");
  }
}

TEST_CASE("JSON nested deeper than 64 levels in a header is refused, not a stack overflow") {
  TempDir d;
  const std::string p = d.file("deep.safetensors");
  // 300,000 levels in an extra key of a tensor entry segfaulted the reader (nlohmann copies recursively).
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  write_raw(p, R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + deep + "}}", "abcd");
  CHECK(error_of(p) == p + ": the header nests deeper than 64 levels of [ and {: damaged or not a safetensors file");
  write_raw(p, R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + std::string(62, '[') +
                   std::string(62, ']') + "}}", "abcd");
  CHECK(error_of(p) == "");
}

TEST_CASE("a checkpoint writer killed mid-write leaves the previous checkpoint intact") {
  TempDir d;
  std::string p = d.file("run.safetensors");
  Tensor old_t({1000}), new_t({1 << 20});
  old_t.fill(1.f);
  new_t.fill(2.f);
  runtime::write_safetensors(p, {{"w", old_t}}, {{"step", "1"}});

  SUBCASE("killed by a signal") {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // The child may write only 64 KiB: the kernel kills it (SIGXFSZ) mid-way through the 4 MiB tensor.
      rlimit lim{65536, 65536};
      ::setrlimit(RLIMIT_FSIZE, &lim);
      runtime::write_safetensors(p, {{"w", new_t}}, {{"step", "2"}});
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
  }
  SUBCASE("a failing write throws and cleans up") {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{65536, 65536};
      ::setrlimit(RLIMIT_FSIZE, &lim);
      try {
        runtime::write_safetensors(p, {{"w", new_t}}, {{"step", "2"}});
      } catch (const runtime::CheckpointError&) {
        ::_exit(fs::exists(p + ".tmp") ? 3 : 7);
      }
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 7);  // threw, and removed its temp file
  }
  auto st = runtime::read_safetensors(p);
  CHECK(st.metadata.at("step") == "1");
  CHECK(st.tensors.at("w").to_vector() == old_t.to_vector());
}
