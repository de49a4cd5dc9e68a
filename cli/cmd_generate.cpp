// moescope generate: stream a continuation of a prompt through the KV cache.
#include <chrono>
#include <iostream>
#include <optional>

#include "cli/common.h"
#include "core/error.h"
#include "core/generate.h"
#include "core/kv_cache.h"

namespace moe::cli {
namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt;
  std::vector<int32_t> ids;
  GenerationOptions gen;
  bool ignore_eos = false;
  std::string kv_cache = "f32";
  PolicySource policy;
};

void Run(const GenerateOptions& o) {
  const std::optional<KvCacheType> kv_cache = ParseKvCacheType(o.kv_cache);
  if (!kv_cache) Fail("--kv-cache", "is " + Quoted(Clipped(o.kv_cache)) + ", expected f32 or bf16");
  // Decoding reads every weight per token: copying them into huge pages pays, and in the
  // background it does not delay the first token (docs/performance.md).
  const auto start = std::chrono::steady_clock::now();
  const LoadedModel m = OpenModel(o.model, WeightPages::kHugeBackground);
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<int32_t> prompt = o.ids;
  if (prompt.empty()) {
    if (o.prompt.empty()) Fail("generate", "the prompt is empty: give --prompt TEXT or --ids");
    prompt = m.RequireTokenizer().Encode(o.prompt);
  }
  GenerationOptions gen = o.gen;
  gen.stop_at_eos = !o.ignore_eos;
  gen.kv_cache = *kv_cache;
  const RoutingPolicy policy = MakePolicy(o.policy, m.config());
  if (!policy.empty()) gen.policy = &policy;
  // Stream text: decode the prompt and everything generated so far and print what is new, so
  // multi-piece characters and the spaces SentencePiece attaches to pieces come out right.
  std::vector<int32_t> all = prompt;
  std::string printed;
  if (m.tokenizer) {
    printed = m.tokenizer->Decode(prompt);
    std::cout << printed << std::flush;
  }
  const GenerationResult r = Generate(*m.model, prompt, gen, [&](int32_t id) {
    all.push_back(id);
    if (!m.tokenizer) {
      std::cout << id << " " << std::flush;
      return;
    }
    const std::string text = m.tokenizer->Decode(all);
    if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0)
      std::cout << text.substr(printed.size()) << std::flush;
    printed = text;
  });
  std::cout << "\n";
  const double decode_rate =
      r.tokens.size() > 1 ? (r.tokens.size() - 1) / std::max(r.decode_seconds, 1e-9) : 0.0;
  std::cerr << "loaded in " << load_seconds << " s; prompt " << prompt.size() << " tokens, "
            << prompt.size() / r.prefill_seconds << " tok/s; first token after "
            << load_seconds + r.prefill_seconds << " s; generated " << r.tokens.size()
            << " tokens, " << decode_rate << " tok/s\n";
}

}  // namespace

void RegisterGenerate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt");
  AddModelOptions(*cmd, o->model);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text (BOS is prepended)");
  cmd->add_option("--ids", o->ids, "Prompt as token ids instead of text")->delimiter(',');
  cmd->add_option("-n,--max-new-tokens", o->gen.max_new_tokens, "Tokens to generate")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", o->gen.sampling.temperature, "0 = greedy");
  cmd->add_option("--top-k", o->gen.sampling.top_k, "Sample among the k most likely (0 = all)");
  cmd->add_option("--top-p", o->gen.sampling.top_p, "Nucleus sampling mass");
  cmd->add_option("--seed", o->gen.sampling.seed, "Random seed");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep going after EOS");
  cmd->add_option("--kv-cache", o->kv_cache,
                  "Element type of the KV cache: f32, or bf16 (keys and values rounded to bf16, "
                  "half the memory and decode reads)")
      ->capture_default_str();
  AddPolicyOptions(*cmd, o->policy, "--route-top-k");
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
