"""The one bilingual refusal every package raises: what happened and what to do, in
Simplified Chinese first and English second.

The command line prints it (``str()`` is the Chinese line, a newline, the English line) and
exits with ``exit_code``; the station's pages get it as JSON from one exception handler
(``answer()``: ``{"error": code, "zh", "en"}`` with ``status``). Nobody splits its text
back into languages: they read the fields.

A project error class derives from it and keeps its own name, so ``except SittingError``
still works; a class says its default ``code``, ``status`` and ``exit_code`` once. Without
``en`` the one text stands for both languages (it is printed once).
"""
from __future__ import annotations


def _join(said: str, fix: str, stop: str, space: str, ends: str) -> str:
    """"Said" then "fix" as one text, with a full stop between them unless "said" has one."""
    if not (said and fix):
        return said or fix
    said = said.rstrip()
    return f"{said}{space if said.endswith(tuple(ends)) else stop}{fix}"


def _restore(cls, args: tuple, fields: dict) -> "Refusal":
    refusal = cls.__new__(cls)
    Exception.__init__(refusal, *args)
    refusal.__dict__.update(fields)
    return refusal


class Refusal(Exception):
    code = "refused"     # a short word a script or a page can test
    status = 409         # a request the station cannot take now; 400 is bad input
    exit_code = 2        # bad usage or bad input (DESIGN.md's exit codes); 1: the job failed

    def __init__(self, zh: str, en: str = "", fix_zh: str = "", fix_en: str = "", *,
                 code: str | None = None, status: int | None = None):
        super().__init__(zh, en)
        self.zh, self.en, self.fix_zh, self.fix_en = zh, en or zh, fix_zh, fix_en or fix_zh
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    @classmethod
    def of(cls, exc: BaseException, where: str = "", **kw):
        """``exc``'s words under this class (its code, status and exit code, or ``kw``'s),
        after ``where`` ("file: "). An error from outside the project has one text for both
        languages."""
        if isinstance(exc, Refusal):
            return cls(where + exc.zh, where + exc.en, fix_zh=exc.fix_zh, fix_en=exc.fix_en, **kw)
        return cls(where + str(exc), where + str(exc), **kw)

    @property
    def text_zh(self) -> str:
        """What happened and what to do, in Chinese."""
        return _join(self.zh, self.fix_zh, "。", "", "。！？；：，.!?;:")

    @property
    def text_en(self) -> str:
        return _join(self.en, self.fix_en, ". ", " ", ".!?;:")

    def __str__(self) -> str:
        zh, en = self.text_zh, self.text_en
        return zh if zh == en else f"{zh}\n{en}"

    def __reduce__(self):
        # Subclasses take other arguments (TakeError's code first): copy and pickle by fields.
        return _restore, (type(self), self.args, dict(self.__dict__))

    def answer(self) -> dict:
        """The JSON a page reads (``doc.zh`` / ``doc.en``; ``doc.error`` is the code)."""
        return {"error": self.code or "refused", "zh": self.text_zh, "en": self.text_en}
