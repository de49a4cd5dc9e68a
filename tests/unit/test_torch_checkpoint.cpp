// TorchCheckpointFile: the zip reader and the restricted unpickler. Real torch.save output comes
// from tests/fixtures/torch_bin (made by tests/reference/make_torch_bin_fixtures.py); the broken
// archives are assembled here, opcode by opcode.
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/torch_checkpoint.h"
#include "core/zip_archive.h"
#include "tests/unit/test_paths.h"

namespace fs = std::filesystem;
using Catch::Contains;
using moe::DType;

namespace {

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string LE(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

uint32_t Crc32(const std::string& data) {
  return moe::Crc32(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

// A zip archive of stored entries (method 0 unless told otherwise), no data descriptors, each
// entry's CRC-32 in its local header and the central directory (`local_crc_xor` alters the
// local header's copy).
std::string Zip(const std::vector<std::pair<std::string, std::string>>& entries,
                uint16_t method = 0, uint32_t local_crc_xor = 0) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const std::string sizes =
        LE(data.size(), 4) + LE(data.size(), 4) + LE(name.size(), 2) + LE(0, 2);
    const std::string version_to_date = LE(20, 2) + LE(0, 2) + LE(method, 2) + LE(0, 4);
    const uint32_t crc = Crc32(data);
    central += LE(0x02014b50, 4) + LE(20, 2) + version_to_date + LE(crc, 4) + sizes + LE(0, 2) +
               LE(0, 2) + LE(0, 2) + LE(0, 4) + LE(out.size(), 4) + name;
    out += LE(0x04034b50, 4) + version_to_date + LE(crc ^ local_crc_xor, 4) + sizes + name + data;
  }
  const size_t central_offset = out.size();
  out += central;
  out += LE(0x06054b50, 4) + LE(0, 2) + LE(0, 2) + LE(entries.size(), 2) + LE(entries.size(), 2) +
         LE(central.size(), 4) + LE(central_offset, 4) + LE(0, 2);
  return out;
}

// Pickle protocol 2, written the way torch.save writes a state dict.
class Pickle {
 public:
  Pickle() { bytes_ = "\x80\x02"; }
  Pickle& Raw(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  Pickle& Global(const std::string& module, const std::string& name) {
    return Raw("c").Raw(module).Raw("\n").Raw(name).Raw("\n");
  }
  // Chained appends, not "X" + ...: the latter trips a false -Wrestrict warning in GCC 12.
  Pickle& Str(const std::string& s) { return Raw("X").Raw(LE(s.size(), 4)).Raw(s); }
  Pickle& Int(int64_t v) {
    if (v >= 0 && v < 256) return Raw("K").Raw(LE(v, 1));
    if (v >= 0 && v < 65536) return Raw("M").Raw(LE(v, 2));
    return Raw("\x8a\x08").Raw(LE(v, 8));  // LONG1
  }
  Pickle& Ints(const std::vector<int64_t>& values) {
    Raw("(");
    for (int64_t v : values) Int(v);
    return Raw("t");
  }
  // _rebuild_tensor_v2(('storage', <type>, key, 'cpu', numel), offset, size, stride, False,
  // OrderedDict())
  Pickle& Tensor(const std::string& storage_type, const std::string& key, int64_t numel,
                 int64_t offset, const std::vector<int64_t>& size,
                 const std::vector<int64_t>& stride) {
    Global("torch._utils", "_rebuild_tensor_v2").Raw("((").Str("storage");
    Global("torch", storage_type).Str(key).Str("cpu").Int(numel).Raw("tQ");
    Int(offset).Ints(size).Ints(stride).Raw("\x89");
    return Global("collections", "OrderedDict").Raw(")RtR");
  }
  // {name: tensor} with a single float storage '0' of `numel` elements.
  static std::string StateDict(const std::string& name, int64_t numel, int64_t offset,
                               const std::vector<int64_t>& size,
                               const std::vector<int64_t>& stride) {
    Pickle p;
    p.Raw("}(").Str(name).Tensor("FloatStorage", "0", numel, offset, size, stride);
    return p.Raw("u.").bytes_;
  }
  std::string bytes() const { return bytes_ + "."; }

 private:
  std::string bytes_;
};

std::string Floats(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

std::vector<float> Values(const moe::TensorView& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  moe::ToF32(v.dtype, v.data, out.data(), out.size());
  return out;
}

// Writes `bytes` to a fresh file and returns its path.
std::string ArchiveFile(const std::string& test, const std::string& bytes) {
  const fs::path path = TempDir(test) / "checkpoint.bin";
  WriteBytes(path, bytes);
  return path.string();
}

void CheckAgainstSidecar(const moe::TorchCheckpointFile& file, const fs::path& sidecar) {
  std::ifstream in(sidecar);
  const nlohmann::json expected = nlohmann::json::parse(in);
  size_t tensors = 0;
  for (const auto& [name, want] : expected.items()) {
    if (name.rfind("__", 0) == 0) continue;
    INFO(name);
    ++tensors;
    const moe::TensorView v = file.Tensor(name);
    REQUIRE(moe::DTypeName(v.dtype) == want["dtype"].get<std::string>());
    REQUIRE(v.shape == want["shape"].get<moe::Shape>());
    REQUIRE(Values(v) == want["values"].get<std::vector<float>>());
  }
  REQUIRE(file.Names().size() == tensors);
}

}  // namespace

TEST_CASE("torch.save state dict: dtypes, views, offsets and strides", "[torch]") {
  const fs::path dir = FixtureDir() / "torch_bin";
  const moe::TorchCheckpointFile file((dir / "state_dict.bin").string());
  CheckAgainstSidecar(file, dir / "state_dict.json");
  REQUIRE(file.Names() == std::vector<std::string>{"base", "bf16", "column", "empty", "f16", "f32",
                                                   "scalar", "transposed", "view"});
  REQUIRE_FALSE(file.Contains("_metadata"));

  // "view" is base[1:]: the same mapped storage, four floats in, nothing copied.
  const auto* base = static_cast<const float*>(file.Tensor("base").data);
  REQUIRE(file.Tensor("view").data == base + 4);
  REQUIRE(file.Tensor("scalar").shape.empty());
  REQUIRE(file.Tensor("empty").nbytes() == 0);
  REQUIRE_THROWS_WITH(file.Tensor("missing"), Contains("state_dict.bin: no tensor 'missing'"));
}

TEST_CASE("torch checkpoint with ZIP64 records reads like the plain one", "[torch]") {
  const fs::path dir = FixtureDir() / "torch_bin";
  const moe::TorchCheckpointFile file((dir / "zip64.bin").string());
  CheckAgainstSidecar(file, dir / "state_dict.json");
}

TEST_CASE("torch checkpoint: small, large and shared storages built by hand", "[torch]") {
  // Two tensors share storage '0' at different offsets; the offset needs LONG1 past 65535.
  const int64_t numel = 70000;
  std::vector<float> storage(numel);
  for (int64_t i = 0; i < numel; ++i) storage[i] = static_cast<float>(i);
  Pickle p;
  p.Raw("}(").Str("head").Tensor("FloatStorage", "0", numel, 0, {2}, {1});
  p.Str("tail").Tensor("FloatStorage", "0", numel, 69998, {2, 1}, {1, 5});
  const std::string path = ArchiveFile(
      "torch-shared",
      Zip({{"archive/data.pkl", p.Raw("u").bytes()}, {"archive/data/0", Floats(storage)}}));
  const moe::TorchCheckpointFile file(path);
  REQUIRE(Values(file.Tensor("head")) == std::vector<float>{0, 1});
  REQUIRE(Values(file.Tensor("tail")) == std::vector<float>{69998, 69999});
  REQUIRE(file.Tensor("tail").data == static_cast<const float*>(file.Tensor("head").data) + 69998);
}

TEST_CASE("torch checkpoint refuses foreign globals without running them", "[torch][bad-input]") {
  const fs::path path = FixtureDir() / "torch_bin" / "os_system.bin";
  REQUIRE_THROWS_WITH(
      moe::TorchCheckpointFile(path.string()),
      Contains(path.string()) &&
          Contains("pickle asks for global 'os.system', which a tensor checkpoint never needs"));

  const fs::path int64 = FixtureDir() / "torch_bin" / "int64.bin";
  REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(int64.string()),
                      Contains(int64.string()) && Contains("global 'torch.LongStorage'"));
}

TEST_CASE("torch checkpoint rejects what it cannot read, naming file and problem",
          "[torch][bad-input]") {
  const fs::path fixtures = FixtureDir() / "torch_bin";

  SECTION("compressed entries") {
    const fs::path path = fixtures / "compressed.bin";
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path.string()),
                        Contains(path.string()) && Contains("is compressed (zip method 8)"));
  }
  SECTION("nested containers") {
    const fs::path path = fixtures / "nested.bin";
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path.string()),
                        Contains(path.string() + ": tensor 'model' is a dict, not a tensor"));
  }
  SECTION("truncated archive") {
    const std::string bytes = ReadBytes(fixtures / "state_dict.bin");
    const std::string path = ArchiveFile("torch-trunc", bytes.substr(0, bytes.size() - 30));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path), Contains(path + ": not a zip archive"));
  }
  SECTION("legacy pickle-only format") {
    const std::string path = ArchiveFile("torch-legacy", Pickle().Raw("}").bytes());
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": a legacy (pre-zip, PyTorch < 1.6) torch.save file"));
  }
  SECTION("central directory outside the file") {
    std::string bytes = Zip({{"archive/data.pkl", Pickle().Raw("}").bytes()}});
    bytes.replace(bytes.size() - 6, 4, LE(5000, 4));  // central directory offset
    const std::string path = ArchiveFile("torch-cd", bytes);
    REQUIRE_THROWS_WITH(
        moe::TorchCheckpointFile(path),
        Contains(path + ": zip central directory") && Contains("runs past the end of the file"));
  }
  SECTION("no data.pkl") {
    const std::string path = ArchiveFile("torch-nopkl", Zip({{"archive/version", "3\n"}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": a zip archive without '<name>/data.pkl'"));
  }
  SECTION("compressed method in a hand-made archive") {
    const std::string path =
        ArchiveFile("torch-deflate", Zip({{"archive/data.pkl", "xx"}}, /*method=*/8));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": zip entry 'archive/data.pkl' is compressed"));
  }
}

