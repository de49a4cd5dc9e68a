#include "analysis/corpus/corpus.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "analysis/common/sha256.h"
#include "analysis/corpus/line_reader.h"
#include "core/error.h"
#include "core/input_file.h"
#include "core/json_value.h"
#include "core/tokenizer.h"

namespace moe {
namespace {

using nlohmann::json;

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos;
}

std::string IdOf(const json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  Fail(where, "field \"id\" must be a string or an integer, got " + Shown(value));
}

std::vector<int32_t> IdsOf(const json& value, int vocab_size, const std::string& where) {
  if (!value.is_array()) Fail(where, "field \"input_ids\" must be a list of integers");
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const json& v = value[i];
    const std::string field = "field \"input_ids\"[" + std::to_string(i) + "]";
    const int64_t id = JsonIntAs<int64_t>(v, where, field);
    if (id < 0 || id >= vocab_size)
      Fail(where, field + " = " + std::to_string(id) + " is outside the vocabulary (0.." +
                      std::to_string(vocab_size - 1) + ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// A trace stores ids as fixed-length strings as long as the longest one: one huge id would
// make every document's row that large.
void CheckSourceId(const std::string& where, const std::string& source_id) {
  if (source_id.size() > kMaxSourceIdBytes)
    Fail(where, "field \"id\" is " + std::to_string(source_id.size()) +
                    " bytes long; ids are limited to " + std::to_string(kMaxSourceIdBytes) +
                    " bytes");
}

}  // namespace

int64_t Corpus::tokens() const {
  int64_t n = 0;
  for (const CorpusDocument& d : documents) n += static_cast<int64_t>(d.ids.size());
  return n;
}

std::string Corpus::Fingerprint() const {
  Sha256 sha;
  for (const CorpusDocument& d : documents) {
    const std::string& domain = domains.at(static_cast<size_t>(d.domain));
    const uint64_t n = d.ids.size();
    sha.Update(d.source_id);
    sha.Update("\0", 1);
    sha.Update(domain);
    sha.Update("\0", 1);
    sha.Update(&n, sizeof(n));
    sha.Update(d.ids.data(), d.ids.size() * sizeof(int32_t));
  }
  return sha.HexDigest();
}

CorpusReader::CorpusReader(const Tokenizer* tokenizer, int vocab_size, CorpusOptions options)
    : tokenizer_(tokenizer), vocab_size_(vocab_size), options_(std::move(options)) {}

void CorpusReader::Read(const std::filesystem::path& file) {
  const std::string name = file.string();
  CheckInputFile(file, "a corpus file (JSONL or text)");
  if (file.extension() == ".jsonl") {
    ReadJsonl(file);
    return;
  }
  if (options_.default_domain.empty())
    Fail(name, "is a plain text file; give its domain (--domain NAME)");
  if (std::filesystem::file_size(file) > options_.max_line_bytes)
    Fail(name, "is larger than " + std::to_string(options_.max_line_bytes) +
                   " bytes, the limit of one document");
  AddText(name, file.filename().string(), options_.default_domain,
          ReadInputFile(file, "a corpus file (JSONL or text)"));
}

void CorpusReader::ReadJsonl(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) Fail(name, "cannot be opened");
  LineReader lines(in, name, options_.max_line_bytes);
  std::string line;
  while (lines.Next(line)) {
    if (IsBlank(line)) continue;
    const int64_t line_no = lines.line_number();
    const std::string where = name + ":" + std::to_string(line_no);
    json j = ParseJson(line, where);
    line = std::string();  // the parsed document replaces the line; hold one copy, not two
    if (!j.is_object()) Fail(where, "must be a JSON object");
    const bool has_text = j.contains("text"), has_ids = j.contains("input_ids");
    if (has_text == has_ids)
      Fail(where, has_text ? "has both \"text\" and \"input_ids\"; give one"
                           : "needs a field \"text\" (or \"input_ids\")");
    const std::string id = j.contains("id")
                               ? IdOf(j.at("id"), where)
                               : file.filename().string() + ":" + std::to_string(line_no);
    std::string domain = options_.default_domain;
    if (j.contains("domain")) {
      if (!j.at("domain").is_string() || j.at("domain").get<std::string>().empty())
        Fail(where, "field \"domain\" must be a non-empty string");
      domain = j.at("domain").get<std::string>();
    }
    if (domain.empty()) Fail(where, "needs a field \"domain\" (or give a default with --domain)");
    if (has_text) {
      if (!j.at("text").is_string()) Fail(where, "field \"text\" must be a string");
      AddText(where, id, domain, j.at("text").get_ref<const std::string&>());
    } else {
      AddIds(where, id, domain, IdsOf(j.at("input_ids"), vocab_size_, where));
    }
  }
}

void CorpusReader::AddText(const std::string& where, std::string source_id,
                           const std::string& domain, const std::string& text) {
  CheckSourceId(where, source_id);  // before the text costs any work
  if (IsBlank(text)) {
    corpus_.skipped.push_back(where + ": text is empty or only whitespace");
    return;
  }
  if (tokenizer_ == nullptr)
    Fail(where,
         "has \"text\" but the model has no tokenizer (tokenizer.model or tokenizer.json); give "
         "\"input_ids\"");
  // Only the first max_tokens_per_document ids are encoded: a huge line costs what its kept
  // prefix costs (Tokenizer::EncodePrefix), and the ids equal those of encoding it whole.
  AddIds(where, std::move(source_id), domain,
         tokenizer_->EncodePrefix(text, /*add_bos=*/true,
                                  static_cast<size_t>(options_.max_tokens_per_document)));
}

void CorpusReader::AddIds(const std::string& where, std::string source_id,
                          const std::string& domain, std::vector<int32_t> ids) {
  CheckSourceId(where, source_id);
  if (ids.empty()) {
    corpus_.skipped.push_back(where + ": no tokens");
    return;
  }
  if (options_.max_tokens_per_document > 0 &&
      static_cast<int64_t>(ids.size()) > options_.max_tokens_per_document)
    ids.resize(static_cast<size_t>(options_.max_tokens_per_document));
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size_)
      Fail(where, "token " + std::to_string(i) + " = " + std::to_string(ids[i]) +
                      " is outside the vocabulary (0.." + std::to_string(vocab_size_ - 1) + ")");
  const int16_t d = DomainIndex(where, domain);
  corpus_.documents.push_back({std::move(source_id), d, std::move(ids)});
}

