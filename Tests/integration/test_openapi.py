"""The API reference: a valid OpenAPI 3.1 document, and the live stack conforms to it."""
import os
import subprocess
import sys

from conftest import ROOT

SPEC = os.path.join(ROOT, "docs", "openapi.json")


def test_spec_is_valid():
    out = subprocess.run([sys.executable, "-m", "openapi_spec_validator", SPEC], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_schemathesis_against_live_stack(stack):
    st = [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"]
    out = subprocess.run([*st, "run", SPEC, "--url", stack.url(""), "-H", f"X-Api-Key: {stack.api_key}", "--tls-verify", "false",
                          "--checks", "all", "--max-examples", "40", "--seed", "1"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
