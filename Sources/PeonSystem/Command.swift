#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program of the system's (never through a shell) with bytes on its stdin, and answers its
/// exit status and output (stdout and stderr together, the last 64 KiB).
///
/// For the few tools Peon drives by design (`iptables-restore`): the arguments are an array, so
/// nothing in them is ever parsed by a shell, and the environment is empty but for `PATH`.
public enum Command {
    public struct Result: Sendable, Equatable {
        public let status: Int32
        public let output: String

        public var succeeded: Bool { status == 0 }

        public init(status: Int32, output: String) {
            self.status = status
            self.output = output
        }
    }

    /// Where programs are looked for: the system's folders only, not the caller's `PATH`.
    public static let folders = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]

    /// The first executable `name` in `folders`, or nil.
    public static func find(_ name: String) -> String? {
        folders.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }

    /// Runs `path` with `arguments`, writing `input` to its stdin first (input must fit a pipe's
    /// buffer, 64 KiB, as a rule set does). Blocks until it exits.
    public static func run(_ path: String, _ arguments: [String], input: [UInt8] = []) -> Result {
        var toChild: [Int32] = [-1, -1]
        var fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0 else { return Result(status: -1, output: "pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&fromChild) == 0 else {
            close(toChild[0])
            close(toChild[1])
            return Result(status: -1, output: "pipe: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec: no other child spawned meanwhile may hold these ends (a stdin never ending).
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 2)
        let argv = ([path] + arguments).map { (text: String) in strdup(text) }
        let envp = ["PATH=" + folders.joined(separator: ":")].map { (text: String) in strdup(text) }
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv + [nil], envp + [nil])
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else {
            close(toChild[1])
            close(fromChild[0])
            return Result(status: -1, output: "\(path): \(String(cString: strerror(spawned)))")
        }
        var written = 0
        while written < input.count {
            let n = input[written...].withUnsafeBytes { write(toChild[1], $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            written += n
        }
        close(toChild[1])
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fromChild[0], $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            output += buffer[..<n]
            if output.count > 64 << 10 { output.removeFirst(output.count - (64 << 10)) }
        }
        close(fromChild[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        // WIFEXITED / WEXITSTATUS (macros Swift does not import); a signal reads as 128 + its number.
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self))
    }
}