TEST_CASE("torch checkpoint rejects storages and pickles it cannot trust, naming the problem",
          "[torch][bad-input]") {
  SECTION("view past the end of its storage") {
    const std::string path = ArchiveFile(
        "torch-extent", Zip({{"archive/data.pkl", Pickle::StateDict("w", 4, 2, {3}, {1})},
                             {"archive/data/0", Floats({1, 2, 3, 4})}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": tensor 'w' with storage offset 2, size [3] and stride "
                                        "[1] runs past the end of storage 'archive/data/0' (4 "
                                        "elements)"));
  }
  SECTION("strided view past the end of its storage") {
    const std::string path = ArchiveFile(
        "torch-stride", Zip({{"archive/data.pkl", Pickle::StateDict("w", 4, 0, {2, 2}, {1, 3})},
                             {"archive/data/0", Floats({1, 2, 3, 4})}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": tensor 'w'") && Contains("runs past the end"));
  }
  SECTION("storage smaller than the pickle says") {
    const std::string path = ArchiveFile(
        "torch-short", Zip({{"archive/data.pkl", Pickle::StateDict("w", 4, 0, {4}, {1})},
                            {"archive/data/0", Floats({1, 2, 3})}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": tensor 'w' uses storage 'archive/data/0' of 12 bytes, "
                                        "but the pickle says it holds 4 F32 elements"));
  }
  SECTION("storage missing from the archive") {
    const std::string path = ArchiveFile(
        "torch-nostorage", Zip({{"archive/data.pkl", Pickle::StateDict("w", 4, 0, {4}, {1})}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": tensor 'w' uses storage 'archive/data/0', which is "
                                        "missing from the archive"));
  }
  SECTION("a list instead of a dict") {
    const std::string path =
        ArchiveFile("torch-list", Zip({{"archive/data.pkl", Pickle().Raw("]").bytes()}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": the pickle holds a list, expected a state dict"));
  }
  SECTION("opcodes torch.save never writes") {
    const std::string path =
        ArchiveFile("torch-opcode",
                    Zip({{"archive/data.pkl", Pickle().Raw("i__builtin__\nobject\n").bytes()}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": archive/data.pkl: byte 2: pickle opcode 0x69"));
  }
  SECTION("pickle without STOP") {
    const std::string path = ArchiveFile("torch-nostop", Zip({{"archive/data.pkl", "\x80\x02}"}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": archive/data.pkl runs past the end"));
  }
  SECTION("stack underflow and unknown memo") {
    const std::string underflow = ArchiveFile(
        "torch-underflow", Zip({{"archive/data.pkl", Pickle().Raw("K\x01\x86").bytes()}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(underflow),
                        Contains(underflow) && Contains("pops an empty stack"));
    const std::string memo =
        ArchiveFile("torch-memo", Zip({{"archive/data.pkl", Pickle().Raw("h\x05").bytes()}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(memo),
                        Contains(memo) && Contains("recalls memo entry 5, never stored"));
  }
  SECTION("calling a storage type") {
    const std::string path = ArchiveFile(
        "torch-call",
        Zip({{"archive/data.pkl", Pickle().Global("torch", "FloatStorage").Raw(")R").bytes()}}));
    REQUIRE_THROWS_WITH(
        moe::TorchCheckpointFile(path),
        Contains(path) && Contains("pickle calls 'torch.FloatStorage', which torch.save never "
                                   "does"));
  }
}

TEST_CASE("torch.save with pickle protocols 3, 4 and 5 reads like protocol 2", "[torch]") {
  // Written by torch.save(..., pickle_protocol=N) (tests/reference/make_torch_bin_fixtures.py);
  // 4 and 5 use FRAME, SHORT_BINUNICODE, MEMOIZE and STACK_GLOBAL. The sidecar holds torch's own
  // values of the same state dict.
  const fs::path dir = FixtureDir() / "torch_bin";
  for (int protocol : {3, 4, 5}) {
    INFO("pickle protocol " << protocol);
    const fs::path path = dir / ("state_dict_protocol" + std::to_string(protocol) + ".bin");
    const std::string bytes = ReadBytes(path);
    const moe::ZipEntries entries = moe::ReadZipEntries(
        path.string(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    const std::string pkl = "state_dict_protocol" + std::to_string(protocol) + "/data.pkl";
    REQUIRE(bytes.substr(entries.at(pkl).data_offset, 2) ==
            std::string("\x80") + static_cast<char>(protocol));  // PROTO N
    const moe::TorchCheckpointFile file(path.string());
    CheckAgainstSidecar(file, dir / "state_dict.json");
  }
}

TEST_CASE("protocol 4 pickles stay restricted: STACK_GLOBAL names only allowed globals",
          "[torch][bad-input]") {
  // PROTO 4; SHORT_BINUNICODE module; MEMOIZE; SHORT_BINUNICODE name; MEMOIZE; STACK_GLOBAL.
  auto stack_global = [](const std::string& module, const std::string& name) {
    return "\x80\x04\x8c" + LE(module.size(), 1) + module + "\x94\x8c" + LE(name.size(), 1) + name +
           "\x94\x93";
  };
  SECTION("os.system") {
    const std::string pickle = stack_global("os", "system") + "\x8c\x04" + "echo" + "\x85R.";
    const std::string path = ArchiveFile("torch-p4-os", Zip({{"archive/data.pkl", pickle}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path) && Contains("byte 16: pickle asks for global 'os.system'"));
  }
  SECTION("builtins.eval") {
    const std::string pickle = stack_global("builtins", "eval") + "\x8c\x01" + "1" + "\x85R.";
    const std::string path = ArchiveFile("torch-p4-eval", Zip({{"archive/data.pkl", pickle}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains("pickle asks for global 'builtins.eval'"));
  }
  SECTION("a module that is not a string") {
    const std::string pickle = "\x80\x04K\x01\x8c\x06system\x93.";
    const std::string path = ArchiveFile("torch-p4-int", Zip({{"archive/data.pkl", pickle}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path) && Contains("STACK_GLOBAL expects a str, got a int"));
  }
  SECTION("an empty stack") {
    const std::string path =
        ArchiveFile("torch-p4-empty", Zip({{"archive/data.pkl", "\x80\x04\x93."}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path), Contains("pops an empty stack"));
  }
}

TEST_CASE("torch checkpoint whose bytes were altered fails its CRC-32", "[torch][bad-input]") {
  const fs::path fixture = FixtureDir() / "torch_bin" / "state_dict.bin";
  const std::string original = ReadBytes(fixture);
  const moe::ZipEntries entries = moe::ReadZipEntries(
      fixture.string(), reinterpret_cast<const uint8_t*>(original.data()), original.size());
  for (const auto& [name, entry] : entries) {
    INFO(name);
    for (uint64_t at : {uint64_t{0}, entry.size / 2, entry.size - 1}) {
      if (entry.size == 0) continue;
      std::string bytes = original;
      bytes[entry.data_offset + at] ^= 0x01;  // one bit, as a flipped weight bit would be
      const std::string path = ArchiveFile("torch-crc", bytes);
      REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                          Contains(path + ": zip entry " + moe::Quoted(name) + " has CRC-32") &&
                              Contains("its bytes were altered or damaged"));
    }
  }

  SECTION("a local header that disagrees with the central directory") {
    const std::string path =
        ArchiveFile("torch-local-crc",
                    Zip({{"archive/data.pkl", Pickle().Raw("}").bytes()}}, /*method=*/0, 0x10));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": zip entry 'archive/data.pkl' has CRC-32") &&
                            Contains("in its local header but"));
  }
  SECTION("the recorded CRC-32 altered") {
    std::string bytes = Zip({{"archive/data.pkl", Pickle().Raw("}").bytes()}});
    const size_t central = bytes.rfind(LE(0x02014b50, 4));
    bytes[central + 16] ^= 0x01;  // the CRC-32 field of the central directory record
    bytes[14] ^= 0x01;            // and the local header's, so the two agree
    const std::string path = ArchiveFile("torch-recorded-crc", bytes);
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": zip entry 'archive/data.pkl' has CRC-32"));
  }
}

TEST_CASE("CRC-32 of large inputs joins the chunks hashed on every thread", "[torch]") {
  // A table-driven CRC-32 (the zip polynomial, reflected) as the reference.
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  auto reference = [&](const std::string& data) {
    uint32_t c = 0xffffffffu;
    for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
  };
  REQUIRE(Crc32("123456789") == 0xcbf43926u);
  // Chunks are 64 MiB: 130 MiB spans three, the last one short.
  std::string data(size_t{130} << 20, '\0');
  for (size_t i = 0; i < data.size(); i += 4093) data[i] = static_cast<char>(i * 31);
  REQUIRE(Crc32(data) == reference(data));
  REQUIRE(Crc32("") == 0);
}

TEST_CASE("torch checkpoint never allocates more for a view than its storage holds",
          "[torch][bad-input]") {
  SECTION("a stride-0 view of one element expanded to 2^28 elements is refused") {
    const std::string path = ArchiveFile(
        "torch-expand", Zip({{"archive/data.pkl", Pickle::StateDict("w", 1, 0, {1 << 28}, {0})},
                             {"archive/data/0", Floats({7})}}));
    REQUIRE_THROWS_WITH(
        moe::TorchCheckpointFile(path),
        Contains(path + ": tensor 'w' has size [268435456] and stride [0], which repeat the 1 "
                        "elements of storage 'archive/data/0' into 268435456 elements"));
  }
  SECTION("overlapping strides are refused the same way") {
    const std::string path = ArchiveFile(
        "torch-overlap",
        Zip({{"archive/data.pkl", Pickle::StateDict("w", 9999, 0, {5000, 5000}, {1, 1})},
             {"archive/data/0", Floats(std::vector<float>(9999, 1.0f))}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": tensor 'w'") && Contains("into 25000000 elements"));
  }
  SECTION("sizes times strides that overflow are refused") {
    const std::string path = ArchiveFile(
        "torch-overflow",
        Zip({{"archive/data.pkl",
              Pickle::StateDict("w", 4, 0, {int64_t{1} << 40, int64_t{1} << 40}, {1, 1})},
             {"archive/data/0", Floats({1, 2, 3, 4})}}));
    REQUIRE_THROWS_WITH(moe::TorchCheckpointFile(path),
                        Contains(path + ": tensor 'w'") && Contains("runs past the end"));
  }
  SECTION("a stride-0 view that fits its storage is copied when first asked for") {
    // Storage of 4 elements; 'w' repeats element 2 three times (12 bytes <= 16).
    Pickle p;
    p.Raw("}(").Str("w").Tensor("FloatStorage", "0", 4, 2, {3}, {0});
    p.Str("unused").Tensor("FloatStorage", "0", 4, 0, {2, 2}, {1, 2});
    const std::string path = ArchiveFile(
        "torch-expand-small",
        Zip({{"archive/data.pkl", p.Raw("u").bytes()}, {"archive/data/0", Floats({1, 2, 3, 4})}}));
    const moe::TorchCheckpointFile file(path);
    REQUIRE(Values(file.Tensor("w")) == std::vector<float>{3, 3, 3});
    REQUIRE(file.Tensor("w").data == file.Tensor("w").data);  // one copy, kept
    REQUIRE(Values(file.Tensor("unused")) == std::vector<float>{1, 3, 2, 4});
  }
}
