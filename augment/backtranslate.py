"""Back-translation (source -> pivot -> source) for paraphrases, with an offline and a neural backend.

Protected spans are swapped for opaque mask tokens before translation and put
back afterwards; an output that lost, duplicated or invented a mask is a :class:`~augment.base.Rejected`
variant (``aug_placeholder_lost``), dropped by the stage with what went wrong.
"""

from __future__ import annotations

import logging
import re
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from augment.base import Augmenter, Output, Rejected, Spans, sub_seed
from augment.config import BackTranslationConfig
from augment.gates import PLACEHOLDER_LOST
from augment.resources import apertium_available
from augment.text import FactRules

log = logging.getLogger(__name__)

MASK = "ZZPH{}"
_MASK_RE = re.compile(r"ZZPH(\d+)")
_SENTENCE_GAP = re.compile(r"((?<=[.!?])\s+|\s*\n\s*)")
_APERTIUM_MARKS = re.compile(r"(?<![\w#@*])[#@*](?=\w)")


class BackendUnavailable(RuntimeError):
    """No back-translation backend can run with this configuration on this machine."""


class TranslationBackend(ABC):
    """Translates a batch of texts to the pivot language and back."""

    name: ClassVar[str]

    @abstractmethod
    def round_trip(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        """One back-translation per text (None on failure); ``seeds`` matter only to sampling backends."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Free processes or models."""


class ApertiumBackend(TranslationBackend):
    """Rule-based apertium, one process per direction per batch (start-up costs ~0.3 s, a sentence ~2 ms).

    Texts are joined with a separator paragraph that apertium copies through
    unchanged (a blank line is a sentence boundary to its tagger and transfer,
    so texts cannot influence each other). If the separator count does not come
    back intact, texts are translated one process each instead. Deterministic:
    every variant of a text is the same.
    """

    name = "apertium"
    SEPARATOR = "\n\n§§§\n\n"

    def __init__(self, source: str = "eng", pivot: str = "spa", timeout: float = 600.0) -> None:
        self.source, self.pivot, self.timeout = source, pivot, timeout
        for pair in (f"{source}-{pivot}", f"{pivot}-{source}"):
            if not apertium_available(pair):
                raise BackendUnavailable(
                    f"apertium pair {pair} is not installed: apt-get install apertium apertium-{source}-{pivot}"
                )

    def translate(self, texts: Sequence[str], pair: str) -> list[str] | None:
        """Translate many texts with one apertium process; None when the process fails."""
        data = self.SEPARATOR.join(texts)
        try:
            proc = subprocess.run(
                ["apertium", "-u", pair],
                input=data.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("apertium %s failed: %s", pair, e)
            return None
        if proc.returncode != 0:
            log.warning("apertium %s exited %s: %s", pair, proc.returncode, proc.stderr.decode(errors="replace")[:300])
            return None
        parts = proc.stdout.decode("utf-8", errors="replace").split(self.SEPARATOR)
        if len(parts) != len(texts):
            if len(texts) == 1:
                return None
            log.info("apertium separator lost (%d parts for %d texts); translating one by one", len(parts), len(texts))
            singles = [self.translate([t], pair) for t in texts]
            return [s[0] if s else "" for s in singles]
        return parts

    def round_trip(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        todo = [i for i, t in enumerate(texts) if t.strip() and self.SEPARATOR.strip() not in t]
        out: list[str | None] = [None] * len(texts)
        if not todo:
            return out
        pivot = self.translate([texts[i].strip() for i in todo], f"{self.source}-{self.pivot}")
        back = self.translate(pivot, f"{self.pivot}-{self.source}") if pivot is not None else None
        if back is None:
            return out
        for i, text in zip(todo, back, strict=True):
            text = _APERTIUM_MARKS.sub("", text).strip()
            out[i] = text or None
        return out


def _split_sentences(text: str, max_chars: int) -> list[str]:
    """``[sentence, gap, sentence, …]``; over-long sentences are cut at commas/semicolons, then spaces."""
    parts = _SENTENCE_GAP.split(text)
    out: list[str] = []
    for k, part in enumerate(parts):
        if k % 2 or len(part) <= max_chars:
            out.append(part)
            continue
        pieces = re.split(r"(?<=[,;:])\s+|\s+", part)
        chunk = ""
        chunks: list[str] = []
        for piece in pieces:
            if chunk and len(chunk) + 1 + len(piece) > max_chars:
                chunks.append(chunk)
                chunk = piece
            else:
                chunk = f"{chunk} {piece}" if chunk else piece
        chunks.append(chunk)
        for c, chunk in enumerate(chunks):
            if c:
                out.append(" ")
            out.append(chunk)
    return out


class _GumbelSampler:
    """Sample each row from softmax(logits / T) with its own generator (Gumbel-max, argmax afterwards).

    Equivalent to ``do_sample=True, temperature=T``, but a row's draw does not
    depend on which other rows share its batch, so variants are the same for any
    batch size or length-bucketing.
    """

    def __init__(self, generators: list[Any], temperature: float) -> None:
        self.generators, self.temperature = generators, temperature

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        vocab = scores.shape[-1]
        uniform = torch.stack(
            [torch.rand(vocab, generator=g, device=g.device, dtype=torch.float32) for g in self.generators]
        ).to(scores.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
        return scores.float() / self.temperature + gumbel


class TransformersBackend(TranslationBackend):
    """Two seq2seq models (e.g. MarianMT en->de and de->en), loaded lazily from a name or local path.

    Texts are split into sentences, sorted by length and batched; each
    sentence's sampling seed derives from its record seed, so output does not
    depend on ``batch_size``. Runs on cuda when ``device="auto"`` finds one.
    """

    name = "transformers"

    def __init__(
        self,
        forward_model: str,
        backward_model: str,
        temperature: float = 0.8,
        max_length: int = 256,
        batch_size: int = 16,
        device: str = "auto",
    ) -> None:
        self.forward_model, self.backward_model = forward_model, backward_model
        self.temperature, self.max_length, self.batch_size = temperature, max_length, batch_size
        self.device_name = device
        self._loaded: dict[str, tuple[Any, Any]] = {}

    @property
    def device(self) -> str:
        import torch

        if self.device_name == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device_name

    def _load(self, name: str) -> tuple[Any, Any]:
        if name not in self._loaded:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name)
            model = AutoModelForSeq2SeqLM.from_pretrained(name).to(self.device).eval()
            self._loaded[name] = (tokenizer, model)
        return self._loaded[name]

    def generate(self, model_name: str, sentences: Sequence[str], seeds: Sequence[int]) -> list[str]:
        """Translate sentences with one model, batched by length, one sampling stream per sentence."""
        import torch
        from transformers import LogitsProcessorList

        tokenizer, model = self._load(model_name)
        order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i]), i))
        out = [""] * len(sentences)
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            enc = tokenizer(
                [sentences[i] for i in idx],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            ).to(self.device)
            generators = [torch.Generator(device=self.device).manual_seed(seeds[i] % (2**63)) for i in idx]
            with torch.inference_mode():
                ids = model.generate(
                    **enc,
                    do_sample=False,
                    num_beams=1,
                    max_length=self.max_length + 1,
                    logits_processor=LogitsProcessorList([_GumbelSampler(generators, self.temperature)]),
                )
            for i, text in zip(idx, tokenizer.batch_decode(ids, skip_special_tokens=True), strict=True):
                out[i] = text.strip()
        return out

    def round_trip(self, texts: Sequence[str], seeds: Sequence[int]) -> list[str | None]:
        pieces = [_split_sentences(t, self.max_length * 3) for t in texts]
        flat: list[tuple[int, int]] = [(t, k) for t, parts in enumerate(pieces) for k in range(0, len(parts), 2)]
        flat = [(t, k) for t, k in flat if pieces[t][k].strip()]
        sentences = [pieces[t][k] for t, k in flat]
        fwd_seeds = [sub_seed(seeds[t], f"fwd{k}") for t, k in flat]
        back_seeds = [sub_seed(seeds[t], f"back{k}") for t, k in flat]
        pivot = self.generate(self.forward_model, sentences, fwd_seeds)
        back = self.generate(self.backward_model, pivot, back_seeds)
        for (t, k), sentence in zip(flat, back, strict=True):
            pieces[t][k] = sentence
        return [
            ("".join(parts).strip() or None) if text.strip() else None
            for parts, text in zip(pieces, texts, strict=True)
        ]

    def close(self) -> None:
        self._loaded.clear()


