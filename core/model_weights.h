#pragma once
// Plain structs of pointers into the checkpoint: nothing here owns or converts weight bytes, so
// a bf16 checkpoint stays bf16 in memory (docs/engine.md, Numerics).
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/tensor.h"

namespace moe {

// A weight matrix as nn.Linear stores it: [rows = out_features, cols = in_features].
struct Matrix {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  bool empty() const { return data == nullptr; }
  size_t nbytes() const { return static_cast<size_t>(rows * cols) * DTypeSize(dtype); }
};

// A 1-D parameter (norm weight, bias).
struct Vector {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t size = 0;

  bool empty() const { return data == nullptr; }
  float at(int64_t i) const;
};

struct ExpertWeights {
  Matrix gate;  // [width, H]  weight_gate.{e}
  Matrix up;    // [width, H]  weight_up.{e}
  Matrix down;  // [H, width]  weight_down.{e}
};

struct LayerWeights {
  Vector input_norm;                      // [H]
  Matrix q, k, v, o;                      // [nh*d, H], [nkv*d, H], [nkv*d, H], [H, nh*d]
  Vector q_bias, k_bias, v_bias, o_bias;  // only with qkv_bias / o_bias
  Vector q_norm, k_norm;       // [nh*d], [nkv*d] full width, or [d], [d] per head; empty without
  Vector post_attention_norm;  // [H]
  Matrix
      router_in;  // [E, H]  the router (LLaMA-MoE: gate_network.0 of an mlp gate); empty when dense
  Matrix router_out;      // [E, E]  gate_network.2 (LLaMA-MoE mlp gate only)
  Vector selection_bias;  // [E]  e_score_correction_bias (sigmoid routers), empty without
  std::vector<ExpertWeights> experts;  // E entries; a dense layer's MLP is its one entry
  ExpertWeights shared_expert;         // [F_shared] widths; empty without shared experts
  Matrix shared_expert_gate;           // [1, H]  Qwen2-MoE's sigmoid gate; empty when ungated
};

struct ModelWeights {
  Matrix embed;  // [V, H]
  std::vector<LayerWeights> layers;
  Vector final_norm;  // [H]
  Matrix lm_head;     // [V, H]; = embed when tied; empty for heads without one
  Matrix score;       // [num_labels, H], sequence classification
  Matrix qa_outputs;  // [2, H], question answering
  Vector qa_bias;     // [2]
};

// Finds every tensor the config calls for, by exact name, checking dtype and shape, and with
// ValueCheck::kFinite that each holds no NaN or infinity.
ModelWeights LoadModelWeights(const Checkpoint& checkpoint, const ModelConfig& config,
                              ValueCheck check = ValueCheck::kNone);

// "model." for most heads, "transformer." for question answering (docs/llama-moe-spec.md §2.9).
std::string BodyPrefix(const ModelConfig& config);

}  // namespace moe
