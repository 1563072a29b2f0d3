// Compiled by the test codegen_deprecated_reaches_users with
// -Werror=deprecated-declarations, which expects a diagnostic on every line
// tagged `deprecated:` (compilers quote the line) and none on the line tagged
// `current:`. Not part of any target.
#include "deprecated.micro.h"

namespace {

void UseEverything(old::Current::Stub& stub, micro::Server& server) {
  micro::ClientContext context;
  old::Req request;
  old::Req response;
  (void)stub.Call(&context, request, &response);                         // current: not deprecated
  (void)stub.OldCall(&context, request, &response);                      // deprecated:blocking
  stub.AsyncOldCall(&context, request, &response, [](absl::Status) {});  // deprecated:callback
  (void)stub.AsyncOldCall(&context, request);                            // deprecated:future
  (void)old::Current::Methods::kOldCall;                                 // deprecated:info
  (void)old::Legacy::kServiceName;                                       // deprecated:class
  (void)&old::RegisterLegacyHandler;                                     // deprecated:register
  (void)server;
}

void CallHandler(old::Current::Handler& handler, micro::ServerContext* context) {
  old::Req request;
  old::Req response;
  (void)handler.OldCall(context, &request, &response);  // deprecated:handler
}

}  // namespace

int main() {
  (void)&UseEverything;
  (void)&CallHandler;
}
