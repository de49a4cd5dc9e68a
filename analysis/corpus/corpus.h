#pragma once
// Corpora for tracing: JSONL files with one document per line, or plain text files holding one
// document each, tokenized with the model's tokenizer.
//
// JSONL line: {"id": ..., "domain": "code", "text": "..."}  or, pre-tokenized,
//             {"id": ..., "domain": "code", "input_ids": [1, 415, ...]}
//   id         optional, string or number, at most kMaxSourceIdBytes bytes; default
//              "<file name>:<line>"
//   domain     optional when a default domain is given, else required
//   text       tokenized with BOS prepended (as LLaMA's tokenizer does by default)
//   input_ids  used as they are (no BOS added), each checked against the vocabulary
// A file whose name ends in ".jsonl" is JSONL; any other file is one plain-text document whose
// id is the file name and whose domain is the default domain.
//
// Hostile sizes: a line (or a plain text file) longer than CorpusOptions::max_line_bytes is an
// error naming "<file>:<line>"; text is tokenized only as far as max_tokens_per_document needs
// (Tokenizer::EncodePrefix), so a long line costs what its kept prefix costs.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe {

class Tokenizer;

// The longest document id accepted (docs/trace-format.md: a trace stores ids as fixed-length
// strings as long as the longest).
inline constexpr size_t kMaxSourceIdBytes = 1024;

struct CorpusDocument {
  std::string source_id;     // the "id" field, or "<file>:<line>" / the file name
  int16_t domain = 0;        // index into Corpus::domains
  std::vector<int32_t> ids;  // tokens, BOS first for text documents
};

struct Corpus {
  std::vector<std::string> domains;  // in order of first appearance
  std::vector<CorpusDocument> documents;
  // Documents left out, each as "<file>:<line>: <why>" (text of only whitespace, no tokens).
  std::vector<std::string> skipped;

  int64_t tokens() const;
  // SHA-256 over every document's id, domain name and token ids, in order: two runs over the
  // same documents (after filtering) have the same fingerprint.
  std::string Fingerprint() const;
};

struct CorpusOptions {
  std::string default_domain;                // for plain text files and JSONL lines without one
  std::vector<std::string> only_domains;     // keep only these domains (empty = all)
  int64_t max_documents_per_domain = 0;      // keep each domain's first N documents (0 = all)
  int64_t max_tokens_per_document = 0;       // keep each document's first N tokens (0 = all)
  size_t max_line_bytes = size_t{64} << 20;  // longest JSONL line / plain text file accepted
};

class CorpusReader {
 public:
  // `tokenizer` may be null when every document is pre-tokenized; `vocab_size` bounds input_ids.
  CorpusReader(const Tokenizer* tokenizer, int vocab_size, CorpusOptions options);

  // Appends the documents of one file. Errors name "<file>:<line>" and the field, e.g.
  // "web.jsonl:12: field \"text\" must be a string".
  void Read(const std::filesystem::path& file);
  // The corpus read so far, with the domain filter applied. Throws Error when the filter names a
  // domain that no document has.
  Corpus Finish();
  // Appends one text document (BOS first); `where` names it in errors. Whitespace-only text is
  // counted as skipped.
  void AddText(const std::string& where, std::string source_id, const std::string& domain,
               const std::string& text);
  // Appends one pre-tokenized document; ids outside the vocabulary are an error naming `where`.
  void AddIds(const std::string& where, std::string source_id, const std::string& domain,
              std::vector<int32_t> ids);

 private:
  void ReadJsonl(const std::filesystem::path& file);
  int16_t DomainIndex(const std::string& where, const std::string& name);

  const Tokenizer* tokenizer_;
  int vocab_size_;
  CorpusOptions options_;
  Corpus corpus_;
};

// Reads every file in order.
Corpus ReadCorpus(const std::vector<std::filesystem::path>& files, const Tokenizer* tokenizer,
                  int vocab_size, const CorpusOptions& options);

}  // namespace moe
