// moescope forward: one forward pass over given token ids, every output written to safetensors
// under the golden files' names (see core/forward_record.h).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/forward_record.h"
#include "core/json_value.h"
#include "core/safetensors_file.h"

namespace moe::cli {
namespace {

struct ForwardOptions {
  ModelOptions model;
  std::string input, output;
  bool activations = false;
  PolicySource policy;
};

using Rows = std::vector<std::vector<int32_t>>;

Rows ReadRows(const nlohmann::json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || j.at(key).is_null()) return {};
  try {
    return j.at(key).get<Rows>();
  } catch (const nlohmann::json::exception&) {
    Fail(path, std::string(key) + " must be a list of lists of integers");
  }
}

void Run(const ForwardOptions& o) {
  const nlohmann::json j = ReadJsonFile(o.input);
  if (!j.is_object() || !j.contains("input_ids")) Fail(o.input, "needs \"input_ids\": [[...]]");
  const Rows ids = ReadRows(j, "input_ids", o.input);
  if (ids.empty() || ids[0].empty()) Fail(o.input, "input_ids is empty");
  const Batch batch = Batch::FromRows(ids, ReadRows(j, "attention_mask", o.input),
                                      ReadRows(j, "position_ids", o.input));
  const LoadedModel m = OpenModel(o.model);
  const RoutingPolicy policy = MakePolicy(o.policy, m.config());
  const std::vector<OwnedTensor> tensors =
      RecordForward(*m.model, batch,
                    {.activations = o.activations, .policy = policy.empty() ? nullptr : &policy});
  WriteSafetensors(o.output, tensors, {{"format", "pt"}, {"producer", "moescope forward"}});
  std::cerr << "wrote " << tensors.size() << " tensors to " << o.output << "\n";
}

}  // namespace

void RegisterForward(CLI::App& app) {
  auto o = std::make_shared<ForwardOptions>();
  CLI::App* cmd =
      app.add_subcommand("forward", "Run token ids and write logits and routing to safetensors");
  AddModelOptions(*cmd, o->model);
  cmd->add_option("--input", o->input,
                  "JSON with input_ids [[...]], optional attention_mask and position_ids")
      ->required();
  cmd->add_option("--output", o->output, "safetensors file to write")->required();
  cmd->add_flag("--activations", o->activations,
                "Also write embeddings and per-layer attn_out, moe_in, moe_out, hidden_out");
  AddPolicyOptions(*cmd, o->policy);
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
