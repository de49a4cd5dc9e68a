#include "gui_test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <imgui_internal.h>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "analysis/trace/domain_load.h"
#include "analysis/trace/trace_file.h"
#include "analysis/trace/trace_reader.h"
#include "analysis/run/trace_runner.h"
#include "core/model_loader.h"
#include "gui/views/style.h"

namespace gui_test {

ShellRun Shell(const std::string& command) {
  ShellRun r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out.append(c == '\'' ? "'\\''" : std::string(1, c));
  return out.append("'");
}

using namespace moe::studio;

TempDir::TempDir(const std::string& name) {
  path_ = std::filesystem::temp_directory_path() /
          ("moescope-gui-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<Quad> SolidQuads() {
  std::vector<Quad> quads;
  const ImDrawData* dd = ImGui::GetDrawData();
  const ImVec2 white = ImGui::GetIO().Fonts->TexUvWhitePixel;
  if (dd == nullptr) return quads;
  for (int n = 0; n < dd->CmdListsCount; ++n) {
    const ImDrawList* dl = dd->CmdLists[n];
    for (const ImDrawCmd& cmd : dl->CmdBuffer) {
      const ImDrawIdx* idx = dl->IdxBuffer.Data + cmd.IdxOffset;
      for (unsigned i = 0; i + 6 <= cmd.ElemCount;) {
        const unsigned a = idx[i] + cmd.VtxOffset;
        const bool rect_pattern =
            idx[i + 1] + cmd.VtxOffset == a + 1 && idx[i + 2] + cmd.VtxOffset == a + 2 &&
            idx[i + 3] + cmd.VtxOffset == a && idx[i + 4] + cmd.VtxOffset == a + 2 &&
            idx[i + 5] + cmd.VtxOffset == a + 3;
        if (!rect_pattern || a + 3 >= static_cast<unsigned>(dl->VtxBuffer.Size)) {
          i += 3;
          continue;
        }
        const ImDrawVert* v = dl->VtxBuffer.Data + a;
        bool solid = true;
        for (int k = 0; k < 4; ++k)
          solid &= v[k].col == v[0].col && v[k].uv.x == white.x && v[k].uv.y == white.y;
        // Axis-aligned: vertices a, (c.x, a.y), c, (a.x, c.y).
        solid &= v[1].pos.y == v[0].pos.y && v[1].pos.x == v[2].pos.x && v[3].pos.x == v[0].pos.x &&
                 v[3].pos.y == v[2].pos.y;
        if (solid) {
          quads.push_back({v[0].pos, v[2].pos, v[0].col});
          i += 6;
        } else {
          i += 3;
        }
      }
    }
  }
  return quads;
}

std::vector<Quad> QuadsIn(const std::vector<Quad>& quads, ImVec2 min, ImVec2 max) {
  std::vector<Quad> out;
  for (const Quad& q : quads) {
    if (q.min.x >= min.x && q.max.x <= max.x && q.min.y >= min.y && q.max.y <= max.y)
      out.push_back(q);
  }
  return out;
}

bool TooltipShown() {
  ImGuiContext& g = *ImGui::GetCurrentContext();
  for (ImGuiWindow* w : g.Windows)
    if ((w->Flags & ImGuiWindowFlags_Tooltip) && w->Active) return true;
  return false;
}

const std::filesystem::path& SmallTrace() {
  static TempDir dir("trace");
  static const std::filesystem::path path = [] {
    const std::filesystem::path out = dir.path() / "small.h5";
    const moe::LoadedModel model = moe::LoadModel(TinyModel());
    moe::TraceOptions o;
    o.output = out;
    o.run.corpus_files = {TinyCorpus().string()};
    o.batch_size = 4;
    moe::RunTrace(model, moe::RoutingPolicy{}, o);
    return out;
  }();
  return path;
}

namespace {

// The header of an existing trace, to write its documents again.
moe::TraceHeader HeaderOf(const moe::TraceReader& r) {
  moe::TraceHeader h;
  static_cast<moe::TraceAttributes&>(h) = r.info();
  h.record_logits = false;  // the copy carries no logits
  h.logit_sample_rate = 0;
  h.domains = r.domains();
  for (const std::string& s : r.SourceIds(0, r.num_documents()))
    h.source_id_bytes = std::max(h.source_id_bytes, s.size() + 1);
  return h;
}

// Documents [first, last) of `r` as one chunk; `stats` holds the /stats of everything before.
moe::TraceChunk ChunkOf(const moe::TraceReader& r, int64_t first, int64_t last,
                        moe::ExpertStats& stats) {
  moe::TraceChunk c;
  const int64_t begin = r.Document(first).token_begin, end = r.Document(last - 1).token_end;
  const std::vector<std::string> ids = r.SourceIds(first, last - first);
  for (int64_t d = first; d < last; ++d) {
    c.doc_tokens.push_back(r.Document(d).tokens());
    c.doc_domain.push_back(r.Document(d).domain);
    c.doc_source_id.push_back(ids[static_cast<size_t>(d - first)]);
  }
  const moe::TokenRows tokens = r.ReadTokens(begin, end - begin);
  const moe::RoutingRows routing = r.ReadRouting(begin, end - begin);
  c.id = tokens.id;
  c.position = tokens.position;
  c.doc = tokens.doc;
  c.nll = tokens.nll;
  c.topk_ids = routing.ids;
  c.topk_weights = routing.weights;
  const size_t per_token = static_cast<size_t>(routing.layers) * routing.kmax;
  for (int64_t t = 0; t < end - begin; ++t)
    stats.AddToken(r.doc_domains()[static_cast<size_t>(tokens.doc[static_cast<size_t>(t)])],
                   routing.ids.data() + t * per_token, routing.weights.data() + t * per_token,
                   routing.kmax);
  c.load = stats.load();
  c.importance = stats.importance();
  return c;
}

// One byte through a pipe: the two processes take turns.
bool Send(int fd) {
  const char b = 1;
  return ::write(fd, &b, 1) == 1;
}
bool Receive(int fd) {
  char b = 0;
  return ::read(fd, &b, 1) == 1;
}

}  // namespace

GrowingTrace::GrowingTrace(const std::filesystem::path& path, int64_t first) : first_(first) {
  const moe::TraceReader source(SmallTrace());
  documents_ = source.num_documents();
  REQUIRE(first > 0);
  REQUIRE(first < documents_);
  moe::ExpertStats stats(static_cast<int>(source.domains().size()), source.info().num_layers,
                         source.info().num_experts);
  const moe::TraceHeader header = HeaderOf(source);
  const moe::TraceChunk part1 = ChunkOf(source, 0, first, stats);
  const moe::TraceChunk part2 = ChunkOf(source, first, documents_, stats);
  int to[2], from[2];
  REQUIRE(::pipe(to) == 0);
  REQUIRE(::pipe(from) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the writer: commit part 1, wait, commit part 2, wait, complete
    int status = 1;
    try {
      moe::TraceFile f = moe::TraceFile::Create(path, header);
      f.Commit(part1);
      if (Send(from[1]) && Receive(to[0])) {
        f.Commit(part2);
        if (Send(from[1]) && Receive(to[0])) {
          f.MarkComplete();
          f.Close();
          status = 0;
        }
      }
    } catch (...) {
    }
    ::_exit(status);
  }
  ::close(to[0]);
  ::close(from[1]);
  pid_ = pid;
  to_writer_ = to[1];
  from_writer_ = from[0];
  REQUIRE(Receive(from_writer_));  // part 1 is committed; the writer keeps the file open
}

GrowingTrace::~GrowingTrace() {
  ::close(to_writer_);  // a writer still waiting ends
  ::close(from_writer_);
  int status = 0;
  if (pid_ > 0) ::waitpid(pid_, &status, 0);
}

void GrowingTrace::Grow() {
  REQUIRE(Send(to_writer_));
  REQUIRE(Receive(from_writer_));
}

bool GrowingTrace::Complete() {
  REQUIRE(Send(to_writer_));
  int status = 0;
  REQUIRE(::waitpid(pid_, &status, 0) == pid_);
  pid_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

namespace {

class XServer {
 public:
  XServer() {
    int fds[2];
    if (::pipe(fds) != 0) return;
    const std::string fd = std::to_string(fds[1]);
    std::vector<std::string> args = {"Xvfb", "-displayfd",   fd,          "-screen",
                                     "0",    "1600x1200x24", "-nolisten", "tcp"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // fork + exec rather than posix_spawn: the server must die with this process even when a
    // test aborts (PR_SET_PDEATHSIG).
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      ::close(fds[0]);
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) ::dup2(null, 2);
      ::execvp("Xvfb", argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    if (pid_ < 0) {
      ::close(fds[0]);
      return;
    }
    // Xvfb writes the display number it chose, then a newline, once it accepts clients.
    std::string number;
    pollfd p{fds[0], POLLIN, 0};
    char c;
    while (::poll(&p, 1, 20000) > 0 && ::read(fds[0], &c, 1) == 1 && c != '\n') number += c;
    ::close(fds[0]);
    if (!number.empty()) display_ = ":" + number;
  }
  ~XServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& display() const { return display_; }

 private:
  pid_t pid_ = -1;
  std::string display_;
};

}  // namespace

const std::string& TestDisplay() {
  static XServer server;
  if (server.display().empty()) FAIL("could not start Xvfb (install xvfb)");
  return server.display();
}

}  // namespace gui_test
