// tests/runtime/export/proto_reader.hpp — a protobuf wire-format reader for the exporter's tests: a message
// becomes its fields (number, wire type, value) in file order, so a test can read an .onnx file back with
// the field numbers of onnx.proto, independently of the writer (runtime/export/protobuf.hpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace noiseflow::test {

/// One field of a message.
struct ProtoField {
  int number = 0;
  int wire = 0;            ///< 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t varint = 0;     ///< wire 0 (and the bits of wire 1 and 5)
  std::string_view bytes;  ///< wire 2
  int64_t as_int() const { return int64_t(varint); }
  float as_float() const {
    uint32_t b = uint32_t(varint);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  std::string str() const { return std::string(bytes); }
};

/// A decoded message: every field in order. Throws std::runtime_error on malformed input.
class ProtoMessage {
 public:
  explicit ProtoMessage(std::string_view data) {
    size_t p = 0;
    while (p < data.size()) {
      const uint64_t key = read_varint(data, p);
      ProtoField f;
      f.number = int(key >> 3);
      f.wire = int(key & 7);
      if (f.number == 0) throw std::runtime_error("protobuf: field number 0");
      switch (f.wire) {
        case 0: f.varint = read_varint(data, p); break;
        case 1:
          need(data, p, 8);
          std::memcpy(&f.varint, data.data() + p, 8);
          p += 8;
          break;
        case 2: {
          const uint64_t n = read_varint(data, p);
          need(data, p, n);
          f.bytes = data.substr(p, size_t(n));
          p += size_t(n);
          break;
        }
        case 5: {
          need(data, p, 4);
          uint32_t v;
          std::memcpy(&v, data.data() + p, 4);
          f.varint = v;
          p += 4;
          break;
        }
        default: throw std::runtime_error("protobuf: unsupported wire type " + std::to_string(f.wire));
      }
      fields_.push_back(f);
    }
  }

  const std::vector<ProtoField>& fields() const { return fields_; }
  /// Every field with this number.
  std::vector<ProtoField> all(int number) const {
    std::vector<ProtoField> v;
    for (auto& f : fields_)
      if (f.number == number) v.push_back(f);
    return v;
  }
  /// Every embedded message with this number.
  std::vector<ProtoMessage> messages(int number) const {
    std::vector<ProtoMessage> v;
    for (auto& f : all(number)) v.emplace_back(f.bytes);
    return v;
  }
  bool has(int number) const { return !all(number).empty(); }
  /// The last field with this number (protobuf's rule for singular fields); throws if none.
  ProtoField one(int number) const {
    auto v = all(number);
    if (v.empty()) throw std::runtime_error("protobuf: no field " + std::to_string(number));
    return v.back();
  }
  ProtoMessage message(int number) const { return ProtoMessage(one(number).bytes); }
  std::string str(int number) const { return has(number) ? one(number).str() : std::string(); }
  int64_t integer(int number) const { return has(number) ? one(number).as_int() : 0; }
  std::vector<int64_t> integers(int number) const {
    std::vector<int64_t> v;
    for (auto& f : all(number)) v.push_back(f.as_int());
    return v;
  }
  std::vector<std::string> strings(int number) const {
    std::vector<std::string> v;
    for (auto& f : all(number)) v.push_back(f.str());
    return v;
  }

 private:
  static void need(std::string_view d, size_t p, uint64_t n) {
    if (n > d.size() - p) throw std::runtime_error("protobuf: truncated field");
  }
  static uint64_t read_varint(std::string_view d, size_t& p) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p >= d.size()) throw std::runtime_error("protobuf: truncated varint");
      const uint8_t b = uint8_t(d[p++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("protobuf: varint longer than 10 bytes");
  }

  std::vector<ProtoField> fields_;
};

}  // namespace noiseflow::test
