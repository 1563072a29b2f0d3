// Echo servers for the discovery tests, the registry peer process and the
// registry benchmark: each a micro::Server with its own connection and
// registry, whose replies say which instance served them.
#ifndef MICRO_TESTS_SUPPORT_ECHO_INSTANCE_H_
#define MICRO_TESTS_SUPPORT_ECHO_INSTANCE_H_

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "micro/micro.h"
#include "micro/testing/echo.micro.h"

namespace micro::testing {

// The response metadata key carrying the serving instance's id.
inline constexpr char kServedBy[] = "served-by";

// Echoes `text`, fails with `fail_code` when it is set, waits `delay` (and
// `sleep_ms`) first, and lists the request metadata in the reply.
class TaggingEchoHandler final : public Echo::Handler {
 public:
  absl::Status Echo(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    return Serve(context, request, reply);
  }
  absl::Status Ping(ServerContext* context, const EchoRequest* request, EchoReply* reply) override {
    return Serve(context, request, reply);
  }

  // Both before the server starts.
  void set_id(std::string id) { id_ = std::move(id); }
  void set_delay(absl::Duration delay) { delay_ = delay; }

  int calls() const { return calls_.load(); }

 private:
  absl::Status Serve(ServerContext* context, const EchoRequest* request, EchoReply* reply) {
    calls_.fetch_add(1);
    if (absl::Duration wait = delay_ + absl::Milliseconds(request->sleep_ms());
        wait > absl::ZeroDuration()) {
      absl::SleepFor(wait);
    }
    for (const auto& [key, value] : context->client_metadata()) {
      reply->add_metadata(absl::StrCat(key, "=", value));
    }
    context->AddResponseMetadata(kServedBy, id_);
    if (request->fail_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(request->fail_code()), request->text());
    }
    reply->set_text(request->text());
    return absl::OkStatus();
  }

  std::string id_;
  absl::Duration delay_;
  std::atomic<int> calls_{0};
};

inline absl::StatusOr<std::shared_ptr<Transport>> ConnectTo(const std::string& url) {
  TransportOptions options;
  options.url = url;
  return ConnectNats(options);
}

// A started Echo server on its own connection, registered in its own NATS
// registry that announces every `heartbeat`. Stops on destruction.
class EchoInstance {
 public:
  static absl::StatusOr<std::unique_ptr<EchoInstance>> Start(
      const std::string& url, ServerOptions options, absl::Duration heartbeat,
      absl::Duration delay = absl::ZeroDuration()) {
    std::unique_ptr<EchoInstance> instance(new EchoInstance);
    absl::StatusOr<std::shared_ptr<Transport>> transport = ConnectTo(url);
    if (!transport.ok()) return transport.status();
    NatsRegistryOptions registry_options;
    registry_options.heartbeat = heartbeat;
    absl::StatusOr<std::shared_ptr<Registry>> registry =
        NewNatsRegistry(*transport, registry_options);
    if (!registry.ok()) return registry.status();
    if (options.registry == nullptr) options.registry = *registry;
    instance->server_ = std::make_unique<Server>(*transport, std::move(options));
    instance->handler_.set_id(instance->server_->id());
    instance->handler_.set_delay(delay);
    if (absl::Status status = RegisterEchoHandler(*instance->server_, instance->handler_);
        !status.ok()) {
      return status;
    }
    if (absl::Status status = instance->server_->Start(); !status.ok()) return status;
    return instance;
  }

  ~EchoInstance() { server_->Stop(); }

  Server& server() { return *server_; }
  const std::string& id() const { return server_->id(); }
  const TaggingEchoHandler& handler() const { return handler_; }

 private:
  EchoInstance() = default;

  TaggingEchoHandler handler_;
  std::unique_ptr<Server> server_;
};

}  // namespace micro::testing

#endif  // MICRO_TESTS_SUPPORT_ECHO_INSTANCE_H_
