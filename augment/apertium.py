"""Persistent apertium pipelines in null-flush mode, the engine of :class:`augment.backtranslate.ApertiumBackend`.

``apertium eng-spa`` starts a dozen processes that load their transducers (~0.3 s of CPU) on every call. Here
each direction's pipeline (``apertium-wblank-mode -z``) is started once and serves every batch: a unit of texts
is written followed by a NUL, every stage flushes at the NUL and passes it on, and the unit's translation is read
back up to it. Within a unit, texts are separated by a superblank (``[ZZSEP]``), which every stage copies through
verbatim and which text cannot forge (deformatting escapes ``[``), so translations split back aligned to their
texts; a unit that does not is dropped whole, never misaligned. apertium's ``txt`` format conversion
(apertium-destxt, apertium-retxt) is done here in Python, because apertium-destxt drops the NULs.

apertium-tagger keeps state from one text to the next, even across NULs: on a word whose ambiguity class its
model has not seen (``a lot of`` as adj/det), ``find_similar_ambiguity_class`` assigns the similar class it found
*into* the model's open class (it holds a reference), and the open class is what unknown words get from then on.
So the same sentence can be tagged differently after different texts. The pipeline is therefore cut around the
tagger: the analyser before it and the transfer and generation after it stay up, and each unit goes through a
fresh tagger process (~6 ms of CPU). A text's translation then depends only on its unit's texts, never on which
process, worker or batch ran it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

MODE_DIRS = (Path("/usr/share/apertium/modes"), Path("/usr/local/share/apertium/modes"))
SEPARATOR = "[ZZSEP]"  # a superblank between a unit's texts: passed through verbatim, text cannot forge it (escaped)

_BLANKS = re.compile(r"[ \t\r\n~]+")
_ESCAPE = re.compile(r"[$/<>@\[\\\]^{}]")
_PARAGRAPH = re.compile(r"\n\r?\n")
_REFORMAT = re.compile(r"\\(.)|\.\[\]|\[((?:\\.|[^\]\\])*)\]", re.S)
_UNESCAPE = re.compile(r"\\(.)", re.S)


class PipelineFailed(RuntimeError):
    """A pipeline died, timed out or sent back a different number of texts than it was given."""


def _escape(text: str) -> str:
    return _ESCAPE.sub(r"\\\g<0>", text)


def deformat(text: str) -> str:
    """apertium-destxt: escape the stream's special characters, wrap blanks other than one space in superblanks,
    and put a sentence end (``.[]``) before a paragraph break and at the end, so paragraphs are sentences."""
    out: list[str] = []
    pos = 0
    for m in _BLANKS.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        run = m.group()
        if m.end() == len(text) or _PARAGRAPH.search(run):
            out.append(".[]")
        out.append(" " if run == " " else f"[{run}]")
        pos = m.end()
    if pos < len(text) or not text:
        out.append(_escape(text[pos:]) + ".[]")
    return "".join(out)


def reformat(stream: str) -> str:
    """apertium-retxt: drop the added sentence ends, unwrap superblanks, unescape."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1)
        return _UNESCAPE.sub(r"\1", m.group(2) or "")

    return _REFORMAT.sub(one, stream)


def mode_file(pair: str) -> Path | None:
    """The installed ``<pair>.mode`` (``$APERTIUM_DATADIR/modes`` first, as the apertium script looks)."""
    dirs = [Path(os.environ["APERTIUM_DATADIR"]) / "modes"] if os.environ.get("APERTIUM_DATADIR") else []
    for d in [*dirs, *MODE_DIRS]:
        if (d / f"{pair}.mode").is_file():
            return d / f"{pair}.mode"
    return None


