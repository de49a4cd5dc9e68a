#include "core/checkpoint.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>

#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/finite_check.h"
#include "core/input_file.h"
#include "core/json_value.h"
#include "core/safetensors_file.h"
#include "core/torch_checkpoint.h"

namespace moe {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSafetensors = "model.safetensors";
constexpr const char* kSafetensorsIndex = "model.safetensors.index.json";
constexpr const char* kTorch = "pytorch_model.bin";
constexpr const char* kTorchIndex = "pytorch_model.bin.index.json";

// The index file: a regular file, strict JSON (json_value.h: no trailing content, duplicate keys
// refused, errors echo a clipped piece of the input).
nlohmann::json ReadJson(const std::string& path) {
  return ParseJson(ReadInputFile(path, "checkpoint index"), path);
}

// A shard named by an index must sit inside the checkpoint folder.
bool IsPlainRelative(const std::string& file) {
  const fs::path p(file);
  if (file.empty() || p.is_absolute()) return false;
  for (const fs::path& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Checkpoint::Checkpoint(const fs::path& dir) : dir_(dir) {
  if (!fs::is_directory(dir_)) Fail(dir_.string(), "no such folder");
  if (fs::exists(dir_ / kSafetensors)) {
    OpenSingle(kSafetensors, false);
  } else if (fs::exists(dir_ / kSafetensorsIndex)) {
    OpenIndex(kSafetensorsIndex, false);
  } else if (fs::exists(dir_ / kTorch)) {
    OpenSingle(kTorch, true);
  } else if (fs::exists(dir_ / kTorchIndex)) {
    OpenIndex(kTorchIndex, true);
  } else {
    Fail(dir_.string(), std::string("no checkpoint found (looked for ") + kSafetensors + ", " +
                            kSafetensorsIndex + ", " + kTorch + ", " + kTorchIndex + ")");
  }
}

struct Checkpoint::BackgroundCopy {
  std::thread thread;
  std::atomic<bool> stop{false};
  std::string error;  // written by the thread, read after joining it
};

Checkpoint::~Checkpoint() {
  if (copy_ && copy_->thread.joinable()) {
    copy_->stop.store(true);
    copy_->thread.join();
  }
}
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;

void Checkpoint::OpenSingle(const std::string& file, bool is_torch) {
  source_ = (dir_ / file).string();
  files_.push_back(file);
  std::vector<std::string> names;
  if (is_torch) {
    torch_files_.push_back(std::make_unique<TorchCheckpointFile>(source_));
    names = torch_files_.back()->Names();
  } else {
    safetensors_.push_back(std::make_unique<SafetensorsFile>(source_));
    names = safetensors_.back()->Names();
  }
  for (const std::string& name : names) index_[name] = {0, is_torch};
}

void Checkpoint::OpenIndex(const std::string& index_file, bool is_torch) {
  source_ = (dir_ / index_file).string();
  files_.push_back(index_file);
  const nlohmann::json index = ReadJson(source_);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    Fail(source_, "has no \"weight_map\" object");
  }

  // Each shard is opened once, in name order, so file indices do not depend on JSON order.
  std::map<std::string, int> shards;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string() || !IsPlainRelative(file.get<std::string>())) {
      Fail(source_, "weight_map entry " + Quoted(Clipped(name)) + " is " + Clipped(file.dump()) +
                        ", expected a file name inside the checkpoint folder");
    }
    shards.emplace(file.get<std::string>(), 0);
  }
  for (auto& [file, slot] : shards) {
    const std::string path = (dir_ / file).string();
    if (is_torch) {
      slot = static_cast<int>(torch_files_.size());
      torch_files_.push_back(std::make_unique<TorchCheckpointFile>(path));
    } else {
      slot = static_cast<int>(safetensors_.size());
      safetensors_.push_back(std::make_unique<SafetensorsFile>(path));
    }
    files_.push_back(file);
  }

