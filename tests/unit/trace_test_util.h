#pragma once
// Shared by the test_trace_*.cpp files: where the model, corpus, CLI and Python checker are, and
// small helpers to run them.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/run/trace_runner.h"
#include "core/model_loader.h"
#include "test_paths.h"

extern char** environ;

namespace trace_test {

inline std::filesystem::path SourceDir() {
  return MOESCOPE_SOURCE_DIR;
}
inline std::filesystem::path TinyModel() {
  return SourceDir() / "tests/fixtures/tiny_moe";
}
inline std::filesystem::path TinyCorpus() {
  return FixtureDir() / "corpus/tiny.jsonl";
}
inline std::filesystem::path FormatDoc() {
  return SourceDir() / "docs/trace-format.md";
}
inline std::filesystem::path Checker() {
  return SourceDir() / "tests/python/check_trace.py";
}
inline std::string Cli() {
  return MOESCOPE_CLI;
}

inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) r.output.append(buffer, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The Python checker (h5py only) on a trace; `expected` is a JSON file of values the C++ reader
// saw, or empty.
inline CommandResult RunChecker(const std::filesystem::path& trace,
                                const std::filesystem::path& expected = {}, bool swmr = false) {
  // append(), not operator+: GCC 12 warns falsely (-Wrestrict) on " " + std::string temporaries.
  std::string cmd = "/usr/bin/python3";
  for (const std::string& a : {Checker().string(), trace.string(), FormatDoc().string()})
    cmd.append(" ").append(Quote(a));
  if (!expected.empty()) cmd.append(" ").append(Quote(expected.string()));
  if (swmr) cmd += " --swmr";
  return RunCommand(cmd);
}

// Starts the moescope CLI in the background with output to `log`; returns its pid.
inline pid_t SpawnCli(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<std::string> argv_s = {Cli()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

inline std::string ReadText(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A JSONL corpus of `docs` documents cut from the license texts Debian installs, in five
// domains; about 300 tokens per document with the default model's tokenizer.
inline void WriteLicenseCorpus(const std::filesystem::path& out, int docs) {
  const std::vector<std::string> names = {"Apache-2.0", "GPL-3", "LGPL-2.1", "MPL-2.0", "Artistic"};
  std::vector<std::string> texts;
  for (const std::string& n : names) texts.push_back(ReadText("/usr/share/common-licenses/" + n));
  std::ofstream f(out);
  for (int d = 0; d < docs; ++d) {
    const size_t which = static_cast<size_t>(d) % names.size();
    const std::string& t = texts[which];
    const size_t start = (static_cast<size_t>(d) * 613) % (t.size() - 800);
    nlohmann::json j = {{"id", "doc-" + std::to_string(d)},
                        {"domain", names[which]},
                        {"text", t.substr(start, 500 + (d % 7) * 50)}};
    f << j.dump() << "\n";
  }
}

inline moe::TraceOptions TinyOptions(const std::filesystem::path& output) {
  moe::TraceOptions o;
  o.output = output;
  o.run.corpus_files = {TinyCorpus().string()};
  o.batch_size = 4;
  return o;
}

}  // namespace trace_test
