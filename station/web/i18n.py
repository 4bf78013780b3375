"""Every string a page shows comes from a catalog: Simplified Chinese first, English second.

The shared catalog (``station/web/i18n/<lang>.json``) holds what every page uses; each
router keeps its own catalog beside its templates (``<router>/i18n/<lang>.json``).
A key missing in a language falls back to Chinese, then shows the key itself, so a
missing translation is visible rather than a crash.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS = ("zh", "en")
DEFAULT = "zh"
WEB = Path(__file__).resolve().parent


def catalog_dirs() -> list[Path]:
    return [WEB / "i18n", *sorted(p for p in WEB.glob("*/i18n") if p.is_dir())]


def _domain_names(lang: str) -> dict[str, str]:
    """Item and sitting-kind names live with their domain; pages reach them as item.<id>, kind.<id>."""
    from pe_station.items import ITEMS
    from station.sittings import KINDS

    pick = 0 if lang == "zh" else 1
    names = {f"item.{k}": v[pick] for k, v in ITEMS.items()}
    names.update({f"kind.{k}": v[pick] for k, v in KINDS.items()})
    return names


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = _domain_names(lang)
    for folder in catalog_dirs():
        path = folder / f"{lang}.json"
        if path.exists():
            merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def pick_lang(query: str | None, cookie: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGS:
            return candidate
    return DEFAULT


def translator(lang: str):
    primary, fallback = catalog(lang), catalog(DEFAULT)

    def t(key: str, **values) -> str:
        text = primary.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t
