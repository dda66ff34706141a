"""Cells that a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``+``, ``-``, ``@``):
exports write them with a leading apostrophe, which spreadsheets show as text, and imports
read that apostrophe away, so a value goes out and comes back as it was."""

FORMULA_STARTS = frozenset("=+-@\t\r")
QUOTE = "'"


def _formula_like(text: str) -> bool:
    """Starts with a formula character once any apostrophes before it are set aside."""
    return text.lstrip(QUOTE)[:1] in FORMULA_STARTS


def cell_escaped(text: str) -> str:
    """The text as a file should carry it: one more apostrophe before anything formula-like
    (a value that already starts with apostrophes keeps them all on the way back)."""
    return QUOTE + text if _formula_like(text) else text


def cell_unescaped(text: str) -> str:
    """The value a cell written by cell_escaped stands for."""
    return text[1:] if text[:1] == QUOTE and _formula_like(text) else text