int16_t CorpusReader::DomainIndex(const std::string& where, const std::string& name) {
  auto it = std::find(corpus_.domains.begin(), corpus_.domains.end(), name);
  if (it != corpus_.domains.end()) return static_cast<int16_t>(it - corpus_.domains.begin());
  if (corpus_.domains.size() >= static_cast<size_t>(std::numeric_limits<int16_t>::max()))
    Fail(where, "too many domains (a trace stores domain indices as int16)");
  corpus_.domains.push_back(name);
  return static_cast<int16_t>(corpus_.domains.size() - 1);
}

Corpus CorpusReader::Finish() {
  Corpus all = std::move(corpus_);
  corpus_ = Corpus{};
  if (options_.max_documents_per_domain > 0) {
    std::vector<int64_t> count(all.domains.size(), 0);
    std::erase_if(all.documents, [&](const CorpusDocument& doc) {
      return ++count[static_cast<size_t>(doc.domain)] > options_.max_documents_per_domain;
    });
  }
  if (options_.only_domains.empty()) return all;
  for (const std::string& want : options_.only_domains) {
    if (std::find(all.domains.begin(), all.domains.end(), want) == all.domains.end()) {
      std::string known;
      for (const std::string& d : all.domains) known += (known.empty() ? "" : ", ") + d;
      Fail("domain filter",
           "no document has domain '" + want + "' (the corpus has: " + known + ")");
    }
  }
  Corpus kept;
  kept.skipped = std::move(all.skipped);
  std::vector<int16_t> remap(all.domains.size(), -1);
  for (CorpusDocument& doc : all.documents) {
    const std::string& name = all.domains[static_cast<size_t>(doc.domain)];
    const auto& only = options_.only_domains;
    if (std::find(only.begin(), only.end(), name) == only.end()) continue;
    int16_t& to = remap[static_cast<size_t>(doc.domain)];
    if (to < 0) {
      to = static_cast<int16_t>(kept.domains.size());
      kept.domains.push_back(name);
    }
    doc.domain = to;
    kept.documents.push_back(std::move(doc));
  }
  return kept;
}

Corpus ReadCorpus(const std::vector<std::filesystem::path>& files, const Tokenizer* tokenizer,
                  int vocab_size, const CorpusOptions& options) {
  CorpusReader reader(tokenizer, vocab_size, options);
  for (const std::filesystem::path& f : files) reader.Read(f);
  return reader.Finish();
}

}  // namespace moe
