// tests/fuzz/stb_image_impl.cpp — the fuzz build's own copy of stb_image and stb_image_resize, compiled
// from the same Debian headers that libstb is built from, so the PNG decoder data.images calls is
// instrumented (coverage, ASan, UBSan) like the rest. The executable's definitions take precedence over
// libstb's. Only the fuzzers link it; the normal build uses libstb.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>
