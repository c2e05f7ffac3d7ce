// The `zonemesh` command line: parses arguments and runs one command.
#ifndef ZONEMESH_REPLICATOR_CLI_H_
#define ZONEMESH_REPLICATOR_CLI_H_

#include <string>
#include <vector>

namespace zonemesh {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed
inline constexpr int kExitUsage = 2;    // bad arguments or configuration

// Runs `zonemesh args...` (args excludes the program name).
int RunCli(const std::vector<std::string>& args);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_CLI_H_
