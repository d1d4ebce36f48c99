"""The quickstart's OpenAPI document, checked by a real validator.

Run by `.ci/run` as `python check_quickstart.py path/to/quickstart`. It starts the
quickstart on a free loopback port (offline: the mock provider), fetches
`/openapi.json`, validates it as OpenAPI 3.1 with `openapi-spec-validator`, checks
that the typed endpoints are documented from their Rust types, then lets schemathesis
send a bounded number of generated requests from the document (deterministic, 30 per
operation): no answer may be a 5xx, and every answer must match the document (status,
headers, body schema, SSE events). `positive_data_acceptance` is left out: the schema
takes any string as a model name, but the app refuses a model it has no price or
provider for with a 422, by design.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from openapi_spec_validator import validate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def main(binary: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(PORT=str(port), HOST="127.0.0.1")
    # Its durable runs go to a file of this check's own, not the working directory.
    runs = tempfile.TemporaryDirectory(prefix="fastagentic-openapi-")
    env["FASTAGENTIC_RUNS_PATH"] = os.path.join(runs.name, "runs.sqlite3")
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                sys.exit(f"the quickstart exited: {process.stderr.read().decode()}")
            try:
                get_json(f"{base}/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("the quickstart did not answer /health within 30 s")
                time.sleep(0.05)
        document = get_json(f"{base}/openapi.json")
        validate(document)  # raises, naming the problem, on an invalid document
        print(f"openapi.json: valid OpenAPI {document['openapi']}, {len(document['paths'])} paths")
        chat = document["paths"]["/chat"]["post"]
        request = chat["requestBody"]["content"]["application/json"]["schema"]
        schemas = document["components"]["schemas"]
        name = request["$ref"].rsplit("/", 1)[-1]
        if "prompt" not in schemas[name]["properties"]:
            sys.exit(f"/chat's input schema lacks `prompt`: {schemas[name]}")
        if "text/event-stream" not in chat["responses"]["200"]["content"]:
            sys.exit("/chat does not document its stream")
        print("openapi.json: /chat documented from ChatRequest / ChatResponse")
        schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
        result = subprocess.run(
            [
                schemathesis, "run", f"{base}/openapi.json",
                "--exclude-checks", "positive_data_acceptance",
                "--max-examples", "30", "--generation-deterministic", "--workers", "1",
                "--no-color",
            ],
            capture_output=True, text=True, timeout=600,
        )
        summary = [line for line in result.stdout.splitlines() if "generated" in line or "issues" in line.lower()]
        print("schemathesis: " + "; ".join(line.strip(" =") for line in summary))
        if result.returncode != 0:
            sys.exit(f"schemathesis found problems:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_quickstart.py path/to/quickstart")
    main(sys.argv[1])
