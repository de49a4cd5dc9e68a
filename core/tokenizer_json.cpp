#include "core/tokenizer_json.h"

#include <cctype>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_value.h"

namespace moe {

const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

using nlohmann::json;

// Ids beyond this are refused: no tokenizer has 16M entries, and a hostile id must not size
// a table.
constexpr int32_t kMaxId = (1 << 24) - 1;

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void Bad(const std::string& what) const { Fail(where_, what); }

  const json& Object(const json& v, const std::string& field) const {
    if (!v.is_object()) Bad(field + " must be an object, got " + Shown(v));
    return v;
  }
  const json& Array(const json& v, const std::string& field) const {
    if (!v.is_array()) Bad(field + " must be an array, got " + Shown(v));
    return v;
  }
  // obj[key], which must be there.
  const json& At(const json& obj, const std::string& key, const std::string& field) const {
    const auto it = obj.find(key);
    if (it == obj.end()) Bad(field + " is missing");
    return *it;
  }
  std::string String(const json& v, const std::string& field) const {
    if (!v.is_string()) Bad(field + " must be a string, got " + Shown(v));
    return v.get<std::string>();
  }
  // obj[key] as a bool; `fallback` when absent or null.
  bool Bool(const json& obj, const std::string& key, const std::string& field,
            bool fallback) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) Bad(field + " must be true or false, got " + Shown(*it));
    return it->get<bool>();
  }
  // obj["type"] of a component.
  std::string Type(const json& obj, const std::string& field) const {
    return String(At(Object(obj, field), "type", field + ".type"), field + ".type");
  }
  [[noreturn]] void Unsupported(const std::string& field, const std::string& value,
                                const std::string& supported) const {
    Bad(field + " is " + Quoted(value) + "; only " + supported + " is supported");
  }
  int32_t Id(const json& v, const std::string& field) const {
    return JsonIntAs<int32_t>(v, where_, field, 0, kMaxId);
  }

 private:
  std::string where_;
};

void ReadModel(const Reader& r, const json& model, BpeTokenizerSpec& spec) {
  r.Object(model, "model");
  // Files written before model.type existed hold a BPE model without it.
  if (model.contains("type")) {
    const std::string type = r.String(model.at("type"), "model.type");
    if (type != "BPE") r.Unsupported("model.type", type, "'BPE'");
  }
  if (r.Bool(model, "byte_fallback", "model.byte_fallback", false))
    r.Bad("model.byte_fallback is true; only byte-level BPE (byte_fallback false) is supported");
  if (const auto it = model.find("dropout"); it != model.end() && !it->is_null())
    r.Bad("model.dropout is " + Shown(*it) + "; only null (no dropout) is supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() &&
        !(it->is_string() && it->get_ref<const std::string&>().empty()))
      r.Bad(std::string("model.") + key + " is " + Shown(*it) + "; only null is supported");
  }
  spec.ignore_merges = r.Bool(model, "ignore_merges", "model.ignore_merges", false);
  if (const auto it = model.find("unk_token"); it != model.end() && !it->is_null())
    spec.unk_token = r.String(*it, "model.unk_token");

  const json& vocab = r.Object(r.At(model, "vocab", "model.vocab"), "model.vocab");
  spec.vocab.reserve(vocab.size());
  std::unordered_map<int32_t, size_t> entry_of_id;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string field = "model.vocab[" + Quoted(Clipped(it.key())) + "]";
    const int32_t id = r.Id(it.value(), field);
    const auto [at, fresh] = entry_of_id.emplace(id, spec.vocab.size());
    if (!fresh)
      r.Bad(field + " has id " + std::to_string(id) + ", already the id of " +
            Quoted(Clipped(spec.vocab[at->second].first)));
    spec.vocab.emplace_back(it.key(), id);
  }

  const json& merges = r.Array(r.At(model, "merges", "model.merges"), "model.merges");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    const json& m = merges[i];
    if (m.is_string()) {
      // "a b": exactly one space (a space inside a token is written in the byte-level alphabet).
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.Bad(field + " must be two tokens separated by one space, got " + Shown(m));
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2) {
      spec.merges.emplace_back(r.String(m[0], field + "[0]"), r.String(m[1], field + "[1]"));
    } else {
      r.Bad(field + " must be \"a b\" or [\"a\", \"b\"], got " + Shown(m));
    }
  }
}