def make_backend(cfg: BackTranslationConfig) -> TranslationBackend | None:
    """The backend ``cfg`` asks for; "auto" prefers configured models, then apertium. None for "none"."""
    if cfg.backend == "none":
        return None
    models = cfg.forward_model and cfg.backward_model
    if cfg.backend == "transformers" or (cfg.backend == "auto" and models):
        if not models:
            raise BackendUnavailable("backend 'transformers' needs forward_model and backward_model")
        return TransformersBackend(
            cfg.forward_model,  # type: ignore[arg-type]
            cfg.backward_model,  # type: ignore[arg-type]
            temperature=cfg.temperature,
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
            device=cfg.device,
        )
    if cfg.backend == "apertium" or apertium_available(f"{cfg.source}-{cfg.pivot}"):
        return ApertiumBackend(cfg.source, cfg.pivot)
    raise BackendUnavailable(
        "no back-translation backend: set forward_model/backward_model (local seq2seq models) "
        f"or install apertium (apt-get install apertium apertium-{cfg.source}-{cfg.pivot})"
    )


def mask_protected(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, list[str]]:
    """Replace each protected span by ``ZZPH<n>``; returns the masked text and the originals.

    Spans only a space apart ("Santa" "Clara", "almond" "milk") share one placeholder, so the
    translation cannot reorder or split the words of one fact.
    """
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and text[joined[-1][1] : start] in ("", " "):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    originals: list[str] = []
    out, pos = [], 0
    for start, end in joined:
        out += [text[pos:start], MASK.format(len(originals))]
        originals.append(text[start:end])
        pos = end
    out.append(text[pos:])
    return "".join(out), originals


