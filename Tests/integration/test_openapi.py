"""The API reference: a valid OpenAPI 3.1 document, and the live stack conforms to it."""
import os
import subprocess
import sys

from conftest import ROOT

SPEC = os.path.join(ROOT, "docs", "openapi.json")


def test_spec_is_valid():
    out = subprocess.run([sys.executable, "-m", "openapi_spec_validator", SPEC], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def schemathesis(stack, *args):
    st = [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"]
    return subprocess.run([*st, "run", SPEC, "--url", stack.url(""), "-H", f"X-Api-Key: {stack.api_key}", "--tls-verify", "false",
                           "--max-examples", "30", "--seed", "1", *args],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "NO_COLOR": "1"})


def test_schemathesis_against_live_stack(stack):
    # Creating servers depends on each plan's required settings, which no schema can state; a cron
    # expression's meaning, a zone in the tz database and a webhook URL's host neither: those
    # operations skip only the "schema-valid request accepted" check; everything else runs every check.
    # createKey (an expiry must be in the future) and listAudit (a `since` must be a real date) likewise,
    # and addSchedule / createWebhook (a real zone, a reachable URL).
    creates = ["--include-operation-id", "createServerWebUI", "--include-operation-id", "serverAction",
               "--include-operation-id", "createKey", "--include-operation-id", "listAudit",
               "--include-operation-id", "addSchedule", "--include-operation-id", "createWebhook"]
    rest = [a.replace("--include", "--exclude") for a in creates]
    # use_after_free pairs DELETE /server/backup/<uid> (the backup's id in the body, as the API
    # defines it) with GET /server/backups/<uid>, the server's list, which rightly stays: a false
    # positive of its path heuristics. Deleted backups leaving the list is tested in test_backups.py.
    for args in ([*rest, "--checks", "all", "--exclude-checks", "use_after_free"], [*creates, "--checks", "all", "--exclude-checks", "positive_data_acceptance"]):
        out = schemathesis(stack, *args)
        assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
