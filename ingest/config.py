"""Settings for reading inputs: which fields hold what, and how politely to scrape."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tuneprep.settings import Settings


class LoadConfig(Settings):
    """Which fields hold what, for tabular and JSON sources (first present name wins)."""

    text_fields: list[str] = ["text", "content", "body", "document"]
    label_fields: list[str] = ["label", "category", "intent"]
    messages_fields: list[str] = ["messages", "conversation", "dialogue", "conversations"]
    # Instruction/response pairs become a two-turn chat (user: instruction [+ input], assistant: response).
    instruction_fields: list[str] = ["instruction", "prompt", "question", "query"]
    input_fields: list[str] = ["input", "context"]
    response_fields: list[str] = ["response", "output", "answer", "completion"]
    role_fields: list[str] = ["role", "speaker", "from", "author"]  # inside each message
    content_fields: list[str] = ["content", "text", "value", "message", "utterance"]
    # Lower-cased role names mapped onto system/user/assistant; anything else left over is a bad record.
    role_aliases: dict[str, str] = {
        "human": "user",
        "customer": "user",
        "client": "user",
        "prompter": "user",
        "gpt": "assistant",
        "bot": "assistant",
        "agent": "assistant",
        "ai": "assistant",
        "model": "assistant",
        "support": "assistant",
        "system_prompt": "system",
    }
    # A .json file is an array of objects, or an object holding that array under the first of these keys.
    json_list_keys: list[str] = ["data", "records", "rows", "items", "examples"]
    extensions: list[str] = [".txt", ".md", ".html", ".htm", ".jsonl", ".json", ".csv", ".parquet"]
    on_decode_error: Literal["quarantine", "replace"] = "quarantine"
    max_file_bytes: int = 50_000_000  # also caps a .gz file's decompressed size
    hub_cache_dir: str | None = None  # for hf:// inputs; None is datasets' normal cache (HF_DATASETS_CACHE)

    @field_validator("role_aliases")
    @classmethod
    def _aliases_name_known_roles(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: r for k, r in v.items() if r not in ("system", "user", "assistant")}
        if bad:
            raise ValueError(f"role_aliases must map onto system, user or assistant: {bad}")
        return {k.lower(): r for k, r in v.items()}


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("tuneprep")
    except PackageNotFoundError:
        v = "0"
    return f"tuneprep/{v} (+https://github.com/tuneprep/tuneprep)"


class ScrapeConfig(Settings):
    """Polite fetching of web pages: robots.txt, per-host rate limit, bounded retries, size and time caps.

    Pages come from ``urls``, from ``http(s)://`` entries in ``inputs`` and from ``sitemaps``
    (sitemap.xml, sitemap indexes, .xml.gz).
    """

    urls: list[str] = []
    sitemaps: list[str] = []
    rate_limit_s: float = Field(1.0, ge=0)  # least gap between requests to one host; Crawl-delay raises it
    connect_timeout_s: float = Field(10.0, gt=0)
    timeout_s: float = Field(30.0, gt=0)  # longest wait for any read
    deadline_s: float = Field(120.0, gt=0)  # one request, headers to last byte
    max_bytes: int = Field(5_000_000, gt=0)
    max_redirects: int = Field(5, ge=0)
    retries: int = Field(3, ge=0, le=10)  # on 5xx, 408, 429, timeouts and connection errors
    backoff_s: float = Field(1.0, ge=0)  # doubles with each retry
    max_backoff_s: float = Field(60.0, ge=0)  # also caps a Retry-After
    max_pages: int = Field(10_000, gt=0)
    user_agent: str = Field(default_factory=_user_agent)
    allowed_content_types: list[str] = ["text/html", "application/xhtml+xml", "text/plain"]
