#pragma once
// A trace's documents as a corpus: the same token ids, source ids and domains, so that an
// ablation (or a second trace) runs over exactly the tokens a trace recorded.
#include <filesystem>

#include "analysis/corpus/corpus.h"

namespace moe {

// Reads docs/, domains and tokens/id of `trace`. `vocab_size` bounds the ids (a trace of another
// tokenizer is an error naming the trace); options.only_domains filters as for corpus files.
Corpus CorpusFromTrace(const std::filesystem::path& trace, int vocab_size,
                       const CorpusOptions& options);

}  // namespace moe
