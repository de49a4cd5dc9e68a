#pragma once
// Negative log-likelihood of whole texts, in windows of the context length.
#include <cmath>
#include <string>
#include <vector>

#include "core/llama_moe_model.h"
#include "core/tokenizer.h"

namespace moe {

struct TextScore {
  int64_t scored_tokens = 0;  // predicted tokens (all but the first of each window)
  double total_nll = 0;
  std::vector<float> token_nll;  // per predicted token, in order
  double mean_nll() const { return scored_tokens ? total_nll / scored_tokens : 0.0; }
  double perplexity() const { return std::exp(mean_nll()); }
};

// Texts longer than the context are cut into consecutive windows of the context length, each
// run on its own; the first token of every window is context only, never predicted.
TextScore ScoreText(const LlamaMoeModel& model, const Tokenizer& tokenizer, const std::string& text,
                    const RoutingPolicy* policy = nullptr);
TextScore ScoreIds(const LlamaMoeModel& model, const std::vector<int32_t>& ids,
                   const RoutingPolicy* policy = nullptr);

struct Document {
  std::string id;
  std::string text;
};
// A JSONL file ({"text": ...} per line, optional "id") or a plain text file (one document).
std::vector<Document> ReadDocuments(const std::string& path);

}  // namespace moe
