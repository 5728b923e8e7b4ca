public import PeonJSON

extension DockerClient {
    /// Follows `GET /events` for containers carrying `labels`, handing each event to `handler`
    /// until it returns false or `keepGoing` turns false (checked at least once a second).
    public func followEvents(
        labels: [String], since: Int64? = nil, keepGoing: @escaping () -> Bool, handler: (JSON) -> Bool
    ) throws(DockerError) {
        var query = [
            ("filters", JSON.object([("type", ["container"]), ("label", .array(labels.map(JSON.string)))]).text)
        ]
        if let since { query.append(("since", "\(since)")) }
        var lines = LineBuffer()
        try stream("GET", "/events", query: query, keepGoing: keepGoing) { chunk in
            for line in lines.feed(chunk) {
                guard let event = try? JSON.parse(line) else { continue }
                if !handler(event) { return false }
            }
            return true
        }
    }
}
