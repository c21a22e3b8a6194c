// tools/studio/studio.hpp — `noiseflow serve`: the studio page (web/) and its HTTP + WebSocket API
// (docs/API.md) from one port, with Boost.Beast. One pipeline runs at a time on a worker thread; the
// others wait in a queue. Every path the API reads or writes stays inside the project folder.
#pragma once

#include <string>

namespace noiseflow::studio {

struct ServeOptions {
  std::string host = "127.0.0.1";  ///< loopback unless told otherwise
  int port = 8188;                 ///< 0: any free port
  std::string root = ".";          ///< the project folder: pipelines/, runs/, data/ relative to it
  std::string web;                 ///< the page's files; empty: ROOT/web, else the source tree's web/
  int threads = 0;                 ///< compute threads of runs; 0: all cores
};

/// Serves until SIGINT or SIGTERM (a running run is stopped after its tick). The first line on stdout is
/// `noiseflow studio: http://HOST:PORT/`. Returns the exit status; throws std::runtime_error when it
/// cannot start (the port is taken, the root is no folder).
int serve(const ServeOptions& options);

}  // namespace noiseflow::studio
