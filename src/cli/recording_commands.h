// Session recordings from the CLI, read from the store named by the config
// and checked against their audit records before anything is shown:
//
//   kubegate recording export ID [-o FILE] --config C   # the .cast file (asciinema play FILE)
//   kubegate replay ID [--speed 2] [--max-idle 1] --config C
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

namespace kubegate {

struct RecordingCli;
std::shared_ptr<RecordingCli> AddRecordingCommands(CLI::App& app);
// -1 when no recording command was given.
int RunRecordingCommand(RecordingCli& cli);

}  // namespace kubegate
