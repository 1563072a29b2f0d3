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
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

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
    const std::vector<std::string>& extra_args) {
  std::string last_error = "no attempt made";
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    int port = PickFreePort();
    if (port <= 0) return absl::UnavailableError("no free loopback port");
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

absl::Status NatsServer::Restart() {
  Kill();
  pid_ = Launch(args_);
  if (pid_ < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  return WaitUntilReady();
}

NatsServer::~NatsServer() { Stop(); }

void NatsServer::Stop() { Signal(SIGTERM, 5000); }

void NatsServer::Kill() { Signal(SIGKILL, 5000); }

void NatsServer::Signal(int signal, int wait_ms) {
  if (pid_ <= 0) return;
  kill(pid_, signal);
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

}  // namespace micro::testing
