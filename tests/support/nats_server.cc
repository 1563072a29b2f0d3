#include "support/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "support/process.h"

namespace micro::testing {
namespace {

constexpr int kStartAttempts = 3;
constexpr absl::Duration kReadyTimeout = absl::Seconds(10);

std::string ServerBinary() {
  if (const char* env = std::getenv("NATS_SERVER"); env != nullptr && *env != '\0') return env;
  if (access("/usr/sbin/nats-server", X_OK) == 0) return "/usr/sbin/nats-server";
  return "nats-server";
}

bool AcceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Forks and execs the server; the child is killed if this process dies.
pid_t Launch(const std::vector<std::string>& args) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0 && std::getenv("MICRO_TEST_NATS_LOG") == nullptr) {
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
  }
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  _exit(127);
}

}  // namespace

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

absl::StatusOr<std::unique_ptr<NatsServer>> NatsServer::Start(
    const std::vector<std::string>& extra_args, int given_port) {
  std::string last_error = "no attempt made";
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    int port = given_port > 0 ? given_port : PickFreePort();
    if (port <= 0) return absl::UnavailableError("no free loopback port");
    if (given_port > 0 && attempt > 0) absl::SleepFor(absl::Seconds(1));  // Still taken?
    std::vector<std::string> args = {ServerBinary(), "-a", "127.0.0.1", "-p", absl::StrCat(port)};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_t pid = Launch(args);
    if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
    std::unique_ptr<NatsServer> server(new NatsServer(pid, port, std::move(args)));
    absl::Status ready = server->WaitUntilReady();
    if (ready.ok()) return server;
    last_error = std::string(ready.message());  // Port taken, bad flags: try another port.
  }
  return absl::UnavailableError(absl::StrCat("cannot start nats-server: ", last_error));
}

absl::Status NatsServer::WaitUntilReady() {
  absl::Time give_up = absl::Now() + kReadyTimeout;
  while (absl::Now() < give_up) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(absl::StrCat(args_[0], " exited with status ", status));
    }
    if (AcceptsConnections(port_)) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return absl::UnavailableError("nats-server did not accept connections within 10 s");
}

NatsServer::~NatsServer() { Stop(); }

void NatsServer::Stop() { Signal(SIGTERM, 5000); }

void NatsServer::Kill() { Signal(SIGKILL, 5000); }

void NatsServer::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void NatsServer::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

void NatsServer::Signal(int signal, int wait_ms) {
  if (pid_ <= 0) return;
  kill(pid_, signal);
  kill(pid_, SIGCONT);  // A paused server acts on SIGTERM only once resumed.
  for (int waited = 0; waited < wait_ms; waited += 10) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    usleep(10 * 1000);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string NatsServer::url() const { return absl::StrCat("nats://127.0.0.1:", port_); }

absl::StatusOr<std::unique_ptr<NatsCluster>> NatsCluster::Start(int size) {
  std::vector<int> cluster_ports;
  std::vector<int> monitor_ports;
  for (int i = 0; i < size; ++i) {
    cluster_ports.push_back(PickFreePort());
    monitor_ports.push_back(PickFreePort());
  }
  std::unique_ptr<NatsCluster> cluster(new NatsCluster);
  for (int i = 0; i < size; ++i) {
    std::vector<std::string> routes;
    for (int j = 0; j < size; ++j) {
      if (j != i) routes.push_back(absl::StrCat("nats-route://127.0.0.1:", cluster_ports[j]));
    }
    absl::StatusOr<std::unique_ptr<NatsServer>> node =
        NatsServer::Start({"--cluster_name", "micro-test", "--cluster",
                           absl::StrCat("nats://127.0.0.1:", cluster_ports[i]), "--routes",
                           absl::StrJoin(routes, ","), "-m", absl::StrCat(monitor_ports[i])});
    if (!node.ok()) return node.status();
    cluster->nodes_.push_back(*std::move(node));
  }
  absl::Time give_up = absl::Now() + kReadyTimeout;
  for (int i = 0; i < size; ++i) {
    while (true) {
      absl::StatusOr<std::string> routez = HttpGet(monitor_ports[i], "/routez");
      if (routez.ok() && absl::StrContains(*routez, absl::StrCat("\"num_routes\": ", size - 1))) {
        break;
      }
      if (absl::Now() > give_up) {
        return absl::DeadlineExceededError(
            absl::StrCat("cluster node ", i, " has no route to every other node within 10 s"));
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  return cluster;
}

std::string NatsCluster::urls() const {
  std::vector<std::string> urls;
  for (const auto& node : nodes_) urls.push_back(node->url());
  return absl::StrJoin(urls, ",");
}

}  // namespace micro::testing
