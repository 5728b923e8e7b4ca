import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// The plan catalog: `GET /plans`, `PUT /plans` (refresh), `GET /plan/<game_uid>`.
enum PlanRoutes {
    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/plans", scope: .read) { _, context, _, _ in
            let entries = try context.store.read { tx in try tx.listedPlans() }
            return .json(.array(entries.map(\.json)))
        }

        router.on("GET", "/api/v1/plan/:game_uid", scope: .read) { request, context, parameters, _ in
            let uid = try GameUID(validating: parameters["game_uid"])
            guard let text = try context.store.read({ tx in try tx.planDocument(uid) }) else {
                throw HTTPError(status: 404, code: "plan.not_found", message: "Could not get the settings for [\(uid)]")
            }
            let plan = try Plan(document: JSON.parse(text), expectedGameUID: uid)
            switch request.queryItem("detail") {
            case nil, "false": return .json(plan.settingsJSON)
            case "true":
                // Additive, for forms (the console's): which settings are required, and null defaults
                // as null; PEON's flat form cannot say either.
                return .json([
                    "game_uid": .string(uid.rawValue), "description": plan.settingsJSON["description"] ?? "",
                    "settings": .array(
                        plan.settings.filter { $0.key != "STEAM_ID" }.map {
                            [
                                "name": .string($0.key), "required": .bool($0.required),
                                "default": $0.defaultValue.map(JSON.string) ?? .null,
                                "label": $0.label.map(JSON.string) ?? .null, "type": .string($0.inputType ?? "text"),
                                "options": .array($0.options.map(JSON.string)),
                            ]
                        }),
                ])
            default: throw HTTPError(status: 400, code: "request.invalid", message: "detail must be true or false.")
            }
        }

        router.on("PUT", "/api/v1/plans", scope: .admin) { _, context, _, _ in
            do {
                let report = try PlanCatalog.refresh(
                    store: context.store, plansDir: context.configuration.plansDir, plansURL: context.configuration.plansURL,
                    plansSHA256: context.configuration.plansSHA256, dataDir: context.configuration.dataDir, curl: { context.curl },
                    now: WallClock.now())
                context.logger.info(
                    "plans refreshed",
                    metadata: [
                        "plans.added": "\(report.added.count)", "plans.updated": "\(report.updated.count)",
                        "plans.removed": "\(report.removed.count)", "plans.failed": "\(report.failures.count)",
                    ])
                return .json(report.json)
            } catch PlanCatalog.RefreshError.indexUnavailable(let url, let error) {
                throw HTTPError(
                    status: 502, code: "plans.index_unavailable",
                    message: "Could not download the plans index from \(url): \(error). The catalog is unchanged.",
                    extra: [("failed", [PlanFailure(source: url, gameUID: nil, error: "\(error)").json])])
            } catch PlanCatalog.RefreshError.archiveRefused(let url, let reason) {
                throw HTTPError(
                    status: 422, code: "plans.archive_refused",
                    message: "The plans archive from \(url) was refused: \(reason). The catalog is unchanged.",
                    extra: [("failed", [PlanFailure(source: url, gameUID: nil, error: reason).json])])
            } catch PlanCatalog.RefreshError.nothingValid(let failures) {
                throw HTTPError(
                    status: 422, code: "plans.none_valid", message: "No valid plan was found. The catalog is unchanged.",
                    extra: [("failed", .array(failures.map(\.json)))])
            }
        }
    }
}
