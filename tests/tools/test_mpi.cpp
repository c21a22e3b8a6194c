// tests/tools/test_mpi.cpp — data-parallel training and sampling: `mpirun -np N noiseflow run ...` against one
// process.
//
//   mpirun -np 2 ──> rank 0: samples [0, B/2) ─┐ ring allreduce ┌─> same Adam step ──> checkpoint (rank 0)
//                    rank 1: samples [B/2, B) ─┘ (fixed order)   └─> same Adam step
//
// Every run here is on this machine: 2 and 4 ranks (oversubscribed), over shared memory (btl vader) and
// TCP on the loopback interface. Skipped, with a message, when the build has no MPI or mpirun is absent.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint.hpp"
#include "runtime/distributed.hpp"
#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

namespace fs = std::filesystem;

namespace {

using noiseflow::test::Result;


using noiseflow::test::TempDir;
using Clock = std::chrono::steady_clock;

#ifdef NOISEFLOW_MPIEXEC
constexpr const char* kMpirun = NOISEFLOW_MPIEXEC;
#else
constexpr const char* kMpirun = "";
#endif

// Why MPI tests cannot run here, or empty.
std::string mpi_missing() {
  if (!noiseflow::runtime::mpi_built()) return "this build has no MPI (install libopenmpi-dev: tools/setup.sh)";
  if (!*kMpirun || !fs::exists(kMpirun)) return "mpirun not found (install openmpi-bin: tools/setup.sh)";
  return {};
}

#define SKIP_WITHOUT_MPI()                                                \
  do {                                                                    \
    if (const std::string why = mpi_missing(); !why.empty()) {            \
      MESSAGE("skipped: ", why);                                          \
      return;                                                             \
    }                                                                     \
  } while (0)

const std::string kExe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";

// Transport of the ranks' messages: shared memory or TCP on the loopback interface.
enum class Btl { shm, tcp };

// The mpirun command line for N ranks, everything on this machine: as root Open MPI needs its
// allow-run-as-root variables; --oversubscribe lets 4 ranks share 2 cores; ob1 makes the btl choice hold
// (a UCX pml would ignore it); the out-of-band channel stays on the loopback interface too.
std::string mpirun(int np, Btl btl) {
  std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 ";
#ifdef NOISEFLOW_SANITIZED
  // Open MPI keeps what MPI_Init allocates until the process ends: LeakSanitizer would report it in every
  // rank. The other ASan/UBSan checks stay on.
  cmd += "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" ";
#endif
  cmd += std::string("'") + kMpirun + "' -np " + std::to_string(np) +
         " --bind-to none --mca pml ob1 --mca oob_tcp_if_include lo --mca btl " +
         (btl == Btl::shm ? "self,vader" : "self,tcp --mca btl_tcp_if_include lo") + " ";
  return cmd;
}

// `noiseflow run PIPELINE ARGS` as one process (np 0) or on np ranks; `threads` OpenMP threads per process.
Result train(int np, const std::string& args, Btl btl = Btl::shm, int threads_per_process = 0) {
  REQUIRE_MESSAGE(fs::exists(kExe), "build the noiseflow target first: ", kExe);
  // 2 cores: one OpenMP thread per rank when there are several, both for the one process.
  const std::string threads = threads_per_process > 0 ? " --threads " + std::to_string(threads_per_process)
                              : np == 0               ? " --threads 2"
                                                      : " --threads 1";
  const std::string line = (np == 0 ? std::string() : mpirun(np, btl)) + "'" + kExe + "' run " + args + threads;
  Result r = noiseflow::test::run_shell(line);
  MESSAGE((np == 0 ? std::string("1 process") : std::to_string(np) + " ranks"), ": ", r.seconds, " s");
  return r;
}

// The toy pipeline (an MLP on a 2-D mixture, batch 256) for `steps` ticks, its checkpoint and run folder in `dir`.
std::string toy(const TempDir& dir, const std::string& name, int steps, const std::string& extra = "") {
  return "pipelines/examples/toy2d_train.json -q --set steps=" + std::to_string(steps) +
         " --set checkpoint=" + dir / (name + ".safetensors") + " --run-folder " + dir / name + " " + extra;
}

// Largest per-tensor relative difference max|a - b| / max|a| over the checkpoint tensors whose names start
// with `prefix` (the trained weights: "net."); `bitwise` tells whether every byte of every tensor is equal.
struct Diff {
  double relative = 0;
  int tensors = 0;
  bool bitwise = true;
};
Diff compare(const std::string& a_path, const std::string& b_path, const std::string& prefix = "net.") {
  const auto a = noiseflow::runtime::read_safetensors(a_path);
  const auto b = noiseflow::runtime::read_safetensors(b_path);
  REQUIRE(a.tensors.size() == b.tensors.size());
  Diff d;
  for (const auto& [name, t] : a.tensors) {
    REQUIRE_MESSAGE(b.tensors.count(name) == 1, name);
    const auto& u = b.tensors.at(name);
    REQUIRE(t.numel() == u.numel());
    d.bitwise = d.bitwise && std::memcmp(t.data(), u.data(), size_t(t.numel()) * sizeof(float)) == 0;
    if (name.rfind(prefix, 0) != 0) continue;
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      diff = std::max(diff, double(std::fabs(t.data()[i] - u.data()[i])));
      scale = std::max(scale, double(std::fabs(t.data()[i])));
    }
    d.relative = std::max(d.relative, diff / std::max(scale, 1e-30));
    ++d.tensors;
  }
  return d;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// log.csv without its seconds column: tick, loss, lr, grad_norm (and fd) of every row.
std::string log_values(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line, out;
  while (std::getline(in, line)) {
    size_t k = 0;
    for (int c = 0; c < 4 && k != std::string::npos; ++c) k = line.find(',', k + (c > 0));
    const size_t end = k == std::string::npos ? k : line.find(',', k + 1);
    out += (k == std::string::npos || end == std::string::npos ? line : line.substr(0, k) + line.substr(end)) + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("mpirun -np 2 trains the toy model one process trains (weights within 1e-5 relative after 20 steps)") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const Result one = train(0, toy(dir, "one", 20));
  REQUIRE_MESSAGE(one.status == 0, one.err);
  const Result two = train(2, toy(dir, "two", 20));
  REQUIRE_MESSAGE(two.status == 0, two.err);
  const Diff d = compare(dir / "one.safetensors", dir / "two.safetensors");
  MESSAGE("largest relative difference of the weights: ", d.relative, " over ", d.tensors, " tensors");
  CHECK(d.tensors > 0);
  CHECK(d.relative <= 1e-5);
  // Rank 0 alone wrote the run folder; its log has the 20 rows of the global loss.
  const std::string log = read_text(dir / "two/log.csv");
  CHECK(std::count(log.begin(), log.end(), '\n') == 21);
}

TEST_CASE("mpirun -np 2 noiseflow run pipelines/train.json --set steps=20 follows one process (unet-small, MNIST)") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const auto args = [&](const std::string& name) {
    return "pipelines/train.json --set steps=20 --set checkpoint=" + dir / (name + ".safetensors") +
           " --run-folder " + dir / name + " --log-every 10";
  };
  const Result one = train(0, args("one"));
  REQUIRE_MESSAGE(one.status == 0, one.err);
  const Result two = train(2, args("two"));
  REQUIRE_MESSAGE(two.status == 0, two.err);
  INFO("stderr of the 2 ranks: ", two.err);
  // The progress line names the ranks; rank 0 reports the allreduce.
  CHECK(two.err.find("tick 20/20  2 ranks") != std::string::npos);
  CHECK(two.err.find("noiseflow: 2 ranks (MPI, 2 ranks), global batch split 2 ways: gradient allreduce of 6.2 MB") !=
        std::string::npos);
  const Diff d = compare(dir / "one.safetensors", dir / "two.safetensors");
  MESSAGE("unet-small, batch 64, 20 steps: largest relative difference of the weights ", d.relative, " over ",
          d.tensors, " tensors");
  CHECK(d.tensors > 100);
  CHECK(d.relative <= 1e-5);
}

TEST_CASE("4 ranks on 2 cores (oversubscribed) follow one process, shared memory and TCP give the same bits") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const Result one = train(0, toy(dir, "one", 20));
  REQUIRE_MESSAGE(one.status == 0, one.err);
  const Result shm = train(4, toy(dir, "shm", 20), Btl::shm);
  REQUIRE_MESSAGE(shm.status == 0, shm.err);
  const Result tcp = train(4, toy(dir, "tcp", 20), Btl::tcp);
  REQUIRE_MESSAGE(tcp.status == 0, tcp.err);
  const Diff d = compare(dir / "one.safetensors", dir / "shm.safetensors");
  MESSAGE("4 ranks against 1 process: largest relative difference ", d.relative);
  CHECK(d.relative <= 1e-5);
  // The reduction order is the ring's, not the transport's: the same bits over both.
  CHECK(compare(dir / "shm.safetensors", dir / "tcp.safetensors").bitwise);
}

