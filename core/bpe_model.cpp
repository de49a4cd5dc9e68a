#include "core/bpe_model.h"

#include <queue>

#include "core/byte_level.h"
#include "core/error.h"

namespace moe {

BpeModel::BpeModel(const BpeTokenizerSpec& spec, const std::string& where)
    : ignore_merges_(spec.ignore_merges) {
  vocab_.reserve(spec.vocab.size());
  for (const auto& [token, id] : spec.vocab) vocab_.emplace(token, id);
  for (int b = 0; b < 256; ++b) byte_id_[b] = IdOf(ByteLevelChar(static_cast<unsigned char>(b)));
  if (!spec.unk_token.empty()) {
    unk_id_ = IdOf(spec.unk_token);
    if (unk_id_ < 0)
      Fail(where, "model.unk_token " + Quoted(Clipped(spec.unk_token)) + " is not in model.vocab");
  }
  merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    const auto id = [&](const std::string& token, const char* what) {
      const int32_t found = IdOf(token);
      if (found < 0)
        Fail(where, "model.merges[" + std::to_string(rank) + "] names " + what + " token " +
                        Quoted(Clipped(token)) + ", which is not in model.vocab");
      return found;
    };
    const int32_t l = id(left, "a"), r = id(right, "a");
    const int32_t merged = id(left + right, "(merged) the");
    // Real files list each pair once; a repeat would leave its rank a guess, so it is refused.
    if (!merges_.emplace(PairKey(l, r), Merge{static_cast<int32_t>(rank), merged}).second)
      Fail(where, "model.merges[" + std::to_string(rank) + "] repeats the pair " +
                      Quoted(Clipped(left + " " + right)));
  }
}

int32_t BpeModel::IdOf(const std::string& token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::EncodeWord(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.size() > kCachedWordBytes) {
    const std::vector<int32_t> ids = Merged(bytes);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  const std::string key(bytes);
  {
    const std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = Merged(bytes);
  out.insert(out.end(), ids.begin(), ids.end());
  const std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheWords) cache_.clear();
  cache_.emplace(key, std::move(ids));
}

std::vector<int32_t> BpeModel::Merged(std::string_view bytes) const {
  if (ignore_merges_) {
    std::string mapped;
    AppendByteLevel(bytes, mapped);
    if (const int32_t id = IdOf(mapped); id >= 0) return {id};
  }
  // The word's symbols as a linked list: merging joins a symbol with the one after it.
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(bytes.size());
  for (char c : bytes) {
    int32_t id = byte_id_[static_cast<unsigned char>(c)];
    if (id < 0) id = unk_id_;
    if (id < 0) continue;  // no such character and no unk_token: dropped
    const int at = static_cast<int>(symbols.size());
    symbols.push_back({id, at - 1, at + 1, true});
  }
  if (symbols.empty()) return {};
  symbols.back().next = -1;

  // Candidate merges, best rank first, leftmost first among equal ranks (Hugging Face's order).
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t merged_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto consider = [&](int pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    const auto it = merges_.find(PairKey(symbols[pos].id, symbols[symbols[pos].next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.merged_id});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    // Stale: the symbol was merged into the one before it, or its right neighbour changed.
    if (!left.alive || left.next < 0) continue;
    const auto it = merges_.find(PairKey(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.merged_id != top.merged_id) continue;
    Symbol& right = symbols[left.next];
    left.id = top.merged_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  std::vector<int32_t> ids;
  for (int at = 0; at >= 0; at = symbols[at].next) ids.push_back(symbols[at].id);
  return ids;
}

}  // namespace moe
