#include "gateway.h"

#include <httplib.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "dynamic_service.h"
#include "micro/client.h"
#include "protocol/wire.h"

namespace micro::cli {
namespace {

// Request and response metadata travel in headers with this prefix
// (`Micro-Metadata-X-Request-Id: 42` is metadata `x-request-id: 42`), so no
// other header (cookies, authorization, proxies' own) leaks into calls.
constexpr char kMetadataPrefix[] = "micro-metadata-";
constexpr char kTimeoutHeader[] = "Micro-Timeout";

void WriteError(const absl::Status& status, httplib::Response& response) {
  response.status = protocol::HttpCodeFromStatus(status.code());
  response.set_content(nlohmann::json{{"code", absl::StatusCodeToString(status.code())},
                                      {"message", std::string(status.message())}}
                           .dump(),
                       "application/json");
}

// A service's schema stays good while the same instances run; a new id
// (a restart, a new version) loads it again.
class ServiceCache {
 public:
  ServiceCache(std::shared_ptr<Transport> transport, std::shared_ptr<Registry> registry)
      : transport_(std::move(transport)), registry_(std::move(registry)) {}

  absl::StatusOr<std::shared_ptr<const DynamicService>> Get(std::string_view requested,
                                                            absl::Time deadline) {
    std::string name = ResolveServiceName(requested);
    auto found = registry_->GetService(name);
    if (!found.ok()) return found.status();
    std::string ids = Ids(**found);
    {
      std::lock_guard lock(mu_);
      auto it = services_.find(name);
      if (it != services_.end() && Ids(it->second->instances()) == ids) return it->second;
    }
    auto loaded = DynamicService::Load(*registry_, *transport_, name, deadline);
    if (!loaded.ok()) return loaded.status();
    std::lock_guard lock(mu_);
    services_[name] = *loaded;
    return *loaded;
  }

 private:
  static std::string Ids(const ServiceInstances& service) {
    return absl::StrJoin(service.instances, ",",
                         [](std::string* out, const Instance& i) { out->append(i.id); });
  }

  const std::shared_ptr<Transport> transport_;
  const std::shared_ptr<Registry> registry_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const DynamicService>> services_;
};

}  // namespace

class Gateway::Impl {
 public:
  Impl(std::shared_ptr<Transport> transport, std::shared_ptr<Registry> registry,
       GatewayOptions options)
      : options_(std::move(options)),
        client_(transport),
        services_(transport, std::move(registry)) {
    server_.set_payload_max_length(options_.max_body_bytes);
    // httplib's default adds SO_REUSEPORT, with which a second gateway on
    // the same port starts without error and takes half the connections.
    server_.set_socket_options([](socket_t socket) {
      int yes = 1;
      setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server_.Post(R"(/([^/]+)/([^/]+))",
                 [this](const httplib::Request& request, httplib::Response& response) {
                   Handle(request, response);
                 });
    // Answers httplib gives by itself (no route, body too large) get the
    // same JSON error body as ours.
    server_.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& request, httplib::Response& response) {
          if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          absl::Status status;
          if (response.status == 413) {
            status = absl::ResourceExhaustedError(
                absl::StrCat("request body exceeds ", options_.max_body_bytes, " bytes"));
          } else if (response.status == 404) {
            status =
                absl::NotFoundError(absl::StrCat("no route for ", request.method, " ", request.path,
                                                 ": calls are POST /<service>/<endpoint>"));
          } else {
            status = absl::Status(protocol::StatusFromHttpCode(response.status),
                                  absl::StrCat("HTTP status ", response.status));
          }
          int code = response.status;
          WriteError(status, response);
          response.status = code;
          return httplib::Server::HandlerResponse::Handled;
        }));
  }

  absl::Status Start() {
    std::lock_guard lock(mu_);
    if (started_) return absl::FailedPreconditionError("gateway already started");
    int port = options_.port == 0
                   ? server_.bind_to_any_port(options_.host)
                   : (server_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port <= 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.host, ":", options_.port));
    }
    port_ = port;
    started_ = true;
    listener_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib's stop() does nothing until the listener runs: a stop right
    // after the start (a quick SIGTERM) would leave it listening for ever.
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return absl::OkStatus();
  }

  int port() const { return port_; }

  void Stop() {
    std::lock_guard lock(mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    // listen_after_bind returns once the worker pool has finished the
    // requests it took.
    server_.stop();
    listener_.join();
  }

 private:
  void Handle(const httplib::Request& request, httplib::Response& response) {
    absl::Status status = Serve(request, response);
    if (!status.ok()) WriteError(status, response);
  }

  absl::Status Serve(const httplib::Request& request, httplib::Response& response) {
    // The body is JSON whatever Content-Type says: `curl -d` sends form
    // encoding by default, and refusing that helps nobody.
    absl::Duration timeout = options_.default_timeout;
    if (request.has_header(kTimeoutHeader)) {
      std::string value = request.get_header_value(kTimeoutHeader);
      if (!absl::ParseDuration(value, &timeout) || timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(
            kTimeoutHeader, " '", value, "' is not a positive duration like 5s or 250ms"));
      }
    }
    absl::Time deadline = absl::Now() + timeout;
    auto service = services_.Get(std::string(request.matches[1]), deadline);
    if (!service.ok()) return service.status();
    auto endpoint = (*service)->FindCallable(std::string(request.matches[2]));
    if (!endpoint.ok()) return endpoint.status();
    ClientContext context;
    context.set_deadline(deadline);
    for (const auto& [key, value] : request.headers) {
      std::string lower = absl::AsciiStrToLower(key);
      if (absl::StartsWith(lower, kMetadataPrefix)) {
        context.AddMetadata(lower.substr(sizeof(kMetadataPrefix) - 1), value);
      }
    }
    std::vector<std::string> messages;
    absl::Status status =
        CallJson(client_, &context, **endpoint, request.body.empty() ? "{}" : request.body,
                 JsonOutput{}, [&messages](const std::string& json) { messages.push_back(json); });
    for (const auto& [key, value] : context.response_metadata()) {
      response.set_header(absl::StrCat("Micro-Metadata-", key), value);
    }
    if (!status.ok()) return status;
    if ((*endpoint)->kind == RpcKind::kUnary) {
      response.set_content(messages.front(), "application/json");
    } else {
      // Streams answer once they end, one message per line.
      std::string body;
      for (const std::string& message : messages) absl::StrAppend(&body, message, "\n");
      response.set_content(body, "application/x-ndjson");
    }
    return absl::OkStatus();
  }

  const GatewayOptions options_;
  Client client_;
  ServiceCache services_;
  httplib::Server server_;

  std::mutex mu_;  // Guards starting and stopping.
  bool started_ = false;
  bool stopped_ = false;
  int port_ = 0;
  std::thread listener_;
};

Gateway::Gateway(std::shared_ptr<Transport> transport, std::shared_ptr<Registry> registry,
                 GatewayOptions options)
    : impl_(std::make_unique<Impl>(std::move(transport), std::move(registry), std::move(options))) {
}

Gateway::~Gateway() { Stop(); }

absl::Status Gateway::Start() { return impl_->Start(); }

int Gateway::port() const { return impl_->port(); }

void Gateway::Stop() { impl_->Stop(); }

}  // namespace micro::cli
