"""Strict readers for tab-separated files in GLUE's original layout.

GLUE's TSVs are read with plain ``line.split("\\t")`` (no quoting: the sentences contain quote
characters, exactly like ``csv.QUOTE_NONE``). Every problem — missing file, empty file, missing
column, a row with the wrong number of fields — raises one ``ValueError`` naming the file (and the
line) and the fix, never a half-read dataset. They are :class:`~asymlora.errors.UserError` (a
``ValueError``): a data file is the user's input, so the CLI reports them in one line with exit 2.
"""

from __future__ import annotations

from pathlib import Path

from asymlora.errors import UserError

LAYOUT = "GLUE's original TSV layout, see docs/tasks.md"


def read_rows(path: Path, columns: tuple[str, ...] | None, header: bool = True,
              n_fields: int | None = None) -> list[dict[str, str]]:
    """Rows of ``path`` as dicts.

    ``header=True``: the first line names the columns; every name in ``columns`` must be among them.
    ``header=False``: ``columns`` names the fields by position and every row must have exactly
    ``n_fields`` (default ``len(columns)``) fields.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found; put it there ({LAYOUT})")
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8") from None
    lines = [ln for ln in text.split("\n")]
    while lines and lines[-1].strip("\r") == "":
        lines.pop()
    lines = [ln.rstrip("\r") for ln in lines]
    if not lines:
        raise UserError(f"{path}: empty file; add a header and data rows ({LAYOUT})")
    if header:
        names = lines[0].split("\t")
        body, first = lines[1:], 2
        missing = [c for c in (columns or ()) if c not in names]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing}; the header has {names}: add the column ({LAYOUT})")
        if not body:
            raise UserError(f"{path}: header only, no data rows; add data rows to this split")
    else:
        names = list(columns or ())
        body, first = lines, 1
    width = n_fields if (not header and n_fields is not None) else len(names)
    rows = []
    for lineno, line in enumerate(body, start=first):
        fields = line.split("\t")
        if len(fields) != width:
            raise UserError(f"{path}: line {lineno} has {len(fields)} tab-separated fields, expected {width}; fix "
                            "that line (a tab inside a text field?)")
        rows.append(dict(zip(names, fields)))
    return rows
