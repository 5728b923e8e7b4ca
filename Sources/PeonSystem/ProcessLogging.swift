public import Logging

/// The one way an executable sets up logging: stderr, one line per event, at a named level.
public enum ProcessLogging {
    /// Bootstraps stderr logging (once per process) and returns the executable's logger.
    /// - Parameter level: `trace` … `critical`; anything else means `info`.
    public static func start(label: String, level: String) -> Logger {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }
}
