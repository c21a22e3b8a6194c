#include "runtime/atomic_write.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace noiseflow::runtime {

namespace fs = std::filesystem;

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts,
                           const std::function<void(const std::string&)>& fail) {
  const auto raise = [&](const std::string& msg) {
    fail(msg);
    throw std::logic_error("write_file_atomically: fail() returned");  // it must throw
  };
  const auto q = [](const std::string& s) { return "\"" + s + "\""; };
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) raise("cannot create folder " + q(parent.string()) + ": " + ec.message());
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) raise("cannot write " + q(tmp) + ": " + std::strerror(errno));
  try {
    for (std::string_view part : parts) {
      const char* p = part.data();
      size_t n = part.size();
      while (n) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
          if (errno == EINTR) continue;
          raise("cannot write " + q(tmp) + ": " + std::strerror(errno));
        }
        p += w;
        n -= size_t(w);
      }
    }
    if (::fsync(fd) != 0) raise(std::string("fsync failed: ") + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  fs::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    raise("cannot rename " + q(tmp) + " into place: " + ec.message());
  }
  // Make the rename itself durable.
  const int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace noiseflow::runtime
