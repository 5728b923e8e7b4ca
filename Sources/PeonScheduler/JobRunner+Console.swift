import PeonCore
import PeonJSON
import PeonPlatform
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

extension JobRunner {
    /// Types one line into the running game's console: over Source RCON when its plan declares
    /// it (the result carries the answer), else into its stdin (the answer is in its output). Both
    /// go through the server's node, which reaches the container directly.
    func console(_ uid: ServerUID, command: String) throws -> JSON? {
        let server = try record(uid)
        guard let id = server.containerID, let (node, container) = try? platform.runningContainer(ServerRef(id)) else {
            throw CodedFailure(code: .serverNotRunning, message: "\(uid) is not running, so it has no console.")
        }
        let plan = try plan(uid.game)
        if let rcon = plan.rcon {
            let response = try rconCommand(server, plan: plan, rcon: rcon, command: command, on: (node, container))
            return ["via": "rcon", "response": .string(response.text), "truncated": .bool(response.truncated)]
        }
        try node.consoleLine(container: container, command)
        return nil
    }

    /// One command over the game's RCON, sent by the server's node to the container's address on
    /// its own network (the RCON port is never published).
    func rconCommand(
        _ server: ServerRecord, plan: Plan, rcon: RconDeclaration, command: String, on running: (node: any NodeChannel, container: String)
    ) throws -> RconResponse {
        do {
            let (port, password) = try rcon.resolve(ports: server.ports, settings: server.settings, defaults: plan.settings)
            return try running.node.rcon(container: running.container, port: port, password: password, command: command)
        } catch let error as RconError {
            throw CodedFailure(code: JobFailureCode(error), message: error.description)
        }
    }
}

/// A job that failed for a reason the API answers itself with `code` (job result): a console's
/// 409s, an erase that found a server of that name again.
struct CodedFailure: Error, CustomStringConvertible {
    let code: JobFailureCode
    let message: String
    var description: String { message }
}
