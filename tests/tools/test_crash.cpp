// tests/tools/test_crash.cpp — crash consistency of `noiseflow run`: a training run killed with SIGKILL
// at random moments (some inside a checkpoint write) and resumed each time ends bitwise where the
// uninterrupted run ends; a checkpoint write that hits a full disk (RLIMIT_FSIZE) keeps the previous
// checkpoint and exits with a clear error; a loss gone NaN stops the run before the checkpoint.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;

namespace {

using noiseflow::test::TempDir;
using Clock = std::chrono::steady_clock;

const std::string kExe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";

// Starts `noiseflow ARGS` in the repository root, stdout and stderr into `log`. `fsize`: RLIMIT_FSIZE in
// bytes (0: none), with SIGXFSZ ignored so a write past it fails with EFBIG as on a full disk.
pid_t spawn(const std::vector<std::string>& args, const std::string& log, rlim_t fsize = 0) {
  REQUIRE_MESSAGE(fs::exists(kExe), "build the noiseflow target first: ", kExe);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::chdir(NOISEFLOW_SOURCE_DIR) != 0) ::_exit(127);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) ::_exit(127);
    ::dup2(fd, 1), ::dup2(fd, 2);
    if (fsize > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      rlimit r{fsize, fsize};
      ::setrlimit(RLIMIT_FSIZE, &r);
    }
    ::setenv("OMP_WAIT_POLICY", "passive", 1);
    std::vector<char*> argv{const_cast<char*>(kExe.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(kExe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid`; its exit code, or -signal when a signal ended it.
int wait_for(pid_t pid) {
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// log.csv's rows without the seconds column (wall time differs between runs).
std::vector<std::string> log_rows(const std::string& path) {
  std::vector<std::string> rows;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) f.push_back(cell);
    if (f.size() >= 4) rows.push_back(f[0] + "," + f[1] + "," + f[2] + "," + f[3]);
  }
  return rows;
}

// Every tensor of two checkpoints equal bit for bit (same names, shapes and bytes), and the same step.
void check_same_checkpoint(const std::string& a, const std::string& b) {
  const auto x = noiseflow::runtime::read_safetensors(a), y = noiseflow::runtime::read_safetensors(b);
  CHECK(x.metadata.at("step") == y.metadata.at("step"));
  REQUIRE(x.tensors.size() == y.tensors.size());
  int moments = 0, ema = 0;
  for (const auto& [name, t] : x.tensors) {
    CAPTURE(name);
    REQUIRE(y.tensors.count(name) == 1);
    const auto& u = y.tensors.at(name);
    REQUIRE(t.shape() == u.shape());
    CHECK(std::memcmp(t.data(), u.data(), size_t(t.numel()) * sizeof(float)) == 0);
    moments += name.find("adam") != std::string::npos || name.find(".m") != std::string::npos;
    ema += name.rfind("ema.", 0) == 0;
  }
  CHECK(moments > 0);  // Adam's moments are in the comparison,
  CHECK(ema > 0);      // and the EMA weights
}

std::vector<std::string> train_args(const TempDir& dir, const std::string& name, int steps, bool resume) {
  std::vector<std::string> a{"run",          "pipelines/examples/toy2d_train.json",
                             "--set",        "steps=" + std::to_string(steps),
                             "--set",        "batch=64",
                             "--set",        "checkpoint_every=5",
                             "--set",        "checkpoint=" + dir / (name + ".safetensors"),
                             "--run-folder", dir / name,
                             "--threads",    "2",
                             "-q"};
  if (resume) a.push_back("--resume");
  return a;
}

}  // namespace

TEST_CASE("training killed with SIGKILL 20 times (some inside a checkpoint write) and resumed ends bitwise equal") {
  TempDir dir;
  const int steps = 200;
  const auto t0 = Clock::now();
  REQUIRE(wait_for(spawn(train_args(dir, "straight", steps, false), dir / "straight.out")) == 0);
  const double straight_s = std::chrono::duration<double>(Clock::now() - t0).count();

  const std::string ck = dir / "killed.safetensors", tmp = ck + ".tmp", out = dir / "killed.out";
  std::mt19937 rng(20261201);
  int kills = 0, in_write = 0, runs = 0;
  while (kills < 20) {
    REQUIRE_MESSAGE(++runs < 200, "the run kept finishing before it could be killed: ", read_text(out));
    const pid_t pid = spawn(train_args(dir, "killed", steps, fs::exists(ck)), out);
    std::optional<int> reaped;  // the run's exit, when it ended while we watched for the temporary file
    if (kills % 2 == 1) {
      // Inside a checkpoint write: wait for its temporary file, then a random few hundred microseconds more.
      const auto deadline = Clock::now() + std::chrono::duration<double>(3 * straight_s + 5);
      bool seen = false;
      while (!(seen = fs::exists(tmp)) && Clock::now() < deadline) {
        int st;
        if (::waitpid(pid, &st, WNOHANG) == pid) {
          reaped = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      if (seen) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
    } else {
      // Anywhere: a random moment of what is left of the run (start-up included).
      std::uniform_real_distribution<double> at(0.0, straight_s / 3);
      std::this_thread::sleep_for(std::chrono::duration<double>(at(rng)));
    }
    const bool was_in_write = fs::exists(tmp);
    if (!reaped) ::kill(pid, SIGKILL);
    const int code = reaped ? *reaped : wait_for(pid);
    if (code == -SIGKILL) {
      ++kills;
      in_write += was_in_write;
    } else {
      REQUIRE_MESSAGE(code == 0, "the run failed: ", read_text(out));
      // It finished before the kill: start over so that every kill lands in a live run.
      fs::remove(ck), fs::remove_all(dir / "killed");
    }
  }
  // Every checkpoint left behind is whole (never a half-written file in place), then the run ends.
  if (fs::exists(ck)) CHECK_NOTHROW(noiseflow::runtime::read_safetensors(ck));
  REQUIRE(wait_for(spawn(train_args(dir, "killed", steps, fs::exists(ck)), out)) == 0);
  MESSAGE(kills, " kills, ", in_write, " of them inside a checkpoint write, ", runs + 1, " runs");
  CHECK(in_write >= 5);
  check_same_checkpoint(dir / "straight.safetensors", ck);
  // The log holds every tick once, with the uninterrupted run's values.
  const auto a = log_rows(dir / "straight/log.csv"), b = log_rows(dir / "killed/log.csv");
  CHECK(a.size() == size_t(steps + 1));
  CHECK(a.size() == b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (a[i] != b[i]) {
      CHECK_MESSAGE(a[i] == b[i], "log.csv row ", i, " differs");
      break;
    }
}

TEST_CASE("a checkpoint write that hits a full disk keeps the previous checkpoint and exits with a clear error") {
  TempDir dir;
  const std::string ck = dir / "disk.safetensors";
  REQUIRE(wait_for(spawn(train_args(dir, "disk", 20, false), dir / "first.out")) == 0);
  const std::string before = read_text(ck);
  REQUIRE(before.size() > 100000);
  // Room for the log, not for a checkpoint: the resumed run's first checkpoint write fails.
  const std::string out = dir / "full.out";
  const int code = wait_for(spawn(train_args(dir, "disk", 40, true), out, rlim_t(before.size() / 2)));
  const std::string err = read_text(out);
  INFO(err);
  CHECK(code == 1);
  CHECK(err.find("node \"ckpt\"") != std::string::npos);
  CHECK(err.find(ck + ".tmp") != std::string::npos);
  CHECK(err.find("File too large") != std::string::npos);
  CHECK(read_text(ck) == before);        // the previous checkpoint, intact
  CHECK_FALSE(fs::exists(ck + ".tmp"));  // and no temporary file left behind
  // With room again, the run resumes from it.
  CHECK(wait_for(spawn(train_args(dir, "disk", 40, true), dir / "again.out")) == 0);
  CHECK(noiseflow::runtime::read_safetensors(ck).metadata.at("step") == "40");
}

TEST_CASE("a loss gone NaN stops the run before it writes over the last good checkpoint") {
  TempDir dir;
  const std::string ck = dir / "nan.safetensors";
  // An lr of 1e30 sends the weights far enough that a loss soon overflows; a checkpoint after every tick.
  auto args = train_args(dir, "nan", 20, false);
  args.insert(args.end(), {"--set", "lr=1e30", "--set", "checkpoint_every=1"});
  const std::string out = dir / "nan.out";
  const int code = wait_for(spawn(args, out));
  const std::string err = read_text(out);
  INFO(err);
  CHECK(code == 1);
  const std::string said = "node \"opt\", input \"loss\": the loss is ";
  const size_t at = err.find(said);
  REQUIRE(at != std::string::npos);
  CHECK(err.find("the weights were left unchanged") != std::string::npos);
  const size_t k = err.find(" at step ", at);
  REQUIRE(k != std::string::npos);
  const int64_t step = std::stoll(err.substr(k + 9));
  CHECK(step > 1);
  // The checkpoint is the last good tick's (written before the failing one), its weights finite.
  const auto last = noiseflow::runtime::read_safetensors(ck);
  CHECK(last.metadata.at("step") == std::to_string(step - 1));
  for (const auto& [name, t] : last.tensors) {
    CAPTURE(name);
    CHECK(std::all_of(t.data(), t.data() + t.numel(), [](float v) { return std::isfinite(v); }));
  }
}

TEST_CASE("a new run keeps the previous run's log.csv and pipeline.json, --resume continues the current one") {
  TempDir dir;
  const std::string run = dir / "again";
  auto lines = [](const std::string& path) { return log_rows(path).size(); };
  REQUIRE(wait_for(spawn(train_args(dir, "again", 10, false), dir / "1.out")) == 0);
  REQUIRE(wait_for(spawn(train_args(dir, "again", 12, false), dir / "2.out")) == 0);
  CHECK(read_text(dir / "2.out").find("the previous run's log is kept as " + run + "/log.1.csv") != std::string::npos);
  CHECK(lines(run + "/log.1.csv") == 11);  // header and 10 rows
  CHECK(fs::exists(run + "/pipeline.1.json"));
  CHECK(lines(run + "/log.csv") == 13);
  REQUIRE(wait_for(spawn(train_args(dir, "again", 8, false), dir / "3.out")) == 0);
  CHECK(lines(run + "/log.1.csv") == 11);
  CHECK(lines(run + "/log.2.csv") == 13);
  CHECK(lines(run + "/log.csv") == 9);
  // A resume continues log.csv in place; rows of a log from before its last column (ticks, the run's tick
  // count) are kept and given it.
  {
    std::istringstream in(read_text(run + "/log.csv"));
    std::string old, line;
    while (std::getline(in, line)) old += line.substr(0, line.rfind(',')) + "\n";
    std::ofstream(run + "/log.csv", std::ios::binary) << old;
  }
  REQUIRE(wait_for(spawn(train_args(dir, "again", 16, true), dir / "4.out")) == 0);
  CHECK_FALSE(fs::exists(run + "/log.3.csv"));
  CHECK(lines(run + "/log.csv") == 17);
  std::istringstream in(read_text(run + "/log.csv"));
  std::string line;
  std::getline(in, line);
  CHECK(line == "tick,loss,lr,grad_norm,seconds,fd,ticks");
  while (std::getline(in, line)) CHECK(line.substr(line.rfind(',') + 1) == "16");
}