  for (const auto& [name, file] : index["weight_map"].items()) {
    const Location at{shards.at(file.get<std::string>()), is_torch};
    const bool found =
        is_torch ? torch_files_[at.file]->Contains(name) : safetensors_[at.file]->Contains(name);
    if (!found) {
      Fail(source_, "weight_map puts tensor " + Quoted(name) + " in " + FilePath(at) +
                        ", which has no such tensor");
    }
    index_[name] = at;
  }
}

TensorView Checkpoint::View(const Location& at, const std::string& name) const {
  return at.is_torch ? torch_files_[at.file]->Tensor(name) : safetensors_[at.file]->Tensor(name);
}

std::string Checkpoint::FilePath(const Location& at) const {
  return at.is_torch ? torch_files_[at.file]->path() : safetensors_[at.file]->path();
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, at] : index_) names.push_back(name);
  return names;
}

bool Checkpoint::Contains(const std::string& name) const {
  return index_.count(name) != 0;
}

std::string Checkpoint::FileOf(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? "" : FilePath(it->second);
}

std::optional<TensorView> Checkpoint::Find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return View(it->second, name);
}

TensorView Checkpoint::Require(const std::string& name, const Shape& shape) const {
  auto it = index_.find(name);
  if (it == index_.end()) Fail(source_, "missing tensor " + Quoted(name));
  const TensorView view = View(it->second, name);
  const std::string where = TensorWhere(it->second, name);
  if (view.dtype != DType::kF32 && view.dtype != DType::kF16 && view.dtype != DType::kBF16) {
    FailAbout(where,
              std::string("has dtype ") + DTypeName(view.dtype) + ", expected F32, F16 or BF16");
  }
  if (view.shape != shape) {
    FailAbout(where, "has shape " + ShapeString(view.shape) + ", expected " + ShapeString(shape));
  }
  return view;
}

void Checkpoint::RequireFinite(const std::vector<std::string>& names) const {
  std::vector<std::pair<std::string, TensorView>> tensors;
  tensors.reserve(names.size());
  for (const std::string& name : names) {
    auto it = index_.find(name);
    if (it == index_.end()) Fail(source_, "missing tensor " + Quoted(name));
    tensors.emplace_back(TensorWhere(it->second, name), View(it->second, name));
  }
  RequireAllFinite(tensors);
}

std::string Checkpoint::TensorWhere(const Location& at, const std::string& name) const {
  return FilePath(at) + ": tensor " + Quoted(name);
}

std::vector<std::string> Checkpoint::Files() const {
  return files_;
}

std::vector<MappedFile*> Checkpoint::MappedFiles() const {
  std::vector<MappedFile*> files;
  for (const auto& f : safetensors_) files.push_back(&f->file());
  for (const auto& f : torch_files_) files.push_back(&f->file());
  return files;
}

void Checkpoint::CopyIntoHugePages() {
  WaitForCopy();
  for (MappedFile* f : MappedFiles()) f->CopyIntoHugePages();
}

void Checkpoint::StartCopyIntoHugePages() {
  if (copy_) return;
  copy_ = std::make_unique<BackgroundCopy>();
  copy_->thread = std::thread([files = MappedFiles(), copy = copy_.get()] {
    // Only on time no other thread wants: the model's threads compute at full speed meanwhile,
    // and the copy fills the gaps where they wait for each other or for memory.
    const sched_param idle{.sched_priority = 0};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
    for (MappedFile* f : files)
      if (copy->error.empty() && !copy->stop.load()) copy->error = f->CopyIntoHugePages(copy->stop);
  });
}

std::string Checkpoint::WaitForCopy() {
  if (!copy_) return {};
  if (copy_->thread.joinable()) copy_->thread.join();
  return copy_->error;
}

size_t Checkpoint::copied_bytes() const {
  size_t n = 0;
  for (const MappedFile* f : MappedFiles()) n += f->copied_bytes();
  return n;
}

size_t Checkpoint::total_bytes() const {
  size_t n = 0;
  for (const MappedFile* f : MappedFiles()) n += f->size();
  return n;
}

}  // namespace moe
