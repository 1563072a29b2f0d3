// The consumer project's program: prints the generated metadata, then serves
// Calculator and calls it through the NATS server at argv[1].
#include <iostream>
#include <memory>

#include "calculator/v1/calculator.micro.h"
#include "micro/micro.h"

namespace {

using calculator::v1::AddReply;
using calculator::v1::AddRequest;
using calculator::v1::Calculator;

class CalculatorHandler final : public Calculator::Handler {
 public:
  absl::Status Add(micro::ServerContext*, const AddRequest* request, AddReply* reply) override {
    reply->set_sum(request->a() + request->b());
    return absl::OkStatus();
  }
};

int Fail(const char* what, const absl::Status& status) {
  std::cerr << what << ": " << status << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const micro::MethodInfo& add = Calculator::Methods::kAdd;
  std::cout << add.subject << ": " << add.request_type << " -> " << add.response_type
            << (add.idempotent ? ", idempotent" : "") << "\n";
  if (argc != 2) {
    std::cerr << "usage: consumer <nats url>\n";
    return 2;
  }

  micro::TransportOptions options;
  options.url = argv[1];
  absl::StatusOr<std::shared_ptr<micro::Transport>> transport = micro::ConnectNats(options);
  if (!transport.ok()) return Fail("connect", transport.status());
  CalculatorHandler handler;
  micro::Server server(*transport);
  if (absl::Status s = calculator::v1::RegisterCalculatorHandler(server, handler); !s.ok()) {
    return Fail("register", s);
  }
  if (absl::Status s = server.Start(); !s.ok()) return Fail("start", s);

  std::unique_ptr<Calculator::Stub> stub =
      Calculator::NewStub(std::make_shared<micro::Client>(*transport));
  micro::ClientContext context;
  context.set_timeout(absl::Seconds(10));
  AddRequest request;
  request.set_a(2);
  request.set_b(40);
  AddReply reply;
  if (absl::Status s = stub->Add(&context, request, &reply); !s.ok()) return Fail("Add", s);
  server.Stop();
  std::cout << "Add(2, 40) = " << reply.sum() << "\n";
  return reply.sum() == 42 ? 0 : 1;
}