def pipeline_commands(pair: str, mark_unknown: bool = False) -> list[list[str]]:
    """The pair's null-flush pipeline as argv lists (what ``apertium -z [-u] <pair>`` runs after the deformatter)."""
    mode = mode_file(pair)
    if mode is None:
        raise FileNotFoundError(f"apertium mode {pair} is not installed")
    text = subprocess.run(
        ["apertium-wblank-mode", "-z", str(mode)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    args = {"$1": "-g" if mark_unknown else "-n", "$2": None}  # generator marks; tagger option (none)
    commands: list[list[str]] = [[]]
    for token in shlex.split(text):
        if token == "|":
            commands.append([])
        elif token in args:
            if args[token]:
                commands[-1].append(args[token])  # type: ignore[arg-type]
        else:
            commands[-1].append(token)
    if not all(commands):
        raise ValueError(f"cannot read the pipeline of {mode}: {text!r}")
    return commands


class _Chain:
    """Processes piped one into the next, in their own process group.

    With ``split``, a thread splits the last one's output at NULs into ``items`` (None once it ends);
    without, the caller reads ``stdout`` itself.
    """

    def __init__(self, commands: Sequence[Sequence[str]], split: bool = True) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.items: queue.Queue[bytes | None] = queue.Queue()
        try:
            for argv in commands:
                prev = self.procs[-1] if self.procs else None
                self.procs.append(
                    subprocess.Popen(
                        list(argv),
                        stdin=prev.stdout if prev else subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        process_group=self.procs[0].pid if prev else 0,
                    )
                )
                if prev is not None and prev.stdout is not None:
                    prev.stdout.close()
        except OSError:
            self.close()
            raise
        self.stdout = self.procs[-1].stdout
        self.reader = threading.Thread(target=self._read, daemon=True) if split else None
        if self.reader is not None:
            self.reader.start()

    @property
    def pgid(self) -> int:
        return self.procs[0].pid

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _read(self) -> None:
        assert self.stdout is not None
        rest = b""
        try:
            while chunk := self.stdout.read1(1 << 16):
                *done, rest = (rest + chunk).split(b"\0")
                for item in done:
                    self.items.put(item)
        except (OSError, ValueError):
            pass
        self.items.put(None)

    def write(self, data: bytes) -> None:
        stdin = self.procs[0].stdin
        try:
            assert stdin is not None
            stdin.write(data)
            stdin.flush()
        except (OSError, ValueError) as e:
            raise PipelineFailed(f"{self.procs[0].args[0]} stopped reading: {e}") from e

    def read(self, timeout: float) -> bytes:
        """The next NUL-terminated item; PipelineFailed when the chain ended, failed or said nothing in time."""
        try:
            item = self.items.get(timeout=timeout)
        except queue.Empty:
            raise PipelineFailed(f"no output for {timeout:.0f} s") from None
        if item is None:
            self.items.put(None)
            raise PipelineFailed(f"pipeline ended (exit codes {[p.poll() for p in self.procs]})")
        return item

    def close(self, grace: float = 5.0) -> None:
        """End every process: EOF first, then SIGKILL to the group; each is waited for (no zombies)."""
        if self.procs and self.procs[0].stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.procs[0].stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.pgid, signal.SIGKILL)
                p.wait()
        for p in self.procs:
            if p.stdout is not None:
                with contextlib.suppress(OSError, ValueError):
                    p.stdout.close()
        if self.reader is not None:
            self.reader.join(timeout=grace)


class Direction:
    """One translation direction: persistent analyser and transfer chains, a fresh tagger per unit between them.

    Text streams through: a thread copies the analyser's output into the current unit's tagger as it comes,
    and the tagger writes straight into the transfer chain; at the unit's NUL the tagger's input is closed, it
    flushes (one NUL) and exits, and the next unit gets a new one.
    """

    def __init__(self, pair: str, timeout: float) -> None:
        self.pair, self.timeout = pair, timeout
        commands = pipeline_commands(pair)
        cut = next((i for i, c in enumerate(commands) if Path(c[0]).name == "apertium-tagger"), None)
        if cut is None:  # no HMM tagger in this pair: the whole pipeline stays up
            self.head, self.tagger, self.tail = commands, None, []
        else:
            self.head, self.tagger, self.tail = commands[:cut], commands[cut], commands[cut + 1 :]
        self.chains: list[_Chain] = []
        self.tagger_pids: list[int] = []
        self.started = 0
        self._pump: threading.Thread | None = None

    @property
    def pids(self) -> list[int]:
        return [pid for c in self.chains for pid in c.pids]

    @property
    def out(self) -> _Chain:
        return self.chains[-1]

    def _start(self) -> None:
        if self.tagger is None:
            self.chains = [_Chain(self.head)]
        else:
            self.chains = [_Chain(self.head, split=False), _Chain(self.tail)]
            self._pump = threading.Thread(target=self._tag_units, args=tuple(self.chains), daemon=True)
            self._pump.start()
        self.started += 1

    def _tag_units(self, head: _Chain, tail: _Chain) -> None:
        """Copy the analyser's output into one fresh tagger per unit; a tagger that fails ends the pipeline."""
        assert head.stdout is not None and tail.procs[0].stdin is not None and self.tagger is not None
        tagger: subprocess.Popen[bytes] | None = None
        try:
            while chunk := head.stdout.read1(1 << 16):
                while chunk:
                    if tagger is None:
                        tagger = subprocess.Popen(
                            self.tagger,
                            stdin=subprocess.PIPE,
                            stdout=tail.procs[0].stdin.fileno(),
                            stderr=subprocess.DEVNULL,
                            process_group=tail.pgid,
                        )
                        self.tagger_pids.append(tagger.pid)
                    assert tagger.stdin is not None
                    part, nul, chunk = chunk.partition(b"\0")
                    tagger.stdin.write(part)
                    if nul:
                        tagger.stdin.close()
                        if tagger.wait(timeout=self.timeout) != 0:
                            raise PipelineFailed(f"apertium-tagger exited {tagger.returncode}")
                        tagger = None
        except (OSError, ValueError, PipelineFailed, subprocess.TimeoutExpired):
            self._kill()  # the unit in flight fails now, not after the timeout; a blocked write is released
            tail.items.put(None)
        finally:
            if tagger is not None:
                with contextlib.suppress(OSError, ValueError):
                    tagger.stdin.close()  # type: ignore[union-attr]
                try:
                    tagger.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    tagger.kill()
                    tagger.wait()

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Translate one unit of texts, flushed once; restarts the pipeline after a failure or a misalignment."""
        data = SEPARATOR.join(deformat(t) for t in texts).encode("utf-8") + b"\0"
        if any(p.poll() is not None for c in self.chains for p in c.procs):
            self.close()  # a process died since the last unit (killed, out of memory): start afresh
        if not self.chains:
            self._start()
        watchdog = threading.Timer(self.timeout, self._kill)  # a stage that hangs must not hang the run
        watchdog.start()
        try:
            self.chains[0].write(data)
            parts = self.out.read(self.timeout).decode("utf-8", errors="replace").split(SEPARATOR)
            if len(parts) != len(texts):
                raise PipelineFailed(f"{self.pair} returned {len(parts)} texts for {len(texts)}")
            return [reformat(p) for p in parts]
        except PipelineFailed:
            self.close()
            raise
        finally:
            watchdog.cancel()

    def _kill(self) -> None:
        for c in self.chains:
            with contextlib.suppress(OSError):
                os.killpg(c.pgid, signal.SIGKILL)

    def close(self) -> None:
        chains, self.chains = self.chains, []
        for c in chains:  # the analyser first: its EOF ends the pump and the tagger, then the transfer chain
            c.close()
            if self._pump is not None and c is chains[0]:
                self._pump.join(timeout=10)
        self._pump = None


class _Worker:
    """A pair of directions run by two threads, so the way back of one unit overlaps the way out of the next."""

    def __init__(self, source: str, pivot: str, timeout: float) -> None:
        self.forward = Direction(f"{source}-{pivot}", timeout)
        self.backward = Direction(f"{pivot}-{source}", timeout)


UnitResult = list[str] | None


class ApertiumPool:
    """``workers`` process pairs translating units of ``unit`` texts there and back; see the module docstring."""

    def __init__(self, source: str, pivot: str, workers: int = 2, unit: int = 128, timeout: float = 600.0) -> None:
        if workers < 1 or unit < 1:
            raise ValueError("workers and unit must be at least 1")
        self.source, self.pivot, self.workers, self.unit, self.timeout = source, pivot, workers, unit, timeout
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close_workers, self._workers)  # also at interpreter exit, if close() was forgotten

    @property
    def pids(self) -> list[int]:
        """Pids of the persistent processes now running (taggers are per unit and already gone)."""
        return [pid for w in self._workers for d in (w.forward, w.backward) for pid in d.pids]

    @property
    def directions(self) -> list[Direction]:
        return [d for w in self._workers for d in (w.forward, w.backward)]

    def round_trip(self, texts: Sequence[str], on_error: Callable[[str], object] | None = None) -> list[str | None]:
        """Each text translated to the pivot and back (None where its unit failed), in order."""
        units = [list(texts[i : i + self.unit]) for i in range(0, len(texts), self.unit)]
        if not units:
            return []
        with self._lock:
            while len(self._workers) < min(self.workers, len(units)):
                self._workers.append(_Worker(self.source, self.pivot, self.timeout))
            results: list[UnitResult] = [None] * len(units)
            todo: queue.Queue[int] = queue.Queue()
            for k in range(len(units)):
                todo.put(k)
            threads = []
            for worker in self._workers[: len(units)]:
                handoff: queue.Queue[tuple[int, UnitResult] | None] = queue.Queue(maxsize=1)
                threads += [
                    threading.Thread(target=self._out, args=(worker, units, todo, handoff, on_error)),
                    threading.Thread(target=self._back, args=(worker, handoff, results, on_error)),
                ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        out: list[str | None] = []
        for unit, result in zip(units, results, strict=True):
            out += result if result is not None else [None] * len(unit)
        return out

    @staticmethod
    def _run(direction: Direction, texts: list[str], on_error: Callable[[str], object] | None) -> list[str] | None:
        try:
            return direction.translate(texts)
        except (PipelineFailed, OSError, ValueError) as e:  # UnicodeError is a ValueError
            if on_error is not None:
                on_error(f"apertium {direction.pair}: {e}; its unit of {len(texts)} texts is skipped")
            return None

    def _out(
        self,
        worker: _Worker,
        units: list[list[str]],
        todo: queue.Queue[int],
        handoff: queue.Queue[tuple[int, UnitResult] | None],
        on_error: Callable[[str], object] | None,
    ) -> None:
        try:
            while True:
                try:
                    k = todo.get_nowait()
                except queue.Empty:
                    return
                handoff.put((k, self._run(worker.forward, units[k], on_error)))
        finally:
            handoff.put(None)

    def _back(
        self,
        worker: _Worker,
        handoff: queue.Queue[tuple[int, UnitResult] | None],
        results: list[UnitResult],
        on_error: Callable[[str], object] | None,
    ) -> None:
        while (item := handoff.get()) is not None:
            k, pivot = item
            if pivot is not None:
                results[k] = self._run(worker.backward, pivot, on_error)

    def close(self) -> None:
        with self._lock:
            _close_workers(self._workers)


def _close_workers(workers: list[_Worker]) -> None:
    for w in workers:
        w.forward.close()
        w.backward.close()
    workers.clear()
