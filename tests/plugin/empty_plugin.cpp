// A shared library that registers no node type: loading it as a plugin is an error naming the file
// (tests/tools/test_plugin.cpp).
extern "C" int noiseflow_test_empty_plugin() { return 0; }
