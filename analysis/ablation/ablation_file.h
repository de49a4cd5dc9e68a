#pragma once
// The HDF5 results file of `moescope ablate` (docs/ablation-format.md): a header describing the
// model, corpus and settings, the scored tokens, and one group per finished policy whose
// `completed` flag is written last, so an interrupted sweep resumes by skipping them. The file
// is opened only while a policy is written, so an interruption between policies leaves it
// clean.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/ablation/ablation_pass.h"
#include "analysis/ablation/ablation_result.h"
#include "analysis/trace/trace_attributes.h"

namespace moe {

struct AblationHeader {
  TraceAttributes run;  // model, checkpoint, corpus, windows (attributes_io.h)
  int bootstrap = 0;
  uint64_t seed = 0;
  double ci_level = 0.95;
  ScoredTokens tokens;  // domains, documents and the scored tokens
};

class AblationFile {
 public:
  // A new file (replacing any) with the header and token tables; on failure the file is left
  // empty.
  static void Create(const std::filesystem::path& path, const AblationHeader& header);
  // Throws Error naming the file and attribute when it was not made for `header`'s run (model,
  // checkpoint, corpus, windows, bootstrap, seed).
  static void CheckResumable(const std::filesystem::path& path, const AblationHeader& header);
  // Names of the policies whose group is completed.
  static std::vector<std::string> CompletedPolicies(const std::filesystem::path& path);
  // Appends one policy's group; `base_nll` [T] is written with the first policy.
  static void WritePolicy(const std::filesystem::path& path, const AblationResult& result,
                          const std::vector<float>& base_nll);
  // Every completed policy, in the order written, with per-token values when stored.
  static std::vector<AblationResult> Read(const std::filesystem::path& path,
                                          std::vector<std::string>* domains = nullptr);

 private:
  static void WriteHeader(const std::filesystem::path& path, const AblationHeader& header);
};

}  // namespace moe
