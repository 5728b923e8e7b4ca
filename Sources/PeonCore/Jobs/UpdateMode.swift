/// PEON's update modes (contract §1, `mode`), with the web UI's `quick` and `validate`, as what
/// each does to a server. The runtime image reads two markers in `actions/`: without `.update` it
/// runs steamcmd's `app_update` at the next start; with `.validate` it adds `validate`.
public enum UpdateMode: String, Sendable, CaseIterable {
    /// Image and game: rebuild (or pull) the image, re-download the game.
    case full
    /// The image only; the game files stay as they are.
    case image
    /// The game only (`app_update` at the next start), same image.
    case server
    /// Like `full`, after emptying `data/` (a fresh install).
    case reinit
    /// The game, checked file by file (`app_update … validate`).
    case validate
    /// Neither: the container is re-created from the current plan and settings and restarted.
    case quick

    /// PEON's aliases (`all`, `container`, `game`), case-insensitive; unknown words are an error.
    public init(parsing text: String?) throws(DomainError) {
        switch (text ?? "full").lowercased() {
        case "full", "all": self = .full
        case "image", "container": self = .image
        case "server", "game": self = .server
        case "reinit": self = .reinit
        case "validate": self = .validate
        case "quick": self = .quick
        default:
            throw .invalid(field: "mode", reason: "mode must be one of full, image, server, reinit, validate, quick")
        }
    }

    /// Builds (runtime plans) or pulls (`image` plans) the image again.
    public var refreshesImage: Bool { self == .full || self == .image || self == .reinit }
    /// Removes `actions/.update`, so the game is downloaded again at the next start.
    public var redownloadsGame: Bool { self == .full || self == .server || self == .reinit || self == .validate }
    /// Writes `actions/.validate`, so steamcmd checks every file.
    public var validatesGame: Bool { self == .validate }
    /// Empties `data/` first.
    public var wipesGameFiles: Bool { self == .reinit }
}
