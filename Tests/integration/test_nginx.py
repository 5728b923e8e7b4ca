"""nginx in front: TLS, HTTP/2, redirects, CORS, JSON errors, body and rate limits."""
import subprocess

import requests

ORIGIN = "https://ui.example.com"


def test_tls_versions_and_http2(stack):
    for flags, ok in ((["--tlsv1.2", "--tls-max", "1.2"], True), (["--tlsv1.3"], True), (["--tlsv1.1", "--tls-max", "1.1"], False)):
        code, _ = stack.curl(*flags, "-H", f"X-Api-Key: {stack.api_key}", stack.url("/api/v1/orchestrator"))
        assert (code == 200) == ok, flags
    out = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version}", "-H", f"X-Api-Key: {stack.api_key}",
                          stack.url("/api/v1/plans")], capture_output=True, text=True)
    assert out.stdout == "2"


def test_http_redirects_to_https(stack):
    r = requests.get(f"http://127.0.0.1:{stack.http_port}/api/v1/plans?x=1", allow_redirects=False)
    assert r.status_code == 308
    assert r.headers["Location"] == f"https://127.0.0.1:{stack.https_port}/api/v1/plans?x=1"


def test_preflight_answered_by_nginx(stack):
    r = stack.request("OPTIONS", "/api/v1/plans", key=None, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-Api-Key, Content-Type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Api-Key" in r.headers["Access-Control-Allow-Headers"]
    assert "Content-Type" in r.headers["Access-Control-Allow-Headers"]
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]


def test_cors_only_for_configured_origins_and_on_errors(stack):
    ok = stack.request("GET", "/api/v1/plans", headers={"Origin": ORIGIN})
    assert ok.headers.get("Access-Control-Allow-Origin") == ORIGIN
    denied = stack.request("GET", "/api/v1/plans", headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    err = stack.request("GET", "/api/v1/plans", key=None, headers={"Origin": ORIGIN})
    assert err.status_code == 401 and err.headers.get("Access-Control-Allow-Origin") == ORIGIN
    pre = stack.request("OPTIONS", "/api/v1/plans", key=None, headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in pre.headers


def test_no_cors_by_default(make_stack):
    s = make_stack()
    r = s.request("OPTIONS", "/api/v1/plans", key=None, headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_star_when_asked(make_stack):
    s = make_stack(env={"PEON_CORS_ORIGINS": "*"})
    r = s.request("GET", "/api/v1/plans", headers={"Origin": "https://anything.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_unknown_routes_and_methods_are_json(stack):
    # "/" is the web console's page (test_console.py); every other unknown path is a JSON 404.
    for path in ("/api/v1/nope", "/api/v1/", "/index.html", "/api/v2/plans", "/console", "/favicon.ico"):
        r = stack.request("GET", path)
        assert r.status_code == 404, path
        assert r.json()["status"] == "error", path
    r = stack.request("DELETE", "/api/v1/plans")
    assert r.status_code == 405 and r.json()["code"] == "method.not_allowed"
    assert r.headers["Allow"] == "GET, PUT"
    r = stack.request("POST", "/api/v1/orchestrator")
    assert r.status_code == 405 and r.headers["Content-Type"] == "application/json"


def test_oversized_body_is_413_json(stack):
    r = stack.request("PUT", "/api/v1/plans", data=b"{" + b" " * (1 << 20) + b"}", headers={"Content-Type": "application/json", "Origin": ORIGIN})
    assert r.status_code == 413
    assert r.json()["code"] == "request.too_large"
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN


def test_rate_limit_answers_429_json(make_stack):
    s = make_stack(env={"PEON_RATE_LIMIT": "5", "PEON_RATE_BURST": "10", "PEON_CORS_ORIGINS": ORIGIN})
    codes = [s.request("GET", "/api/v1/plans", headers={"Origin": ORIGIN}) for _ in range(40)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and any(r.status_code == 200 for r in codes)
    assert limited[0].json()["code"] == "rate_limited"
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].headers["Access-Control-Allow-Origin"] == ORIGIN


def test_openapi_served(stack):
    r = requests.get(stack.url("/openapi.json"), verify=False)
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.1")


def test_requests_nginx_refuses_are_json_too(stack):
    code, body = stack.curl("--http1.1", "-H", f"X-Api-Key: {stack.api_key}", stack.url("/api/v1/plan/" + "a" * 20_000))
    assert code == 414 and b'"code":"request.uri_too_long"' in body
    # Far past the limit nginx may close before the client has sent everything (HTTP/1.1), or
    # reset the stream (HTTP/2): no answer at all then, but never a 500 or an HTML page.
    for version in ("--http1.1", "--http2"):
        code, body = stack.curl(version, "-H", f"X-Api-Key: {stack.api_key}", stack.url("/api/v1/plan/" + "a" * 100_000))
        assert code in (0, 400, 414) and b"<html" not in body
    code, body = stack.curl("-X", "TRACE", stack.url("/api/v1/plans"))
    assert code == 405 and b'"status":"error"' in body
    code, body = stack.curl(stack.url("/api/v1/plan/%00"))
    assert code == 400 and b'"code":"request.invalid"' in body