TEST_CASE("two runs on 2 ranks are bitwise identical (fixed reduction order), over TCP on the loopback interface") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const Result a = train(2, toy(dir, "a", 20), Btl::tcp);
  REQUIRE_MESSAGE(a.status == 0, a.err);
  const Result b = train(2, toy(dir, "b", 20), Btl::tcp);
  REQUIRE_MESSAGE(b.status == 0, b.err);
  const Diff d = compare(dir / "a.safetensors", dir / "b.safetensors");
  CHECK(d.bitwise);  // weights, Adam moments and EMA, every byte
  CHECK(log_values(dir / "a/log.csv") == log_values(dir / "b/log.csv"));  // loss, lr, grad_norm of every tick
}

TEST_CASE("a run checkpointed on 2 ranks resumes on 4 ranks and on 1 process") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const Result straight = train(0, toy(dir, "straight", 20));
  REQUIRE_MESSAGE(straight.status == 0, straight.err);
  // 10 of the 20 ticks on 2 ranks (the schedule still spans 20: --ticks leaves `steps` alone).
  for (const std::string name : {"four", "one"}) {
    const Result first = train(2, toy(dir, name, 20, "--ticks 10"));
    REQUIRE_MESSAGE(first.status == 0, first.err);
    const Result rest = name == "four" ? train(4, toy(dir, name, 20, "--resume")) : train(0, toy(dir, name, 20, "--resume"));
    REQUIRE_MESSAGE(rest.status == 0, rest.err);
    const Diff d = compare(dir / "straight.safetensors", dir / (name + ".safetensors"));
    MESSAGE("2 ranks then ", name, ": largest relative difference ", d.relative);
    CHECK(d.relative <= 1e-5);
  }
}

