// cli/cmd_report.cc: `emosweep report PROTOCOL --ledger DB --out FILE.html`.
#include <iostream>

#include "cli/commands.h"
#include "cli/protocol_args.h"
#include "core/files.h"
#include "orchestrator/report.h"

namespace emosweep::cli {

void ReportOptions(po::options_description& o) {
  AddProtocolArgs(o);
  o.add_options()("out", po::value<std::string>()->required(), "HTML file to write (atomically)");
}

Status ReportRun(const po::variables_map& vm) {
  ES_ASSIGN_OR_RETURN(protocols::Protocol p, LoadProtocolFromArgs(vm));
  ES_RETURN_IF_ERROR(RequireInputs(p, "build a report (the jobs are expanded from the stores)"));
  ES_RETURN_IF_ERROR(RefuseOutputOverInputs(p, "out", vm["out"].as<std::string>()));
  std::string ledger_path = vm["ledger"].as<std::string>();
  ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(ledger_path, {/*read_only=*/true}));
  orchestrator::ReportOptions options;
  options.ledger_label = ledger_path;
  ES_ASSIGN_OR_RETURN(std::string html, orchestrator::BuildReport(p, ledger.get(), options));
  std::string out = vm["out"].as<std::string>();
  ES_RETURN_IF_ERROR(WriteFileAtomic(out, html));
  std::cerr << "wrote " << out << " (" << html.size() / 1024 << " KiB)\n";
  return Status::Ok();
}

}  // namespace emosweep::cli
