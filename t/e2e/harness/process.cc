#include "e2e/harness/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "e2e/harness/net.h"

extern char** environ;

namespace lb::e2e {

namespace {

// Spawn attributes every child gets: default dispositions (the harness ignores SIGPIPE) and no
// blocked signals, so lb sees the same signal state as when started from a shell.
struct SpawnAttr {
  SpawnAttr() {
    posix_spawnattr_init(&attr);
    sigset_t all;
    sigfillset(&all);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
  posix_spawnattr_t attr;
};

std::vector<char*> cArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) {
    out.push_back(const_cast<char*>(a.c_str()));
  }
  out.push_back(nullptr);
  return out;
}

// Reads /proc/<pid>/stat fields after the command name; empty if gone.
std::vector<std::string> statFields(pid_t pid) {
  std::string text;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::getline(in, text);
  size_t close = text.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) {
    return fields;
  }
  std::istringstream rest(text.substr(close + 2));
  std::string f;
  while (rest >> f) {
    fields.push_back(f);  // fields[0] is field 3 (state)
  }
  return fields;
}

std::vector<pid_t> numericEntries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return out;
  }
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0') {
      out.push_back(static_cast<pid_t>(v));
    }
  }
  ::closedir(d);
  return out;
}

unsigned long parseHexPort(const std::string& addr) {
  size_t colon = addr.find(':');
  return colon == std::string::npos ? 0 : std::stoul(addr.substr(colon + 1), nullptr, 16);
}

}  // namespace

std::string CommandResult::describe() const {
  std::string s = "exit code " + std::to_string(exit_code);
  if (term_signal != 0) {
    s += ", killed by signal " + std::to_string(term_signal);
  }
  if (timed_out) {
    s += " (timed out)";
  }
  return s + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
}

CommandResult runCommand(const std::vector<std::string>& argv, milliseconds timeout,
                         const std::string& input) {
  CommandResult result;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = "pipe failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  SpawnAttr attr;
  auto args = cArgv(argv);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr.attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  UniqueFd in(in_pipe[1]), out(out_pipe[0]), err(err_pipe[0]);
  if (rc != 0) {
    result.err = std::string("spawn failed: ") + std::strerror(rc);
    return result;
  }
  ::fcntl(in.get(), F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    in.reset();
  }
  Deadline end = deadlineIn(timeout);
  while (out.valid() || err.valid()) {
    pollfd p[3] = {{out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}, {in.get(), POLLOUT, 0}};
    int n = ::poll(p, 3, static_cast<int>(std::min<long long>(remaining(end).count(), 200)));
    if (n < 0 && errno != EINTR) {
      break;
    }
    if (Clock::now() >= end) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    char buf[65536];
    UniqueFd* fds[2] = {&out, &err};
    std::string* dst[2] = {&result.out, &result.err};
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents != 0) {
        ssize_t r = ::read(fds[i]->get(), buf, sizeof buf);
        if (r > 0) {
          dst[i]->append(buf, static_cast<size_t>(r));
        } else if (r == 0 || errno != EINTR) {
          fds[i]->reset();
        }
      }
    }
    if (in.valid() && p[2].revents != 0) {
      ssize_t w = ::write(in.get(), input.data() + written, input.size() - written);
      if (w > 0) {
        written += static_cast<size_t>(w);
      }
      if (w < 0 || written == input.size()) {
        in.reset();
      }
    }
  }
  int status = 0;
  // The pipes may close before the process exits (or stay open in a grandchild): reap with a
  // bound too.
  bool reaped =
      waitUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, remaining(end), 5ms);
  if (!reaped) {
    result.timed_out = true;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

pid_t spawnProcess(const std::vector<std::string>& argv, const std::string& output_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  SpawnAttr attr;
  auto args = cArgv(argv);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, &attr.attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::vector<pid_t> childrenOf(pid_t pid) {
  std::set<pid_t> kids;
  std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  bool have_children_files = false;
  for (pid_t tid : numericEntries(task_dir)) {
    std::ifstream in(task_dir + "/" + std::to_string(tid) + "/children");
    if (!in) {
      continue;
    }
    have_children_files = true;
    pid_t child = 0;
    while (in >> child) {
      kids.insert(child);
    }
  }
  if (!have_children_files) {
    for (pid_t p : numericEntries("/proc")) {
      auto f = statFields(p);
      if (f.size() > 1 && std::stol(f[1]) == pid) {
        kids.insert(p);
      }
    }
  }
  std::vector<pid_t> out;
  for (pid_t k : kids) {
    if (processAlive(k)) {
      out.push_back(k);
    }
  }
  return out;
}

bool processAlive(pid_t pid) {
  auto f = statFields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

unsigned long long processStartTime(pid_t pid) {
  auto f = statFields(pid);
  return f.size() > 19 ? std::stoull(f[19]) : 0;
}

std::map<int, pid_t> connectionOwners(int server_port, const std::vector<pid_t>& candidates) {
  // inode -> client port, for established connections on the server port.
  std::map<std::string, int> inodes;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
    f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
    if (state == "01" && parseHexPort(local) == static_cast<unsigned long>(server_port)) {
      inodes["socket:[" + inode + "]"] = static_cast<int>(parseHexPort(remote));
    }
  }
  std::map<int, pid_t> owners;
  for (pid_t pid : candidates) {
    std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    for (pid_t fd : numericEntries(fd_dir)) {
      char target[128];
      std::string link = fd_dir + "/" + std::to_string(fd);
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) {
        continue;
      }
      target[n] = '\0';
      auto it = inodes.find(target);
      if (it != inodes.end()) {
        owners[it->second] = pid;
      }
    }
  }
  return owners;
}

std::string findProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/sbin:/usr/bin";
  for (size_t at = 0; at <= dirs.size();) {
    size_t end = std::min(dirs.find(':', at), dirs.size());
    std::string candidate = dirs.substr(at, end - at) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    at = end + 1;
  }
  return "/usr/bin/" + name;
}

}  // namespace lb::e2e
