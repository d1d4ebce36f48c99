"""The official OpenAI Python SDK against the quickstart's front door.

Run by `.ci/run` as `python check_quickstart.py path/to/quickstart`; exits non-zero on the
first check that fails. It starts the quickstart twice on free loopback ports:

1. offline (no provider key: the mock answers): a whole answer, a stream with usage, a
   tool call round trip, our own 429 read back through the SDK's `RateLimitError`, and
   the `outage-drill` route's fallback;
2. with OpenAI and Anthropic keys whose base URLs point at a fake upstream started here,
   where OpenAI always answers 429 and Anthropic answers the recorded fixture: `smart`
   falls back across providers and the SDK gets Claude's answer in OpenAI's shape.

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "llm-wire"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quickstart:
    """The quickstart binary as a child process, on its own port."""

    def __init__(self, binary: str, env: dict[str, str]):
        self.port = free_port()
        child_env = {
            k: v
            for k, v in os.environ.items()
            if not k.endswith(("_API_KEY", "_BASE_URL"))
        }
        child_env.update(env, PORT=str(self.port), HOST="127.0.0.1")
        # Its durable runs go to a file of this check's own, not the working directory.
        self.runs = tempfile.TemporaryDirectory(prefix="fastagentic-sdk-")
        child_env["FASTAGENTIC_RUNS_PATH"] = os.path.join(self.runs.name, "runs.sqlite3")
        self.process = subprocess.Popen(
            [binary], env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the quickstart exited: {self.process.stderr.read().decode()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        sys.exit("the quickstart did not answer /health within 30 s")

    def client(self, **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="unused-here", **options)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def offline(binary: str) -> None:
    server = Quickstart(binary, {})
    try:
        client = server.client()
        models = [m.id for m in client.models.list()]
        check("smart" in models and "mock/gpt-4o-mini" in models, f"models listed: {models}")

        reply = client.chat.completions.create(
            model="mock/gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is a circuit breaker?"},
            ],
            max_completion_tokens=64,
            temperature=0.2,
        )
        check(reply.object == "chat.completion", "a whole answer is a chat.completion")
        check(bool(reply.choices[0].message.content), "it has text")
        check(reply.usage is not None and reply.usage.total_tokens > 0, "and usage")

        stream = client.chat.completions.create(
            model="mock/gpt-4o-mini",
            messages=[{"role": "user", "content": "Stream me a haiku"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check(len(chunks) > 2 and bool(text), f"a stream of {len(chunks)} chunks: {text!r}")
        check(chunks[-1].usage is not None and chunks[-1].choices == [], "usage comes last")

        tools = [
            {
                "type": "function",
                "function": {
                    "name": "clock",
                    "description": "The current time in UTC",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ]
        question = {"role": "user", "content": "What time is it?"}
        first = client.chat.completions.create(
            model="mock/gpt-4o-mini", messages=[question], tools=tools
        )
        calls = first.choices[0].message.tool_calls or []
        check(
            first.choices[0].finish_reason == "tool_calls" and calls[0].function.name == "clock",
            "the model asks for the clock",
        )
        second = client.chat.completions.create(
            model="mock/gpt-4o-mini",
            tools=tools,
            messages=[
                question,
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": calls[0].id, "content": "Sun, 06 Dec 2026 12:00:00 GMT"},
            ],
        )
        check(
            second.choices[0].finish_reason == "stop" and bool(second.choices[0].message.content),
            "and answers once it has the tool's result",
        )

        drill = client.chat.completions.create(
            model="outage-drill", messages=[{"role": "user", "content": "hi"}]
        )
        check(drill.model == "gpt-4o-mini", f"outage-drill fell back to {drill.model}")

        # The gateway allows 20 requests a minute per user: the SDK (told not to retry)
        # raises RateLimitError with our Retry-After before the 22nd.
        limited = server.client(max_retries=0)
        caught = None
        for _ in range(22):
            try:
                limited.chat.completions.create(
                    model="mock/gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    user="sdk-limit-check",
                )
            except openai.RateLimitError as err:
                caught = err
                break
        check(caught is not None, "our own limit raises openai.RateLimitError")
        headers = caught.response.headers
        retry_after = float(headers["retry-after"])
        retry_after_ms = float(headers["retry-after-ms"])
        check(0 < retry_after <= 60, f"Retry-After {retry_after} s")
        check(0 < retry_after_ms <= retry_after * 1000, f"retry-after-ms {retry_after_ms}")
        check(headers["x-should-retry"] == "true", "x-should-retry: true")
        check(caught.code == "rate_limit_exceeded", f"code {caught.code}")
        check(caught.type == "rate_limit_error", f"type {caught.type}")

        try:
            client.chat.completions.create(model="nope", messages=[question])
            check(False, "an unknown model is refused")
        except openai.NotFoundError as err:
            check(err.code == "model_not_found", "an unknown model is NotFoundError model_not_found")
    finally:
        server.stop()


class Upstream(BaseHTTPRequestHandler):
    """OpenAI always rate limited; Anthropic answers the recorded message."""

    calls: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's spelling)
        self.rfile.read(int(self.headers.get("content-length", "0")))
        Upstream.calls.append(self.path)
        if self.path.endswith("/chat/completions"):
            body = (FIXTURES / "openai_429.json").read_bytes()
            self.send_response(429)
            self.send_header("retry-after-ms", "10")
        elif self.path.endswith("/messages"):
            body = (FIXTURES / "anthropic_message.json").read_bytes()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def across_providers(binary: str) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    env = {
        "OPENAI_API_KEY": "sk-fake-openai",
        "OPENAI_BASE_URL": f"{base}/v1",
        "ANTHROPIC_API_KEY": "sk-ant-fake",
        "ANTHROPIC_BASE_URL": base,
    }
    server = Quickstart(binary, env)
    try:
        reply = server.client().chat.completions.create(
            model="smart", messages=[{"role": "user", "content": "Extract the receipt"}]
        )
        check(reply.model.startswith("claude-"), f"smart fell back across providers to {reply.model}")
        check("Green Tea" in (reply.choices[0].message.content or ""), "with Claude's answer")
        check(reply.usage.prompt_tokens == 406 and reply.usage.completion_tokens == 50, "and its usage")
        check(
            any(p.endswith("/chat/completions") for p in Upstream.calls)
            and any(p.endswith("/messages") for p in Upstream.calls),
            f"OpenAI was tried first, then Anthropic: {Upstream.calls}",
        )
    finally:
        server.stop()
        upstream.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_quickstart.py path/to/quickstart")
    print(f"openai SDK {openai.__version__}")
    offline(sys.argv[1])
    across_providers(sys.argv[1])
    print("all checks passed")
