#include "core/batch.h"

#include "core/config.h"
#include "core/error.h"

namespace moe {

Batch Batch::Single(const std::vector<int32_t>& ids, int32_t start_position) {
  Batch b;
  b.batch_size = 1;
  b.seq_len = static_cast<int64_t>(ids.size());
  b.ids = ids;
  b.mask.assign(ids.size(), 1);
  b.documents.assign(ids.size(), -1);
  for (size_t i = 0; i < ids.size(); ++i)
    b.positions.push_back(start_position + static_cast<int32_t>(i));
  return b;
}

Batch Batch::FromRows(const std::vector<std::vector<int32_t>>& ids,
                      const std::vector<std::vector<int32_t>>& mask,
                      const std::vector<std::vector<int32_t>>& positions) {
  Batch b;
  b.batch_size = static_cast<int64_t>(ids.size());
  b.seq_len = ids.empty() ? 0 : static_cast<int64_t>(ids[0].size());
  auto check_rows = [&](const std::vector<std::vector<int32_t>>& rows, const char* name) {
    if (static_cast<int64_t>(rows.size()) != b.batch_size)
      Fail(name, "has " + std::to_string(rows.size()) + " rows, input_ids has " +
                     std::to_string(b.batch_size));
    for (size_t r = 0; r < rows.size(); ++r)
      if (static_cast<int64_t>(rows[r].size()) != b.seq_len)
        Fail(std::string(name) + "[" + std::to_string(r) + "]",
             "has " + std::to_string(rows[r].size()) + " entries, expected " +
                 std::to_string(b.seq_len));
  };
  check_rows(ids, "input_ids");
  if (!mask.empty()) check_rows(mask, "attention_mask");
  if (!positions.empty()) check_rows(positions, "position_ids");
  for (int64_t r = 0; r < b.batch_size; ++r) {
    int32_t running = 0;
    for (int64_t s = 0; s < b.seq_len; ++s) {
      const int32_t m = mask.empty() ? 1 : mask[r][s];
      if (m != 0 && m != 1)
        Fail("attention_mask[" + std::to_string(r) + "][" + std::to_string(s) + "]",
             "must be 0 or 1, got " + std::to_string(m));
      running += m;
      b.ids.push_back(ids[r][s]);
      b.mask.push_back(m);
      b.positions.push_back(!positions.empty() ? positions[r][s] : m ? running - 1 : 1);
      b.documents.push_back(-1);
    }
  }
  return b;
}

void Batch::Validate(const ModelConfig& config) const {
  if (batch_size < 1 || seq_len < 1) Fail("input_ids", "is empty: nothing to run");
  const size_t n = static_cast<size_t>(tokens());
  if (ids.size() != n || mask.size() != n || positions.size() != n || documents.size() != n)
    Fail("batch", "arrays do not all hold batch_size x seq_len entries");
  for (size_t t = 0; t < n; ++t) {
    if (ids[t] < 0 || ids[t] >= config.vocab_size)
      Fail("input", "input_ids[" + std::to_string(t / seq_len) + "][" +
                        std::to_string(t % seq_len) + "] = " + std::to_string(ids[t]) +
                        " is outside the vocabulary (0.." + std::to_string(config.vocab_size - 1) +
                        ")");
    if (positions[t] < 0)
      Fail("position_ids[" + std::to_string(t / seq_len) + "][" + std::to_string(t % seq_len) + "]",
           "is negative");
  }
}

}  // namespace moe