void ReadAddedTokens(const Reader& r, const json& added, BpeTokenizerSpec& spec) {
  if (added.is_null()) return;
  r.Array(added, "added_tokens");
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    const json& t = r.Object(added[i], field);
    AddedTokenSpec a;
    a.id = r.Id(r.At(t, "id", field + ".id"), field + ".id");
    a.content = r.String(r.At(t, "content", field + ".content"), field + ".content");
    if (a.content.empty()) r.Bad(field + ".content is empty");
    a.special = r.Bool(t, "special", field + ".special", false);
    a.single_word = r.Bool(t, "single_word", field + ".single_word", false);
    a.lstrip = r.Bool(t, "lstrip", field + ".lstrip", false);
    a.rstrip = r.Bool(t, "rstrip", field + ".rstrip", false);
    // Hugging Face's default: special tokens are matched as given, the others after normalizing.
    a.normalized = r.Bool(t, "normalized", field + ".normalized", !a.special);
    spec.added_tokens.push_back(std::move(a));
  }
}

void ReadNormalizer(const Reader& r, const json& n, const std::string& field,
                    BpeTokenizerSpec& spec) {
  if (n.is_null()) return;
  const std::string type = r.Type(n, field);
  if (type == "NFC") {
    spec.nfc = true;
  } else if (type == "Sequence") {
    const json& steps =
        r.Array(r.At(n, "normalizers", field + ".normalizers"), field + ".normalizers");
    for (size_t i = 0; i < steps.size(); ++i)
      ReadNormalizer(r, steps[i], field + ".normalizers[" + std::to_string(i) + "]", spec);
  } else {
    r.Unsupported(field + ".type", type, "'NFC' (or null)");
  }
}

void ReadPreTokenizerStep(const Reader& r, const json& p, const std::string& field,
                          bool& byte_level, BpeTokenizerSpec& spec) {
  const std::string type = r.Type(p, field);
  if (byte_level) r.Bad(field + " comes after ByteLevel; ByteLevel must be the last step");
  if (type == "ByteLevel") {
    byte_level = true;
    spec.add_prefix_space = r.Bool(p, "add_prefix_space", field + ".add_prefix_space", true);
    spec.byte_level_regex = r.Bool(p, "use_regex", field + ".use_regex", true);
  } else if (type == "Split") {
    const json& pattern = r.Object(r.At(p, "pattern", field + ".pattern"), field + ".pattern");
    if (pattern.contains("Regex")) {
      spec.split_patterns.push_back(r.String(pattern.at("Regex"), field + ".pattern.Regex"));
    } else if (pattern.contains("String")) {
      // A literal: each ASCII punctuation character escaped for PCRE2.
      std::string literal;
      for (char c : r.String(pattern.at("String"), field + ".pattern.String")) {
        if (std::ispunct(static_cast<unsigned char>(c))) literal += '\\';
        literal += c;
      }
      spec.split_patterns.push_back(literal);
    } else {
      r.Bad(field + ".pattern must hold \"Regex\" or \"String\", got " + Shown(pattern));
    }
    const std::string behavior =
        r.String(r.At(p, "behavior", field + ".behavior"), field + ".behavior");
    if (behavior != "Isolated") r.Unsupported(field + ".behavior", behavior, "'Isolated'");
    if (r.Bool(p, "invert", field + ".invert", false))
      r.Bad(field + ".invert is true; only false is supported");
  } else {
    r.Unsupported(field + ".type", type, "'ByteLevel', 'Split' or a 'Sequence' of them");
  }
}

void ReadPreTokenizer(const Reader& r, const json& p, BpeTokenizerSpec& spec) {
  if (p.is_null()) r.Bad("pre_tokenizer is null; byte-level BPE needs a 'ByteLevel' pre-tokenizer");
  bool byte_level = false;
  if (r.Type(p, "pre_tokenizer") == "Sequence") {
    const json& steps = r.Array(r.At(p, "pretokenizers", "pre_tokenizer.pretokenizers"),
                                "pre_tokenizer.pretokenizers");
    for (size_t i = 0; i < steps.size(); ++i)
      ReadPreTokenizerStep(r, steps[i], "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]",
                           byte_level, spec);
  } else {
    ReadPreTokenizerStep(r, p, "pre_tokenizer", byte_level, spec);
  }
  if (!byte_level) r.Bad("pre_tokenizer has no 'ByteLevel' step; only byte-level BPE is supported");
}

