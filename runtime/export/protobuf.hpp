// runtime/export/protobuf.hpp — the protocol-buffers wire format, written by hand (the few pieces an ONNX
// file needs), so the exporter adds no dependency.
//
//   field = key, value      key = (field number << 3) | wire type, as a varint
//   wire type 0: varint (int32, int64, enums; negative values as 10-byte two's complement)
//   wire type 2: length-delimited (strings, bytes, embedded messages): varint length, then the bytes
//   wire type 5: fixed32 (float, little-endian)
//
// A message is the concatenation of its fields; an embedded message is written once complete, as bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace noiseflow::runtime::onnx {

/// Appends protobuf fields to a byte string.
class ProtoWriter {
 public:
  /// A varint field (wire type 0): int32, int64, uint64 and enum fields.
  void varint_field(int field, uint64_t v) {
    key(field, 0);
    varint(v);
  }
  /// An int64/int32 field; negative values take ten bytes, as protobuf's int64 encoding requires.
  void int_field(int field, int64_t v) { varint_field(field, uint64_t(v)); }
  /// A float field (wire type 5, little-endian IEEE 754).
  void float_field(int field, float v) {
    key(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) out_.push_back(char((bits >> (8 * i)) & 0xff));
  }
  /// A string, bytes or embedded-message field (wire type 2).
  void bytes_field(int field, std::string_view b) {
    key(field, 2);
    varint(b.size());
    out_.append(b.data(), b.size());
  }
  /// An embedded message.
  void message_field(int field, const ProtoWriter& m) { bytes_field(field, m.bytes()); }

  /// The encoded message.
  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void key(int field, int wire_type) { varint((uint64_t(field) << 3) | uint64_t(wire_type)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(char((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(char(v));
  }

  std::string out_;
};

}  // namespace noiseflow::runtime::onnx
