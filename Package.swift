// swift-tools-version:6.0
import PackageDescription

// One settings list for every target: the Swift 6 language mode with strict concurrency.
let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "peon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "peon-api", targets: ["peon-api"]),
        .executable(name: "peon-scheduler", targets: ["peon-scheduler"]),
        .executable(name: "peon", targets: ["peon"]),
        .executable(name: "peon-agent", targets: ["peon-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
    ],
    targets: [
        // C libraries: a module map and a header of static inline wrappers, nothing else.
        .systemLibrary(name: "CFCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // prctl and capset (the node agent keeps CAP_NET_ADMIN for iptables only).
        .systemLibrary(name: "CLinux"),

        // Order-preserving JSON value, parser and writer (plans keep their key order on the wire).
        .target(name: "PeonJSON", swiftSettings: settings),
        // The domain: plans, names, settings, configuration. No C, no I/O.
        .target(name: "PeonCore", dependencies: ["PeonJSON"], swiftSettings: settings),
        // Processes, signals, the pre-fork supervisor, stderr logging.
        .target(
            name: "PeonSystem",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),
        // SQLite: connections, transactions, migrations, records.
        .target(
            name: "PeonStore",
            dependencies: ["PeonCore", "PeonJSON", "CSQLite", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),
        // libcurl: bounded HTTP(S) transfers (plan downloads now, the Docker socket next).
        .target(name: "PeonCurl", dependencies: ["CCurl"], swiftSettings: settings),
        // libarchive: bounded, link-free extraction of plan archives; the tar build context of runtime images.
        .target(name: "PeonArchive", dependencies: ["CArchive"], swiftSettings: settings),
        // OpenSSL: Peon's own CA for the node agents, and mutual TLS between the scheduler and them.
        .target(name: "PeonTLS", dependencies: ["COpenSSL"], swiftSettings: settings),
        // A plain Docker Engine API client over the engine's unix socket (used only by the scheduler).
        .target(name: "PeonDocker", dependencies: ["PeonCurl", "PeonJSON"], swiftSettings: settings),
        // The platform seam: what the scheduler needs from wherever servers run. Neutral types only.
        .target(name: "PeonPlatform", dependencies: ["PeonCore", "PeonJSON"], swiftSettings: settings),
        // Node-local work (files, processes, network of a node), run where the node is: one implementation.
        .target(
            name: "PeonNode",
            dependencies: [
                "PeonCore", "PeonPlatform", "PeonSystem", "PeonArchive", "PeonDocker", "PeonJSON", "PeonTLS",
            ],
            swiftSettings: settings),
        // Peon's node agent on the wire: the scheduler's channel to it and the agent's server, over mutual TLS.
        .target(
            name: "PeonNodeAgent", dependencies: ["PeonNode", "PeonPlatform", "PeonTLS", "PeonCore", "PeonJSON", "PeonSystem"],
            swiftSettings: settings),
        // Server specs as Docker containers (one network per server, owned by labels).
        .target(
            name: "PeonPlatformDocker",
            dependencies: ["PeonCore", "PeonDocker", "PeonJSON", "PeonPlatform", "PeonArchive", "PeonNode", "PeonSystem"],
            swiftSettings: settings),
        // Server specs as Swarm services (one replica pinned to its node, host-mode ports); file work on the node.
        .target(
            name: "PeonPlatformSwarm",
            dependencies: [
                "PeonCore", "PeonDocker", "PeonJSON", "PeonPlatform", "PeonSystem", "PeonNode", "PeonNodeAgent", "PeonTLS",
                // Runtime images are built as on Docker, on the manager, then pushed to the registry.
                "PeonPlatformDocker",
            ],
            swiftSettings: settings),
        // The scheduler's engine: jobs, timed actions, events, reconcile; drives the platform seam only.
        .target(
            name: "PeonScheduler",
            dependencies: [
                "PeonCore", "PeonStore", "PeonPlatform", "PeonSystem", "PeonJSON", "PeonArchive",
                // Webhook deliveries: libcurl; backup checksums and HMAC-SHA256 signatures: Crypto.
                "PeonCurl", .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: settings),
        // Requests, responses, routing, HTTP errors: transport-free, runs in-process in tests.
        .target(name: "PeonHTTP", dependencies: ["PeonJSON"], swiftSettings: settings),
        // The /api/v1 endpoints: auth, audit, plans, orchestrator; never Docker.
        .target(
            name: "PeonAPI",
            dependencies: [
                "PeonHTTP", "PeonCore", "PeonStore", "PeonCurl", "PeonArchive", "PeonJSON", "PeonSystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings),
        // libfcgi transport: serves any responder over a FastCGI socket.
        .target(
            name: "PeonFastCGI",
            dependencies: ["CFCGI", "PeonHTTP", "PeonSystem", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),

        // Executables: configuration, logging and wiring only.
        .executableTarget(
            name: "peon-api",
            dependencies: ["PeonAPI", "PeonFastCGI", "PeonSystem", "PeonStore", "PeonCore"],
            swiftSettings: settings),
        .executableTarget(
            name: "peon-scheduler",
            dependencies: [
                "PeonScheduler", "PeonPlatformDocker", "PeonPlatformSwarm", "PeonNode", "PeonNodeAgent", "PeonTLS", "PeonPlatform",
                "PeonDocker",
                "PeonCurl", "PeonJSON",
                "PeonSystem", "PeonCore", "PeonStore",
            ],
            swiftSettings: settings),
        .executableTarget(
            name: "peon-agent",
            dependencies: [
                "PeonNodeAgent", "PeonNode", "PeonPlatform", "PeonTLS", "PeonSystem", "PeonCore", "PeonJSON", "PeonDocker", "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings),
        .executableTarget(
            name: "peon",
            dependencies: [
                "PeonAPI", "PeonStore", "PeonCore", "PeonCurl", "PeonJSON", "PeonSystem", "PeonNodeAgent", "PeonTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: settings),

        // Test helpers shared by test targets: the in-memory platform and the platform contract suite.
        .target(
            name: "PeonTestSupport", dependencies: ["PeonPlatform", "PeonCore", "PeonJSON"], path: "Tests/PeonTestSupport",
            swiftSettings: settings),
        .testTarget(
            name: "PeonPlatformTests", dependencies: ["PeonTestSupport", "PeonPlatform", "PeonCore", "PeonJSON"], swiftSettings: settings),
        .testTarget(name: "PeonCoreTests", dependencies: ["PeonCore", "PeonJSON"], swiftSettings: settings),
        .testTarget(name: "PeonStoreTests", dependencies: ["PeonStore", "PeonCore", "PeonSystem"], swiftSettings: settings),
        .testTarget(name: "PeonSystemTests", dependencies: ["PeonSystem"], swiftSettings: settings),
        .testTarget(name: "PeonTLSTests", dependencies: ["PeonTLS"], swiftSettings: settings),
        .testTarget(
            name: "PeonNodeTests",
            dependencies: [
                "PeonNode", "PeonNodeAgent", "PeonTLS", "PeonPlatform", "PeonCore", "PeonJSON", "PeonSystem", "PeonTestSupport",
                "PeonDocker",
                "PeonArchive",
            ],
            swiftSettings: settings),
        .testTarget(name: "PeonArchiveTests", dependencies: ["PeonArchive", "CArchive"], swiftSettings: settings),
        .testTarget(name: "PeonDockerTests", dependencies: ["PeonDocker", "PeonCurl", "PeonJSON", "PeonSystem"], swiftSettings: settings),
        .testTarget(
            name: "PeonPlatformDockerTests",
            dependencies: ["PeonPlatformDocker", "PeonPlatform", "PeonDocker", "PeonCore", "PeonJSON", "PeonSystem", "PeonTestSupport"],
            swiftSettings: settings),
        .testTarget(
            name: "PeonSchedulerTests",
            dependencies: [
                "PeonScheduler", "PeonPlatform", "PeonStore", "PeonCore", "PeonJSON", "PeonSystem", "PeonNode", "PeonDocker",
                "PeonTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings),
        .testTarget(
            name: "PeonPlatformSwarmTests",
            dependencies: [
                "PeonPlatformSwarm", "PeonPlatform", "PeonDocker", "PeonCore", "PeonJSON", "PeonSystem", "PeonTestSupport", "PeonNodeAgent",
                "PeonNode", "PeonTLS",
            ],
            swiftSettings: settings),
        .testTarget(name: "PeonFastCGITests", dependencies: ["PeonFastCGI", "PeonHTTP"], swiftSettings: settings),
        .testTarget(name: "PeonHTTPTests", dependencies: ["PeonHTTP", "PeonJSON"], swiftSettings: settings),
        .testTarget(
            name: "PeonAPITests",
            dependencies: ["PeonAPI", "PeonHTTP", "PeonStore", "PeonCore", "PeonJSON"],
            swiftSettings: settings),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer harness over the JSON parser, the router and request/plan validation. Built only with
// PEON_FUZZ set (scripts/fuzz.sh, `make fuzz`), in its own scratch path, so normal builds skip it.
if Context.environment["PEON_FUZZ"] != nil {
    package.targets += [
        .systemLibrary(name: "CFuzz", path: "Fuzz/CFuzz"),
        .executableTarget(
            name: "peon-fuzz", dependencies: ["CFuzz", "PeonCore", "PeonHTTP", "PeonJSON"], path: "Fuzz/peon-fuzz", swiftSettings: settings),
    ]
}