// The ids of a template's special token named `name`, from the processor's special_tokens.
std::vector<int32_t> TemplateIds(const Reader& r, const json& processor, const std::string& field,
                                 const std::string& name) {
  const json& specials = r.Object(r.At(processor, "special_tokens", field + ".special_tokens"),
                                  field + ".special_tokens");
  const std::string entry = field + ".special_tokens[" + Quoted(Clipped(name)) + "]";
  const json& ids = r.Array(
      r.At(r.Object(r.At(specials, name, entry), entry), "ids", entry + ".ids"), entry + ".ids");
  std::vector<int32_t> out;
  for (size_t i = 0; i < ids.size(); ++i)
    out.push_back(r.Id(ids[i], entry + ".ids[" + std::to_string(i) + "]"));
  return out;
}

void ReadPostProcessor(const Reader& r, const json& p, const std::string& field,
                       BpeTokenizerSpec& spec) {
  if (p.is_null()) return;
  const std::string type = r.Type(p, field);
  if (type == "ByteLevel") return;  // offsets only; no tokens added
  if (type == "Sequence") {
    const json& steps =
        r.Array(r.At(p, "processors", field + ".processors"), field + ".processors");
    for (size_t i = 0; i < steps.size(); ++i)
      ReadPostProcessor(r, steps[i], field + ".processors[" + std::to_string(i) + "]", spec);
    return;
  }
  if (type != "TemplateProcessing")
    r.Unsupported(field + ".type", type, "'ByteLevel', 'TemplateProcessing' or a 'Sequence'");
  const json& single = r.Array(r.At(p, "single", field + ".single"), field + ".single");
  bool after = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string piece = field + ".single[" + std::to_string(i) + "]";
    const json& item = r.Object(single[i], piece);
    if (item.contains("Sequence")) {
      const json& seq = r.Object(item.at("Sequence"), piece + ".Sequence");
      const std::string id =
          r.String(r.At(seq, "id", piece + ".Sequence.id"), piece + ".Sequence.id");
      if (id != "A" || after) r.Bad(piece + " must be the one sequence $A, got " + Shown(item));
      after = true;
    } else if (item.contains("SpecialToken")) {
      const json& tok = r.Object(item.at("SpecialToken"), piece + ".SpecialToken");
      const std::string name =
          r.String(r.At(tok, "id", piece + ".SpecialToken.id"), piece + ".SpecialToken.id");
      const std::vector<int32_t> ids = TemplateIds(r, p, field, name);
      std::vector<int32_t>& to = after ? spec.template_after : spec.template_before;
      to.insert(to.end(), ids.begin(), ids.end());
    } else {
      r.Bad(piece + " must hold \"Sequence\" or \"SpecialToken\", got " + Shown(item));
    }
  }
  if (!after) r.Bad(field + ".single has no sequence $A");
}

void ReadDecoder(const Reader& r, const json& d) {
  if (d.is_null()) r.Bad("decoder is null; only 'ByteLevel' is supported");
  const std::string type = r.Type(d, "decoder");
  if (type != "ByteLevel") r.Unsupported("decoder.type", type, "'ByteLevel'");
}

}  // namespace

BpeTokenizerSpec ReadTokenizerJson(const std::filesystem::path& file) {
  const json j = ReadJsonFile(file);
  const Reader r(file.string());
  r.Object(j, "the file");
  BpeTokenizerSpec spec;
  ReadModel(r, r.At(j, "model", "model"), spec);
  ReadAddedTokens(r, j.value("added_tokens", json()), spec);
  ReadNormalizer(r, j.value("normalizer", json()), "normalizer", spec);
  ReadPreTokenizer(r, j.value("pre_tokenizer", json()), spec);
  ReadPostProcessor(r, j.value("post_processor", json()), "post_processor", spec);
  ReadDecoder(r, j.value("decoder", json()));
  return spec;
}

}  // namespace moe
