// cli/commands.h: declarations of every subcommand's two entry points.
// Implementations live in cli/cmd_<area>.cc; the table is cli/command_table.cc.
#pragma once

#include "cli/command_table.h"

namespace emosweep::cli {

#define ES_DECLARE_COMMAND(fn)                          \
  void fn##Options(po::options_description& options);  \
  Status fn##Run(const po::variables_map& vm);

ES_DECLARE_COMMAND(Version)
ES_DECLARE_COMMAND(DataImport)
ES_DECLARE_COMMAND(DataSynth)
ES_DECLARE_COMMAND(DataInspect)
ES_DECLARE_COMMAND(DataSplit)
ES_DECLARE_COMMAND(Plan)
ES_DECLARE_COMMAND(Submit)
ES_DECLARE_COMMAND(Train)
ES_DECLARE_COMMAND(Run)
ES_DECLARE_COMMAND(LedgerStatus)
ES_DECLARE_COMMAND(LedgerQuery)
ES_DECLARE_COMMAND(LedgerExport)
ES_DECLARE_COMMAND(LedgerGc)
ES_DECLARE_COMMAND(LedgerVacuum)
ES_DECLARE_COMMAND(Table)
ES_DECLARE_COMMAND(Report)
ES_DECLARE_COMMAND(Worker)
ES_DECLARE_COMMAND(List)
// Not a table row: `data import` adds these options and runs it when --adapter is given.
ES_DECLARE_COMMAND(DataImportAdapter)

#undef ES_DECLARE_COMMAND

}  // namespace emosweep::cli