TEST_CASE("a global batch that does not divide by the rank count is an error that says so") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const Result r = train(2, toy(dir, "odd", 20, "--set batch=255"));
  CHECK(r.status != 0);
  CHECK(r.err.find("pipelines/examples/toy2d_train.json: node \"data\", attr \"batch\": the global batch 255 does not "
                   "divide by the 2 ranks of this run (each rank takes batch / ranks samples); give a batch that "
                   "is a multiple of 2 or run another number of ranks\n") != std::string::npos);
  CHECK(!fs::exists(dir / "odd.safetensors"));
}

TEST_CASE("one rank killed mid-run: the others end within seconds with a clear error, --resume then works") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  const std::string ck = dir / "kill.safetensors", out = dir / "mpirun.err";
  // A long run checkpointing often, in the background; its ranks' pids come from /proc (OMPI_COMM_WORLD_RANK).
  const std::string line = "cd '" NOISEFLOW_SOURCE_DIR "' && OMP_WAIT_POLICY=passive exec env " + mpirun(2, Btl::shm) +
                           "'" + kExe + "' run " + toy(dir, "kill", 100000, "--set checkpoint_every=20") +
                           " --threads 1 2>'" + out + "' >/dev/null";
  const pid_t launcher = ::fork();
  REQUIRE(launcher >= 0);
  if (launcher == 0) {
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto rank_pid = [&](int rank) -> pid_t {
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream env(e.path() / "environ", std::ios::binary);
      std::string all((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
      const std::string want = std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0';
      const std::string cmdline = read_text((e.path() / "cmdline").string());
      if (all.find(want) != std::string::npos &&
          cmdline.find(ck) != std::string::npos)
        return pid_t(std::stol(name));
    }
    return -1;
  };
  // Wait for the first checkpoint (the run is under way on both ranks).
  const auto t0 = Clock::now();
  while (!fs::exists(ck) && std::chrono::duration<double>(Clock::now() - t0).count() < 60)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE_MESSAGE(fs::exists(ck), read_text(out));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const pid_t victim = rank_pid(1);
  REQUIRE(victim > 0);
  const auto killed_at = Clock::now();
  REQUIRE(::kill(victim, SIGKILL) == 0);
  // mpirun and rank 0 must be gone within seconds (no hang), with a non-zero status.
  int st = 0;
  pid_t done = 0;
  while ((done = ::waitpid(launcher, &st, WNOHANG)) == 0 &&
         std::chrono::duration<double>(Clock::now() - killed_at).count() < 30)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double took = std::chrono::duration<double>(Clock::now() - killed_at).count();
  if (done == 0) {
    ::kill(launcher, SIGKILL);
    ::waitpid(launcher, &st, 0);
  }
  const std::string err = read_text(out);
  INFO("mpirun's stderr: ", err);
  MESSAGE("the run ended ", took, " s after rank 1 was killed");
  REQUIRE(done == launcher);
  CHECK(took < 10);
  CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
  CHECK(err.find("rank 1") != std::string::npos);
  CHECK(err.find("signal 9") != std::string::npos);
  CHECK(rank_pid(0) < 0);  // rank 0 is gone too
  // Resume from the last checkpoint, 10 ticks more, on 2 ranks.
  const auto step = std::stoll(noiseflow::runtime::read_safetensors(ck).metadata.at("step"));
  const Result resumed = train(2, toy(dir, "kill", 100000, "--set checkpoint_every=20 --resume --ticks " +
                                                               std::to_string(step + 10)));
  INFO("resumed: ", resumed.err);
  CHECK(resumed.status == 0);
  CHECK(std::stoll(noiseflow::runtime::read_safetensors(ck).metadata.at("step")) == step + 10);
}

TEST_CASE("mpirun -np 2 noiseflow run pipelines/sample.json writes the samples one process writes, bitwise") {
  SKIP_WITHOUT_MPI();
  TempDir dir;
  // A 2-tick unet-small checkpoint: the samples are noise-like, but every op of a real sampling run is there.
  const std::string ckpt = dir / "ckpt.safetensors";
  const Result made = train(0, "pipelines/train.json --ticks 2 -q --set batch=2 --set checkpoint=" + ckpt +
                                   " --run-folder " + dir / "train");
  REQUIRE_MESSAGE(made.status == 0, made.err);
  // Stochastic samplers: DDPM's and DPM-Solver++(2M) SDE's per-step noise is drawn per sample, as is the
  // initial noise: rank 1 draws samples 4..7 of the 8 as one process draws them.
  for (const std::string sampler : {"ddpm", "dpmpp_2m_sde"}) {
    CAPTURE(sampler);
    const auto args = [&](const std::string& name) {
      const std::string out = dir / (name + "_" + sampler);
      return "pipelines/sample.json --set n=8 --set steps=4 --set sampler=" + sampler + " --set checkpoint=" + ckpt +
             " --set samples=" + out + ".png --set trajectory=" + out + "_traj.png --set samples_file=" + out +
             ".safetensors --run-folder " + out;
    };
    // One OpenMP thread per process on both sides: a unet's bits depend on its OpenMP thread count (in any
    // run), not on how the batch is split.
    const Result one = train(0, args("one"), Btl::shm, 1);
    REQUIRE_MESSAGE(one.status == 0, one.err);
    const Result two = train(2, args("two"));
    REQUIRE_MESSAGE(two.status == 0, two.err);
    INFO("stderr of the 2 ranks: ", two.err);
    CHECK(two.err.find("noiseflow: 2 ranks (MPI, 2 ranks), batch split 2 ways, each rank's samples gathered on rank 0") !=
          std::string::npos);
    const auto samples = noiseflow::runtime::read_safetensors(dir / ("two_" + sampler + ".safetensors"));
    CHECK(samples.tensors.at("samples").shape() == noiseflow::runtime::Shape{8, 1, 28, 28});
    const Diff d = compare(dir / ("one_" + sampler + ".safetensors"), dir / ("two_" + sampler + ".safetensors"), "");
    MESSAGE(sampler, ": largest relative difference of the samples ", d.relative);
    CHECK(d.bitwise);
    // The grid and the trajectory (its first 8 rows: both ranks' samples) too.
    CHECK(read_text(dir / ("one_" + sampler + ".png")) == read_text(dir / ("two_" + sampler + ".png")));
    CHECK(read_text(dir / ("one_" + sampler + "_traj.png")) == read_text(dir / ("two_" + sampler + "_traj.png")));
  }
  // n = 9 does not split 2 ways: the loader names the node and its attribute.
  const Result odd = train(2, "pipelines/sample.json --set n=9 --set steps=4 --set checkpoint=" + ckpt +
                                  " --set samples_file=" + dir / "odd.safetensors");
  CHECK(odd.status != 0);
  CHECK(odd.err.find("pipelines/sample.json: node \"noise\", attr \"batch\": the global batch 9 does not divide by the 2 "
                     "ranks of this run") != std::string::npos);
  CHECK(!fs::exists(dir / "odd.safetensors"));
}