def unmask(text: str, originals: Sequence[str]) -> str | None:
    """Put protected spans back; None when a mask went missing, got duplicated or invented."""
    found = [int(m) for m in _MASK_RE.findall(text)]
    if sorted(found) != list(range(len(originals))):
        return None
    return _MASK_RE.sub(lambda m: originals[int(m.group(1))], text)


def placeholder_problems(text: str, originals: Sequence[str]) -> str:
    """What went wrong with the placeholders of a translation, for the dropped variant's detail."""
    found = [int(m) for m in _MASK_RE.findall(text)]
    lost = [originals[k] for k in range(len(originals)) if k not in found]
    extra = sorted({k for k in found if found.count(k) > 1 or k >= len(originals)})
    parts = []
    if lost:
        parts.append("lost: " + ", ".join(repr(x) for x in lost[:5]))
    if extra:
        parts.append("repeated or invented: " + ", ".join(MASK.format(k) for k in extra[:5]))
    return "; ".join(parts)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(r"[ \t]+\n", "\n", text).strip()


class BackTranslator(Augmenter):
    """Paraphrase by translating to a pivot language and back through a :class:`TranslationBackend`."""

    kind = "backtranslation"

    def __init__(
        self,
        backend: TranslationBackend,
        keep_words: Sequence[str] = (),
        protect_names: Sequence[str] = (),
        rules: FactRules | None = None,
    ) -> None:
        super().__init__(keep_words, protect_names, rules)
        self.backend = backend

    def params(self) -> dict[str, Any]:
        b = self.backend
        out: dict[str, Any] = {"kind": self.kind, "backend": b.name}
        if isinstance(b, ApertiumBackend):
            out["pair"] = f"{b.source}-{b.pivot}-{b.source}"
        if isinstance(b, TransformersBackend):
            out.update(
                forward_model=b.forward_model,
                backward_model=b.backward_model,
                temperature=b.temperature,
                max_length=b.max_length,
            )
        return out

    def augment(self, texts: Sequence[str], seeds: Sequence[int], spans: Spans | None = None) -> list[Output]:
        batch = self.batch(texts, spans)
        masked = [
            mask_protected(t, batch.spans(i) if batch.usable[i] else self.protected(t)) for i, t in enumerate(texts)
        ]
        back = self.backend.round_trip([m for m, _ in masked], seeds)
        out: list[Output] = []
        for text, (_, originals), result in zip(texts, masked, back, strict=True):
            if result is None:
                out.append(None)
                continue
            lead = text[: len(text) - len(text.lstrip())]
            trail = text[len(text.rstrip()) :]
            restored = unmask(result, originals)
            if restored is None:  # the translation dropped or repeated a fact: reject it, with what went wrong
                out.append(
                    Rejected(lead + _tidy(result) + trail, PLACEHOLDER_LOST, placeholder_problems(result, originals))
                )
                continue
            out.append(lead + _tidy(restored) + trail)
        return out

    def close(self) -> None:
        self.backend.close()
