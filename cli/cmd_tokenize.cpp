// moescope tokenize: token ids (and pieces) of a text, to check tokenization against other tools.
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "core/input_file.h"
#include "core/tokenizer.h"

namespace moe::cli {
namespace {

struct TokenizeOptions {
  std::string model_dir, text, file;
  bool pieces = false, no_bos = false;
};

void Run(const TokenizeOptions& o) {
  const std::filesystem::path dir =
      o.model_dir.empty() ? DefaultModelDir() : std::filesystem::path(o.model_dir);
  const std::unique_ptr<Tokenizer> opened = OpenTokenizer(dir);
  if (!opened) Fail(dir.string(), "has no tokenizer.model or tokenizer.json");
  const Tokenizer& tok = *opened;
  std::string text = o.text;
  if (!o.file.empty()) text = ReadInputFile(o.file, "a text file");
  const std::vector<int32_t> ids = tok.Encode(text, !o.no_bos);
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  if (o.pieces) {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << tok.Piece(ids[i]);
    std::cout << "\n";
  }
}

}  // namespace

void RegisterTokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("--model", o->model_dir,
                  "Model folder holding tokenizer.model or tokenizer.json");
  cmd->add_option("text", o->text, "Text to tokenize");
  cmd->add_option("-f,--file", o->file, "Read the text from a file instead");
  cmd->add_flag("--pieces", o->pieces, "Also print the pieces");
  cmd->add_flag("--no-bos", o->no_bos, "Do not prepend BOS");
  cmd->callback([o] { g_exit_code = Guarded([&] { Run(*o); }); });
}

}  // namespace moe::cli
