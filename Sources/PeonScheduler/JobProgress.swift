import PeonJSON
import PeonStore
import PeonSystem

/// A running job's progress as `GET /api/v1/jobs/<id>` shows it: the phase, a percent when the
/// step says (the builder's `Step 3/7`), and the last few lines of output.
///
/// Output arrives line by line from the engine; the row is written at most four times a second
/// (and at each phase change), so a chatty build costs a few writes, not one per line. Lines come
/// from a build or a game's installer: they are cut to 200 bytes of printable text.
final class JobProgress {
    enum Phase: String {
        case pulling, building, installing, starting
    }

    static let keptLines = 8
    static let interval = 0.25

    let store: Store
    let jobID: Int64
    private(set) var phase: Phase?
    private(set) var percent: Int?
    private(set) var lines: [String] = []
    private var lastWrite = 0.0
    private var pending = false

    init(store: Store, jobID: Int64) {
        self.store = store
        self.jobID = jobID
    }

    func enter(_ phase: Phase) {
        guard phase != self.phase else { return }
        self.phase = phase
        percent = nil
        write()
    }

    func line(_ text: String) {
        let clean = Self.printable(text)
        guard !clean.isEmpty else { return }
        if let step = Self.step(clean) { percent = step }
        lines.append(clean)
        if lines.count > Self.keptLines { lines.removeFirst(lines.count - Self.keptLines) }
        if Monotonic.seconds() - lastWrite >= Self.interval { write() } else { pending = true }
    }

    /// Writes what the throttle held back.
    func flush() { if pending { write() } }

    var json: JSON {
        var members: [(String, JSON)] = [("phase", phase.map { .string($0.rawValue) } ?? .null)]
        if let percent { members.append(("percent", .int(percent))) }
        members.append(("lines", .array(lines.map(JSON.string))))
        return .object(members)
    }

    private func write() {
        lastWrite = Monotonic.seconds()
        pending = false
        let value = json
        // Progress is advisory: a busy store must not fail the job.
        try? store.write { tx in try tx.setJobProgress(jobID, value) }
    }

    /// `Step 3/7 : RUN …` (the engine's builder) as the percent of steps done before this one.
    static func step(_ line: String) -> Int? {
        guard line.hasPrefix("Step ") else { return nil }
        let numbers = line.dropFirst(5).prefix { $0 != " " }.split(separator: "/").compactMap { Int($0) }
        guard numbers.count == 2, numbers[1] > 0, (1...numbers[1]).contains(numbers[0]) else { return nil }
        return (numbers[0] - 1) * 100 / numbers[1]
    }

    /// Printable ASCII and non-control Unicode, at most 200 UTF-8 bytes.
    static func printable(_ text: String) -> String {
        var out = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            guard scalar.value >= 0x20, scalar.value != 0x7F, !(0x80..<0xA0).contains(scalar.value) else { continue }
            bytes += String(scalar).utf8.count
            if bytes > 200 { break }
            out.unicodeScalars.append(scalar)
        }
        while out.first == " " { out.removeFirst() }
        while out.last == " " { out.removeLast() }
        return out
    }
}

@available(*, unavailable)
extension JobProgress: Sendable {}
