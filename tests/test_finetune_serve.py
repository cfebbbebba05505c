"""`tuneprep generate` and `tuneprep serve` on a tiny model trained here; the server is called over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ft_builders import make_data_dir

from finetune import FinetuneConfig, train
from finetune.generate import Sampling, chat_prompt, complete, load, text_prompt
from flows.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {"n_embd": 32, "block_size": 64, "batch_size": 4, "max_steps": 40, "lr": 1e-2, "eval_every": 0}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    data = make_data_dir(root / "data", augmented=False)
    cfg = FinetuneConfig(**TRAIN, generate_n=0, device="cpu", num_threads=1)
    train(data, root / "model", cfg, log=lambda _: None)
    return root / "model"


def test_chat_prompt_has_one_bos_and_ends_at_the_assistant_marker(model_dir):
    _, tok = load(model_dir, "cpu")
    ids = chat_prompt(tok, [{"role": "user", "content": "where is the mat ?"}])
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.convert_ids_to_tokens(ids[-1]) == "<|assistant|>"
    assert tok.bos_token_id not in text_prompt(tok, "the cat sat")


def test_batched_generation_equals_one_at_a_time(model_dir):
    model, tok = load(model_dir, "cpu")
    prompts = [chat_prompt(tok, [{"role": "user", "content": q}]) for q in ("where is the mat ?", "and the dog ?")]
    prompts.append(text_prompt(tok, "the cat sat on the mat . then the cat"))
    greedy = Sampling(max_new_tokens=8)
    together = complete(model, tok, prompts, greedy, batch_size=3)
    alone = [complete(model, tok, [p], greedy)[0] for p in prompts]
    assert [c.text for c in together] == [c.text for c in alone]
    assert all(c.finish_reason in ("stop", "length") and c.completion_tokens <= 8 for c in together)


def test_generate_command(model_dir, capsys):
    assert main(["generate", str(model_dir), "where is the mat ?", "--chat", "--max-new-tokens", "8"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", str(model_dir), "where is the mat ?", "--chat", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out == first  # greedy by default: the same answer
    args = ["generate", str(model_dir), "the cat", "--do-sample", "--temperature", "1.5", "--seed", "3"]
    assert main([*args, "--max-new-tokens", "6"]) == 0
    sampled = capsys.readouterr().out
    assert main([*args, "--max-new-tokens", "6"]) == 0
    assert capsys.readouterr().out == sampled  # seeded sampling repeats
    assert main(["generate", str(model_dir.parent / "missing"), "hi"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "flows.cli", "serve", str(model_dir), "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(
        [*cmd, "--max-tokens-cap", "32"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not start within 120 s")
        time.sleep(0.5)
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_health(server):
    body = server.get("/health").json()
    assert body["status"] == "ok" and body["context"] == 64 and body["max_tokens"] == 32


def test_chat_completion(server):
    r = server.post(
        "/v1/chat/completions",
        json={
            "model": "x",
            "messages": [{"role": "user", "content": "where is the mat ?"}],
            "max_tokens": 8,
            "temperature": 0,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 8 or choice["finish_reason"] == "stop"
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    again = server.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "where is the mat ?"}], "max_tokens": 8, "temperature": 0},
    )
    assert again.json()["choices"][0]["message"] == choice["message"]  # temperature 0 is greedy


def test_completion(server):
    r = server.post("/v1/completions", json={"prompt": "the cat sat on", "max_tokens": 5, "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and isinstance(body["choices"][0]["text"], str)
    assert body["usage"]["completion_tokens"] <= 5


@pytest.mark.parametrize(
    ("path", "payload", "says"),
    [
        ("/v1/chat/completions", {"max_tokens": 4}, "messages"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 33}, "at most 32"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, "temperature"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}, "stream"),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, "last message"),
        ("/v1/completions", {"prompt": ""}, "prompt"),
        ("/v1/completions", {"prompt": "the cat " * 40, "max_tokens": 30}, "context of 64 tokens"),
    ],
)
def test_bad_requests_get_a_clear_400(server, path, payload, says):
    r = server.post(path, json=payload)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and says in error["message"]


def test_malformed_json_is_a_400(server):
    r = server.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
