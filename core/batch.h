#pragma once
// The token input of one forward call: B sequences of S positions each (padded), row-major,
// token t = b * S + s as upstream flattens them.
#include <cstdint>
#include <vector>

namespace moe {

struct ModelConfig;

struct Batch {
  int64_t batch_size = 0;
  int64_t seq_len = 0;
  std::vector<int32_t> ids;        // [B*S]
  std::vector<int32_t> mask;       // [B*S] 1 = real token, 0 = padding
  std::vector<int32_t> positions;  // [B*S] position ids
  std::vector<int32_t> documents;  // [B*S] caller's document ids (-1 when unknown)

  int64_t tokens() const { return batch_size * seq_len; }

  // One unpadded sequence whose first token sits at `start_position`.
  static Batch Single(const std::vector<int32_t>& ids, int32_t start_position = 0);
  // Rows of equal length with the given mask; positions default to upstream's generation rule
  // (cumsum(mask) - 1, and 1 at padding) when `positions` is empty.
  static Batch FromRows(const std::vector<std::vector<int32_t>>& ids,
                        const std::vector<std::vector<int32_t>>& mask,
                        const std::vector<std::vector<int32_t>>& positions = {});

  // Throws Error naming the entry when an id is outside the vocabulary, a shape is ragged, or
  // the batch is empty.
  void Validate(const ModelConfig& config) const;
};

}  // namespace moe
