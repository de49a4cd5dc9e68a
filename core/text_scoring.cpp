#include "core/text_scoring.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/heads.h"

namespace moe {

TextScore ScoreIds(const LlamaMoeModel& model, const std::vector<int32_t>& ids,
                   const RoutingPolicy* policy) {
  const int64_t window = model.config().context_length();
  TextScore score;
  for (size_t begin = 0; begin < ids.size(); begin += window) {
    const size_t end = std::min(ids.size(), begin + static_cast<size_t>(window));
    if (end - begin < 2) break;
    const Batch batch = Batch::Single(std::vector<int32_t>(ids.begin() + begin, ids.begin() + end));
    const std::vector<float> hidden = model.Forward(batch, nullptr, policy);
    const std::vector<float> logits = LmLogits(model, hidden.data(), batch.tokens());
    const std::vector<float> nll = NextTokenNll(model, batch, logits);
    for (size_t t = 0; t + 1 < nll.size(); ++t) {
      score.token_nll.push_back(nll[t]);
      score.total_nll += nll[t];
      ++score.scored_tokens;
    }
  }
  return score;
}

TextScore ScoreText(const LlamaMoeModel& model, const Tokenizer& tokenizer, const std::string& text,
                    const RoutingPolicy* policy) {
  if (text.empty()) Fail("score", "the text is empty");
  return ScoreIds(model, tokenizer.Encode(text), policy);
}

std::vector<Document> ReadDocuments(const std::string& path) {
  std::ifstream in(path);
  if (!in) Fail(path, "cannot open");
  std::vector<Document> docs;
  const bool jsonl = path.size() > 6 && path.substr(path.size() - 6) == ".jsonl";
  if (!jsonl) {
    std::stringstream ss;
    ss << in.rdbuf();
    docs.push_back({path, ss.str()});
    return docs;
  }
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      Fail(where, std::string("is not valid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("text") || !j.at("text").is_string())
      Fail(where, "needs a string field \"text\"");
    std::string id = std::to_string(line_no);
    if (j.contains("id"))
      id = j.at("id").is_string() ? j.at("id").get<std::string>() : j.at("id").dump();
    docs.push_back({id, j.at("text").get<std::string>()});
  }
  return docs;
}

}  // namespace moe
