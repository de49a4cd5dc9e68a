// moescope_bench_thread_meetings: what the worker threads' meetings cost, the figure behind the
// one-region decode step (core/decode_step.h). Two threads do uneven work (`--work-us` on one,
// 80 % of it on the other, as two threads' shares of a product never end together) and meet:
//   fork/join: a parallel region per piece of work, as the general pass opens one per product;
//   barrier:   one region around all pieces, a barrier after each, as the one-region step does
//              (once with the first thread late, once with the second).
// Prints one JSON line: microseconds per meeting beyond the work itself, and OMP_WAIT_POLICY
// (libgomp reads it at start: run it once with PASSIVE and once with ACTIVE to compare).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double MicrosecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Spins for `us` microseconds (work that neither sleeps nor touches memory).
void Work(double us) {
  const auto start = Clock::now();
  while (MicrosecondsSince(start) < us) {
  }
}

// The work of thread `id` in one piece: the full amount on the late thread, 80 % on the other.
double Share(int id, int late, double us) {
  return id == late ? us : 0.8 * us;
}

double ForkJoinMicroseconds(int meetings, double us) {
  const auto start = Clock::now();
  for (int i = 0; i < meetings; ++i) {
#pragma omp parallel num_threads(2)
    Work(Share(omp_get_thread_num(), 0, us));
  }
  return MicrosecondsSince(start) / meetings - us;
}

double BarrierMicroseconds(int meetings, double us, int late) {
  const auto start = Clock::now();
#pragma omp parallel num_threads(2)
  for (int i = 0; i < meetings; ++i) {
    Work(Share(omp_get_thread_num(), late, us));
#pragma omp barrier
  }
  return MicrosecondsSince(start) / meetings - us;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cost of a fork/join against a barrier between two threads (one JSON line)"};
  int meetings = 5000;
  double work_us = 100;
  app.add_option("--meetings", meetings, "meetings timed in each way")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--work-us", work_us, "work between two meetings, microseconds")
      ->check(CLI::Range(0.0, 1e5));
  CLI11_PARSE(app, argc, argv);
  ForkJoinMicroseconds(100, work_us);  // starts the thread pool
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  nlohmann::ordered_json out;
  out["omp_wait_policy"] = policy ? policy : "unset";
  out["meetings"] = meetings;
  out["work_us"] = work_us;
  out["fork_join_us"] = ForkJoinMicroseconds(meetings, work_us);
  out["barrier_first_late_us"] = BarrierMicroseconds(meetings, work_us, 0);
  out["barrier_second_late_us"] = BarrierMicroseconds(meetings, work_us, 1);
  std::cout << out.dump() << std::endl;
  return 0;
}
