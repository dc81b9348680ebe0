"""A small OpenAI-compatible chat-completions client: retries, backoff, Retry-After, disk cache.

stdlib urllib only (no SDK dependency): the protocol is one POST, and we need control over what
is retried (429, 5xx, timeouts, dropped connections) and what is not (other 4xx, malformed
replies), plus a cache keyed by the request content so an interrupted run never pays twice.
The API key is sent in the Authorization header and appears nowhere else: every error text is
passed through `scrub` before it leaves this module.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from tunelab.io import atomic_write_json, sha256_json

RETRY_STATUS = {408, 409, 429}  # plus every 5xx


class ApiError(Exception):
    """A request that failed for good (after retries, or not retryable); message is key-free."""


@dataclass
class Reply:
    content: str
    usage: dict[str, int]
    cached: bool
    attempts: int


@dataclass
class ChatClient:
    base_url: str
    api_key: str | None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    cache_dir: Path | None = None

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def scrub(self, text: str) -> str:
        from tunelab.safety.secrets import redact

        if self.api_key:
            text = text.replace(self.api_key, "***")
        return redact(text)

    def complete(self, body: dict[str, Any]) -> Reply:
        key = sha256_json({"url": self.url, "body": body})  # the key is not part of the request content
        cached = self._cache_get(key)
        if cached is not None:
            return Reply(cached["content"], cached.get("usage", {}), True, 0)
        raw, attempts = self._post_with_retries(body)
        content, usage = parse_reply(raw)
        self._cache_put(key, {"content": content, "usage": usage})
        return Reply(content, usage, False, attempts)

    def _post_with_retries(self, body: dict[str, Any]) -> tuple[bytes, int]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = self._delay(attempt)
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return resp.read(), attempt + 1
            except urllib.error.HTTPError as exc:
                detail = _snippet(exc.read() if exc.fp else b"")
                last = f"HTTP {exc.code} {exc.reason}: {detail}"
                if exc.code not in RETRY_STATUS and exc.code < 500:
                    raise ApiError(self.scrub(last + _hint(exc.code))) from None
                wait = retry_after(exc.headers.get("Retry-After"), self.max_backoff_s) if exc.headers else None
                wait = self._delay(attempt) if wait is None else wait
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            if attempt < self.max_retries:
                time.sleep(wait)
        raise ApiError(self.scrub(f"gave up after {self.max_retries + 1} attempts; last error: {last}"))

    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * (2**attempt))

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged entry is just a miss
        return data if isinstance(data, dict) and isinstance(data.get("content"), str) else None

    def _cache_put(self, key: str, value: dict[str, Any]) -> None:
        path = self._cache_path(key)
        if path is not None:
            atomic_write_json(path, value)


def parse_reply(raw: bytes) -> tuple[str, dict[str, int]]:
    """(message content, usage token counts) of a chat-completions reply; ApiError when malformed."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(f"malformed reply (not JSON): {_snippet(raw)}") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ApiError(f"malformed reply (no choices[0].message.content): {_snippet(raw)}") from None
    if not isinstance(content, str):
        raise ApiError(f"malformed reply (content is {type(content).__name__}, not text)")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    counts = {
        k: int(usage[k])
        for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(usage.get(k), (int, float))
    }
    return content, counts


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    try:
        return max(0.0, min(cap, float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(cap, when.timestamp() - time.time()))


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


def _hint(code: int) -> str:
    if code in (401, 403):
        return " (check that baseline.api_key_env names the right variable and the key is valid)"
    if code == 404:
        return " (check baseline.base_url (it should end in /v1) and baseline.model)"
    return ""
