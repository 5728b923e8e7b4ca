import PeonArchive
public import PeonCore
public import PeonDocker

/// Builds Peon's runtime images with an engine's own builder (`POST /build`): the Docker
/// platform's engine, or a Swarm manager's before the image is pushed to the cluster's registry.
public struct RuntimeImageBuilder {
    public let docker: DockerClient

    public init(docker: DockerClient) { self.docker = docker }

    static let buildLabel = "peon.build"

    /// Builds `image` unless the engine has its tag (a hash of every input: if the engine has it,
    /// it is this build); true when it built.
    public func build(_ image: RuntimeImage, progress: (String) -> Void) throws(DockerError) -> Bool {
        guard let build = image.build else { return false }
        if try docker.inspectImage(image.reference) != nil { return false }
        var context = TarWriter()
        for file in build.files { context.add(file.path, file.bytes, mode: file.mode) }
        let bytes: [UInt8]
        do {
            bytes = try context.bytes()
        } catch {
            throw .badResponse("cannot make the build context: \(error)")
        }
        try docker.buildImage(
            context: bytes, tag: image.reference, labels: build.labels.map { ($0.key, $0.value) },
            buildArgs: build.buildArgs.map { ($0.key, $0.value) }, network: try network(labels: build.labels), progress: progress)
        return true
    }

    /// The network `RUN` steps of runtime image builds use (apt reaches Debian's archive through
    /// it): a labelled bridge of Peon's own, made once, rather than Docker's default bridge, which
    /// an engine may run without (`--bridge=none`) or lose.
    func network(labels: [RuntimeImage.Pair]) throws(DockerError) -> String {
        let mine = labels.filter { $0.key != RuntimeImage.runtimeLabel && $0.key != RuntimeImage.inputsLabel }.map {
            "\($0.key)=\($0.value)"
        }
        if let id = try docker.listNetworks(labels: mine + ["\(Self.buildLabel)=true"]).first?["Id"]?.stringValue { return id }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return try docker.createNetwork(
            name: "peon-build-\(suffix)",
            labels: labels.filter { mine.contains("\($0.key)=\($0.value)") }.map { ($0.key, $0.value) } + [(Self.buildLabel, "true")])
    }
}
