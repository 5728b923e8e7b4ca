public import PeonCore
public import PeonPlatform
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A node's server folders (`<dataDir>/servers/<game>/<name>`), worked on where they are.
///
/// The Docker platform calls it in the scheduler (its node is this host); a multi-node platform
/// runs the same code on the server's node. Every path is reached without following a symlink:
/// game servers write these folders.
public struct LocalServerFiles: Sendable {
    /// This node's data folder, and the same folder as the engine sees it (for bind mounts).
    public let dataDir: String
    public let hostDataDir: String

    public init(dataDir: String, hostDataDir: String) {
        self.dataDir = dataDir
        self.hostDataDir = hostDataDir
    }

    public var serversDir: String { dataDir + "/servers" }

    public func directory(_ uid: ServerUID) -> String { serversDir + "/" + uid.relativeDirectory }

    /// The file that makes a server directory self-describing, so it can be imported again.
    public static let manifest = "peon-server.json"

    /// Makes the server's directories that are missing and gives what it made to the game's user
    /// (1000:1000). Existing content is not walked: PEON's `chown -R` before every start crossed
    /// gigabytes of game files each time.
    public func prepare(_ uid: ServerUID, _ sources: BindSources, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        let dir = directory(uid)
        var made: [String] = []
        do {
            if Files.kind(dir) == .missing {
                try Files.makeDirectories(dir)
                try Files.setMode(dir, 0o755)
                made.append(dir)
            }
            if Files.kind(dir + "/actions") == .missing {
                try ActionsInstaller().install(actions, into: dir + "/actions")
                made.append(dir + "/actions")
            } else if reinstallActions {
                try ActionsInstaller().install(actions, into: dir + "/actions")
            }
            for path in made {
                try Files.chownTree(path, uid: 1000, gid: 1000)
                // The API reads `config/` live and may run as another user.
                try Files.setMode(path, 0o755)
            }
        } catch {
            throw .refused("cannot prepare the server folder: \(error)")
        }
        try check(uid, sources)
        let existing = Set(sources.files.filter { Files.kind(dir + "/" + $0) == .file }.map { "~!/" + $0 })
        return PreparedFiles(directory: hostDataDir + "/servers/" + uid.relativeDirectory, existingFiles: existing)
    }

    /// Every bind source, checked right before a start: reached from the data dir without a
    /// symlink at any level (Docker would follow one), folders made for the game's user when missing.
    public func check(_ uid: ServerUID, _ sources: BindSources) throws(PlatformError) {
        let base = "servers/" + uid.relativeDirectory + "/"
        do {
            for volume in sources.volumes {
                try Files.checkBindSource(base + volume, in: dataDir, owner: (1000, 1000))
            }
            for file in sources.files where Files.kind(directory(uid) + "/" + file) != .missing {
                try Files.checkBindSource(base + file, in: dataDir, file: true)
            }
        } catch {
            throw .refused("unsafe mount source: \(error)")
        }
    }

    /// New actions (the user's other files there stay), the mode's markers, and wipes. Deletion
    /// goes by descriptor, so a game cannot swap a folder for a symlink under it.
    public func update(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError) {
        let base = uid.relativeDirectory
        do {
            try ActionsInstaller().install(actions, into: directory(uid) + "/actions")
            if mode.redownloadsGame { try Files.removeTree(base + "/actions/.update", in: serversDir) }
            if mode.validatesGame {
                // The game writes `actions/`: the marker is a fresh file renamed over whatever is there.
                try Files.replace(".validate", in: base + "/actions", under: serversDir, [], mode: 0o644, owner: (1000, 1000))
            }
            if mode.wipesGameFiles { try Files.removeContents(base + "/data", in: serversDir) }
        } catch {
            throw .refused("cannot update the server's files: \(error)")
        }
    }

    public func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError) {
        do {
            if (try? Files.read(directory(uid) + "/" + Self.manifest, limit: 1 << 20)) == bytes { return }
            try Files.replace(Self.manifest, in: uid.relativeDirectory, under: serversDir, bytes, mode: 0o600)
        } catch {
            throw .refused("cannot write the server manifest: \(error)")
        }
    }

    /// Manifests of every server folder that has one (a FIFO or a huge file is skipped).
    public func manifests() -> [(ServerUID, [UInt8])] {
        var found: [(ServerUID, [UInt8])] = []
        for game in Files.list(serversDir) {
            for name in Files.list(serversDir + "/" + game) {
                guard let uid = try? ServerUID(validating: "\(game).\(name)"),
                    let bytes = try? Files.read(directory(uid) + "/" + Self.manifest, limit: 1 << 20)
                else { continue }
                found.append((uid, bytes))
            }
        }
        return found
    }

    public func readConfig(_ uid: ServerUID) -> [ConfigFile] {
        Files.textFiles(in: uid.relativeDirectory + "/config", under: serversDir, include: ServerConfig.isVisible).map {
            ConfigFile(name: $0.name, text: $0.text, settled: $0.settled)
        }
    }

    /// Removes the server's folder; whether there was one (erasing a destroyed server by its uid
    /// answers 404 when nothing of it was left anywhere).
    @discardableResult
    public func remove(_ uid: ServerUID) throws(PlatformError) -> Bool {
        let existed = Files.kind(directory(uid)) != .missing
        do {
            try Files.removeTree(uid.relativeDirectory, in: serversDir)
        } catch {
            throw .refused("cannot remove the server folder: \(error)")
        }
        return existed
    }
}
