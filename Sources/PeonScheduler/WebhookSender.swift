import Crypto
import Logging
import PeonCore
import PeonCurl
import PeonJSON
import PeonStore
import PeonSystem
import Synchronization

extension Scheduler {
    /// Sender threads: deliveries to this many hooks are in flight at once.
    static let webhookSenders = 4
    /// Hooks looked at per round.
    static let webhookBatch = 64
    /// Hooks a sender is delivering to now, across the sender threads: at most one delivery per
    /// hook is in flight, so each hook gets its events in order while others go on.
    static let webhooksInFlight = Mutex<Set<String>>([])

    /// One of `webhookSenders` threads that deliver due webhook deliveries from the outbox: a
    /// receiver that hangs until its timeout holds one sender and its own hook's later events,
    /// never other hooks' (while a sender is free), a job or the tick. Each attempt has a 5 s
    /// connect and 10 s total timeout, never follows a redirect, and is recorded; failures retry
    /// after 1 s, 5 s, 30 s, 2 min and 10 min, then the delivery has failed.
    func webhookLoop(_ sender: Int) {
        while !Self.stopping {
            do {
                let store = try Store(path: configuration.databasePath)
                let curl = CurlEasy()
                while !Self.stopping {
                    if try !deliverNext(store: store, curl: curl) { Monotonic.sleep(0.25) }
                }
            } catch {
                logger.warning("webhook sender failed, retrying", metadata: ["webhook.sender": "\(sender)", "error": "\(error)"])
                Monotonic.sleep(1)
            }
        }
    }

    /// Claims a hook that has a due delivery and no delivery in flight, and sends its oldest due
    /// one; false when there was nothing to claim.
    func deliverNext(store: Store, curl: CurlEasy) throws -> Bool {
        let hooks = try store.read { tx in try tx.hooksWithDueDeliveries(now: WallClock.now(), limit: Self.webhookBatch) }
        for hook in hooks where !Self.stopping {
            guard Self.webhooksInFlight.withLock({ $0.insert(hook).inserted }) else { continue }
            defer { _ = Self.webhooksInFlight.withLock { $0.remove(hook) } }
            // Read again under the claim: another sender may have delivered it since the listing.
            guard
                let (delivery, url, secret) = try store.read({ tx in try tx.dueDeliveries(now: WallClock.now(), limit: 1, webhook: hook) })
                    .first
            else { continue }
            let outcome = send(delivery, url: url, secret: secret, curl: curl)
            // Cut short by SIGTERM: left pending, sent again after the restart.
            if Self.stopping { return true }
            let now = WallClock.now()
            let retryAt = outcome.delivered ? nil : WebhookRetry.delay(afterAttempts: delivery.attempts + 1).map { now + $0 }
            try store.write { tx in
                try tx.recordDelivery(
                    delivery.id, status: outcome.status, error: outcome.error, delivered: outcome.delivered, retryAt: retryAt, now: now)
            }
            if !outcome.delivered {
                logger.warning(
                    retryAt == nil ? "webhook delivery failed, giving up" : "webhook delivery failed, retrying",
                    metadata: [
                        "webhook.id": "\(delivery.webhookID)", "delivery.id": "\(delivery.id)",
                        "http.status": "\(outcome.status.map(String.init) ?? "none")",
                    ])
            }
            return true
        }
        return false
    }

    /// One attempt: a 2xx is delivered; anything else (or no answer) is a failure to retry.
    func send(_ delivery: DeliveryRecord, url: String, secret: String, curl: CurlEasy) -> (
        delivered: Bool, status: Int?, error: String?
    ) {
        let body = Array(delivery.body.utf8)
        let timestamp = String(WallClock.now())
        var headers = ["Content-Type: application/json", "X-Peon-Event: \(delivery.event)", "X-Peon-Delivery: \(delivery.id)"]
        if !WebhookRequest.isDiscord(url) {
            headers += [
                "X-Peon-Timestamp: \(timestamp)", "X-Peon-Signature: sha256=\(Self.signature(body: body, secret: secret))",
            ]
        }
        let target: WebhookTarget
        do {
            target = try WebhookTarget.check(url, allow: configuration.webhookAllow)
        } catch {
            return (false, nil, error.description)
        }
        var request = CurlRequest(
            method: "POST", url: url, headers: headers, body: body,
            limits: TransferLimits(connectTimeoutMilliseconds: 5000, totalTimeoutMilliseconds: 10_000, maximumBytes: 64 * 1024),
            followRedirects: false)
        request.resolve = [target.pin]
        do {
            // Streamed so SIGTERM ends a slow receiver's transfer within about a second; the body is not kept.
            let response = try curl.stream(request, keepGoing: { !Self.stopping }) { _ in true }
            let ok = (200..<300).contains(response.status)
            return (ok, response.status, ok ? nil : "The receiver answered HTTP \(response.status).")
        } catch {
            return (false, nil, "\(error)")
        }
    }

    /// Hex HMAC-SHA256 of the body with the webhook's secret (`X-Peon-Signature: sha256=<hex>`).
    static func signature(body: [UInt8], secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
