#include <string>
#include <vector>

#include "replicator/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return zonemesh::RunCli(args);
}
