"""Evaluation data: the built-in text, local files, and ``profiler data pull`` from public sources.

Every pulled file is checked against a pinned sha256 before it is used, so a changed upstream
file can never silently change a score. Any local file works too (``--file PATH``).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profiler import atomic
from profiler.errors import UserError
from profiler.paths import cache_dir

HTTP_TIMEOUT_S = 30
WIKITEXT_ROWS_URL = (
    "https://datasets-server.huggingface.co/rows?dataset=Salesforce%2Fwikitext"
    "&config=wikitext-2-raw-v1&split=test&offset={offset}&length={length}"
)
WIKITEXT_PAGE = 100  # the rows API's largest page


@dataclass(frozen=True)
class Dataset:
    name: str
    filename: str
    sha256: str
    urls: tuple[str, ...]
    description: str
    licence: str
    builder: str = "raw"  # "raw": the URL serves the file itself; "wikitext-rows": rebuilt from JSON rows


DATASETS = {
    "hellaswag": Dataset(
        name="hellaswag",
        filename="hellaswag_val_full.txt",
        sha256="d572539320eb2050e858ca34b495bbe2103e3b3f1391a9c3bcdf215b0bb93bd1",
        urls=(
            "https://raw.githubusercontent.com/klosax/hellaswag_text_data/main/hellaswag_val_full.txt",
        ),
        description="all 10,042 HellaSwag validation tasks in llama.cpp's 6-lines-per-task format",
        licence="MIT (HellaSwag, Zellers et al. 2019)",
    ),
    "wikitext2": Dataset(
        name="wikitext2",
        filename="wikitext-2-raw-test.txt",
        sha256="4f3e427e4aff23acff917a8a51aeae21bf12832256e26914c8fc250dcef4103c",
        urls=(WIKITEXT_ROWS_URL,),
        description="WikiText-2 raw test split (Salesforce/wikitext), non-empty lines joined with CRLF",
        licence="CC BY-SA 3.0 and GFDL (Merity et al. 2016)",
        builder="wikitext-rows",
    ),
}


@dataclass
class TextSource:
    """Where evaluation text came from, recorded with every quality result."""

    name: str
    path: str | None
    sha256: str
    n_bytes: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def datasets_dir() -> Path:
    return cache_dir() / "datasets"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def builtin_text_source() -> tuple[str, TextSource]:
    """CPython's own reference text (``pydoc_data.topics``): present on every machine."""
    from profiler.models.textdata import builtin_text

    text, name = builtin_text()
    raw = text.encode("utf-8")
    note = "built-in text: compare perplexities only between runs on this same Python version"
    return text, TextSource(name=name, path=None, sha256=_sha256(raw), n_bytes=len(raw), notes=[note])


def read_text_file(path: str | os.PathLike, name: str | None = None) -> tuple[str, TextSource]:
    """A UTF-8 file read as llama.cpp's ``-f`` reads it: whole, minus one trailing newline."""
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"text file not found: {p}") from None
    except IsADirectoryError:
        raise UserError(f"{p} is a directory, not a text file") from None
    except OSError as exc:
        raise UserError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p} is not UTF-8 text (bad byte at offset {exc.start})") from None
    if text.endswith("\n"):
        text = text[:-1]
    return text, TextSource(name=name or p.name, path=str(p), sha256=_sha256(raw), n_bytes=len(raw))


def dataset_path(name: str) -> Path | None:
    """The pulled copy of a named dataset, if present."""
    ds = DATASETS.get(name)
    if ds is None:
        return None
    target = datasets_dir() / ds.filename
    return target if target.exists() else None


def resolve_text(spec: str | None) -> tuple[str, TextSource]:
    """``None`` -> the built-in text; a dataset name -> its pulled copy; else a file path."""
    if spec is None:
        return builtin_text_source()
    if spec in DATASETS:
        path = dataset_path(spec)
        if path is None:
            raise UserError(f"dataset '{spec}' is not pulled yet; run: profiler data pull {spec} (or give a file path)")
        return read_text_file(path, name=spec)
    return read_text_file(spec)


# --------------------------------------------------------------------------- pulling


def _http_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "profiler-data-pull"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        return response.read()


def _fetch(url: str, get: Callable[[str], bytes]) -> bytes:
    try:
        return get(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        host = urllib.parse.urlsplit(url).netloc or url
        raise UserError(f"cannot download from {host} ({reason}); check the network, or download the file yourself and pass its path") from None


def _build_wikitext(url_template: str, get: Callable[[str], bytes]) -> bytes:
    """Page through the dataset-viewer rows API; keep non-empty lines, ending each with CRLF
    (the layout of the shared wikitext-2-raw-test.txt, which the pinned sha256 checks)."""
    parts: list[str] = []
    offset, total = 0, None
    while total is None or offset < total:
        page = json.loads(_fetch(url_template.format(offset=offset, length=WIKITEXT_PAGE), get))
        rows = page.get("rows") or []
        if not rows:
            break
        total = page.get("num_rows_total", offset + len(rows))
        for row in rows:
            line = row["row"]["text"]
            if line:
                parts.append(line[:-1] + "\r\n" if line.endswith("\n") else line + "\r\n")
        offset += len(rows)
    return "".join(parts).encode("utf-8")


def pull(name: str, force: bool = False, get: Callable[[str], bytes] = _http_get, progress=None) -> Path:
    """Download dataset ``name`` into the cache and check its sha256; returns the file."""
    ds = DATASETS.get(name)
    if ds is None:
        raise UserError(f"unknown dataset '{name}' (available: {', '.join(DATASETS)})")
    target = datasets_dir() / ds.filename
    if target.exists() and not force:
        if _sha256(target.read_bytes()) == ds.sha256:
            return target
        target.unlink()  # a corrupt copy is replaced, never used
    if progress:
        progress(f"fetching {ds.name}: {ds.description}")
    data = _build_wikitext(ds.urls[0], get) if ds.builder == "wikitext-rows" else _fetch(ds.urls[0], get)
    actual = _sha256(data)
    if actual != ds.sha256:
        raise UserError(
            f"{ds.name}: downloaded data has sha256 {actual[:12]}..., expected {ds.sha256[:12]}...; "
            "the upstream file changed or the download was altered - not saved"
        )
    with atomic.replacing_path(target) as partial:
        partial.write_bytes(data)
    return target
