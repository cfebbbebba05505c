"""The persistent apertium pipelines behind ApertiumBackend: format conversion, reuse, restarts, determinism, cleanup."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from augment import ApertiumBackend, BackTranslationConfig, apertium_available, make_backend
from augment.apertium import deformat, reformat

needs_apertium = pytest.mark.skipif(
    not (apertium_available("eng-spa") and apertium_available("spa-eng") and shutil.which("apertium-wblank-mode")),
    reason="apertium with apertium-eng-spa not installed (apt-get install apertium apertium-eng-spa)",
)
needs_destxt = pytest.mark.skipif(
    not (shutil.which("apertium-destxt") and shutil.which("apertium-retxt")), reason="apertium not installed"
)

TRICKY = [
    "",
    "q",
    "a~b",
    "~x",
    "a ~ b",
    "a ~",
    "a\fb",
    "a\u00a0b",
    "a \n\n",
    "a\n\n",
    "\n\nlead",
    "  lead",
    " lead",
    "trail ",
    "a\r\n\r\nb",
    "a \t b",
    "x\n \nb",
    "[]",
    "a\\",
    "$1 <b> @me {x} ^y/z",
    "Hello {{customer_name}}, thanks!\n\nWe will call you.",
    "#NW-48213 cost $129.99 * 2 | ok",
]
BANKING = [
    "I am still waiting on my card?",
    "What can I do if my card still hasn't arrived after 2 weeks?",
    "I have been waiting over a week. Is the card still coming?",
    "Can I track my card while it is in the process of delivery?",
    "How do I know if I will get my card, or if it is lost?",
    "When did you send me my new card?",
    "Do you have info about the card on delivery?",
    "What do I do if I still have not received my new card?",
    "Does the package with my card have tracking?",
    "I ordered my card but it still isn't here",
    "Why has my new card still not come?",
    "I still haven't received my card after two weeks, is it lost?",
]
# apertium-tagger retags unknown words ("ATM") after it meets an ambiguity class its model lacks ("a lot of")
POISON = "If there isn't a lot of money left, will it automatically top-up money?"
TARGET = ["How is my ATM deposit not available yet?", "can you help me to take a quick look at the ATM deposit?"]


def _destxt(text: str) -> str:
    return subprocess.run(["apertium-destxt"], input=text.encode(), capture_output=True, check=True).stdout.decode()


def _retxt(stream: str) -> str:
    return subprocess.run(["apertium-retxt"], input=stream.encode(), capture_output=True, check=True).stdout.decode()


def _fuzz(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("ab .,?!\n\n\r\t ~$/<>@[]\\^{}*#é") + ["  ", "\n\n", "word"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(n)]


def test_reformat_undoes_deformat() -> None:
    for text in TRICKY + _fuzz(300):
        assert reformat(deformat(text)) == text, repr(text)


@needs_destxt
def test_deformat_and_reformat_match_apertium() -> None:
    for text in TRICKY + _fuzz(150, seed=1):
        assert deformat(text) == _destxt(text), repr(text)
        assert reformat(deformat(text)) == _retxt(_destxt(text)), repr(text)


@needs_apertium
def test_processes_persist_across_batches_and_close_leaves_nothing() -> None:
    backend = ApertiumBackend(workers=2, unit=4)
    first = backend.round_trip(BANKING, [0] * len(BANKING))
    assert all(first), first
    pids = backend.pool.pids
    assert len(pids) > 8 and all(psutil.pid_exists(p) for p in pids)
    assert backend.round_trip(BANKING[:5], [0] * 5) == first[:5]
    assert backend.pool.pids == pids  # the same processes served the second batch
    assert all(d.started == 1 for d in backend.pool.directions)
    taggers = [pid for d in backend.pool.directions for pid in d.tagger_pids]
    assert len(taggers) >= 2 * len(BANKING) // 4  # one tagger per unit and direction, each already reaped
    backend.close()
    for pid in pids + taggers:
        assert not psutil.pid_exists(pid), pid  # ended and waited for: no process left, no zombie
    assert backend.pool.pids == []


@needs_apertium
def test_a_killed_process_is_restarted() -> None:
    backend = ApertiumBackend(workers=1, unit=6)
    try:
        expected = backend.round_trip(BANKING, [0] * len(BANKING))
        forward = backend.pool.directions[0]
        victim = forward.chains[1].procs[3].pid  # a transfer stage of eng-spa
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
        assert backend.round_trip(BANKING, [0] * len(BANKING)) == expected
        assert forward.started == 2 and victim not in backend.pool.pids
    finally:
        backend.close()


@needs_apertium
def test_a_failed_unit_gives_none_for_its_texts_only_and_a_timeout_does_not_hang(tmp_path: Path) -> None:
    backend = ApertiumBackend(workers=1, unit=4, timeout=3.0)
    try:
        expected = backend.round_trip(BANKING, [0] * len(BANKING))
        backward = backend.pool.directions[1]
        real = backward.tagger
        assert real is not None
        count = tmp_path / "count"
        flaky = f'n=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}; [ "$n" = 1 ] && exit 3; exec "$@"'
        backward.tagger = ["sh", "-c", flaky, "tagger", *real]  # the second unit's tagger fails
        out = backend.round_trip(BANKING, [0] * len(BANKING))
        assert out[:4] == expected[:4] and out[4:8] == [None] * 4 and out[8:] == expected[8:]
        assert backward.started == 2  # restarted after the failed unit

        backward.tagger = ["sleep", "30"]  # a stage that never answers
        t0 = time.monotonic()
        assert backend.round_trip(BANKING[:4], [0] * 4) == [None] * 4
        assert time.monotonic() - t0 < 25
        backward.tagger = real
        assert backend.round_trip(BANKING[:4], [0] * 4) == expected[:4]
    finally:
        backend.close()


@needs_apertium
def test_output_does_not_depend_on_workers_calls_or_what_ran_before() -> None:
    texts = BANKING * 2 + TARGET
    one = ApertiumBackend(workers=1, unit=8)
    two = ApertiumBackend(workers=2, unit=8)
    try:
        reference = one.round_trip(texts, [0] * len(texts))
        assert all(reference)
        assert two.round_trip(texts, [0] * len(texts)) == reference
        # the same units split over different calls, in another order, after a text that changes apertium-tagger
        two.round_trip([POISON], [0])
        later = two.round_trip(texts[16:], [0] * len(texts[16:]))
        first = two.round_trip(texts[:16], [0] * 16)
        assert first + later == reference
        fresh = ApertiumBackend(workers=1, unit=8)
        try:
            assert fresh.round_trip(TARGET, [0, 0]) == two.round_trip(TARGET, [0, 0])
        finally:
            fresh.close()
    finally:
        one.close()
        two.close()


@needs_apertium
def test_config_reaches_the_backend() -> None:
    backend = make_backend(BackTranslationConfig(backend="apertium", workers=3, apertium_unit=16))
    assert isinstance(backend, ApertiumBackend) and backend.workers == 3 and backend.unit == 16
    backend.close()


@needs_apertium
def test_nothing_left_running_after_the_augment_stage() -> None:
    from test_augment import _frame

    from augment import Augment, AugmentConfig

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    stage = Augment(AugmentConfig(augmenters=["backtranslation"], backtranslation={"backend": "apertium"}), seed=3)
    out = stage(_frame())
    assert "backtranslation" in set(out.kept["aug_kind"].drop_nulls())
    assert {p.pid for p in me.children(recursive=True)} - before  # the pipelines are up between batches
    stage.close()
    assert {p.pid for p in me.children(recursive=True)} - before == set()


@needs_apertium
def test_texts_no_process_can_take_are_skipped_alone() -> None:
    backend = ApertiumBackend(workers=1)
    try:
        out = backend.round_trip(["bad \ud800 text", "nul\0inside", "", "The dog runs."], [0] * 4)
        assert out[:3] == [None, None, None] and isinstance(out[3], str) and out[3]
    finally:
        backend.close()
