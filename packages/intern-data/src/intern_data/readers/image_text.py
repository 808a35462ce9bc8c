"""Image-text pairs: a folder of images with same-stem ``.txt`` captions, or a CSV/TSV table.

- Folder (``root/<split>/``, or ``folder=``): every image with a ``<stem>.txt`` beside it; each
  non-empty line of the text file is one caption. An image without a text file is an error
  (``skip_uncaptioned=True`` leaves it out and counts it in ``reader.uncaptioned``).
- Table (``root/<split>.csv`` / ``.tsv``, or ``table=``): comma- or tab-separated by extension.
  If the first row names a path column (``path``, ``filepath``, ``file_name``, ``image``, ...)
  and a caption column (``caption``, ``text``, ``title``), it is a header; otherwise columns 0 and
  1 are path and caption. ``path_column`` / ``caption_column`` pick columns by name. Paths are
  relative to the table's folder (``image_root`` overrides). Rows with the same path are one sample
  whose ``text`` lists their captions in row order; samples come in order of first appearance.

The folder form is used when ``root/<split>/`` exists and no table is given.
"""

from __future__ import annotations

import csv
from pathlib import Path

from intern_data.readers.base import (
    MissingDataError,
    Reader,
    ReaderError,
    check_unique_keys,
    inside,
    is_image_file,
    make_key,
    read_image,
    require_file,
)
from intern_data.schema import Sample

PATH_COLUMNS = ("path", "filepath", "file_name", "filename", "image", "image_path")
CAPTION_COLUMNS = ("caption", "text", "title", "captions")


def _read_captions(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ReaderError(f"{path}: caption file is not UTF-8 ({err})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


class ImageTextReader(Reader):
    """Image-text pairs -> samples with ``image`` and ``text`` (a list of captions).

    Args:
        root: the dataset folder.
        split: the split: folder ``root/<split>/`` or table ``root/<split>.csv|.tsv``.
        table: a CSV/TSV file to read instead of the default places.
        folder: a folder of images + ``.txt`` files to read instead of ``root/<split>/``.
        image_root: folder that table paths are relative to; default the table's folder.
        path_column, caption_column: header names of the two columns in a table.
        skip_uncaptioned: in the folder form, leave out images without a ``.txt`` file.
        source: dataset name (default: the root folder's name).
        skip_corrupt: skip and count unreadable images instead of raising.
    """

    reader_name = "image_text"

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        table: Path | str | None = None,
        folder: Path | str | None = None,
        image_root: Path | str | None = None,
        path_column: str | None = None,
        caption_column: str | None = None,
        skip_uncaptioned: bool = False,
        source: str | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(root, split, source=source, skip_corrupt=skip_corrupt)
        self.uncaptioned = 0
        if table is None and folder is None:
            if (self.root / split).is_dir():
                folder = self.root / split
            else:
                found = [
                    self.root / f"{split}{ext}"
                    for ext in (".csv", ".tsv")
                    if (self.root / f"{split}{ext}").is_file()
                ]
                if not found:
                    raise MissingDataError(
                        f"no image-text data for split {split!r}: looked for the folder {self.root / split} "
                        f"and the tables {self.root / split}.csv and .tsv"
                    )
                table = found[0]
        if table is not None:
            self._records = self._from_table(Path(table), image_root, path_column, caption_column)
            where = Path(table)
        else:
            where = Path(folder)  # type: ignore[arg-type]
            self._records = self._from_folder(where, skip_uncaptioned)
        if not self._records:
            raise ReaderError(f"{where}: no image-text pairs found")
        check_unique_keys([k for k, _, _ in self._records], where)

    def _from_folder(self, folder: Path, skip_uncaptioned: bool) -> list[tuple[str, Path, list[str]]]:
        records = []
        for path in sorted(p for p in folder.rglob("*") if is_image_file(p)):
            txt = path.with_suffix(".txt")
            if not txt.is_file():
                if skip_uncaptioned:
                    self.uncaptioned += 1
                    continue
                raise ReaderError(
                    f"{path}: no caption file {txt.name} beside it (skip_uncaptioned=True skips it)"
                )
            captions = _read_captions(txt)
            if not captions:
                raise ReaderError(f"{txt}: caption file is empty")
            records.append((make_key(self.split, path.relative_to(folder)), path, captions))
        return records

    def _from_table(
        self, table: Path, image_root: Path | str | None, path_column: str | None, caption_column: str | None
    ) -> list[tuple[str, Path, list[str]]]:
        require_file(table, "image-text table")
        base = Path(image_root) if image_root is not None else table.parent
        delimiter = "\t" if table.suffix.lower() in (".tsv", ".tab") else ","
        with table.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
        rows = [r for r in rows if any(c.strip() for c in r)]
        if not rows:
            raise ReaderError(f"{table}: table is empty")
        header = [c.strip().lower() for c in rows[0]]
        path_names = (path_column.lower(),) if path_column else PATH_COLUMNS
        caption_names = (caption_column.lower(),) if caption_column else CAPTION_COLUMNS
        path_idx = next((header.index(n) for n in path_names if n in header), None)
        caption_idx = next((header.index(n) for n in caption_names if n in header), None)
        if path_idx is not None and caption_idx is not None:
            rows = rows[1:]
            first_line = 2
        elif path_column or caption_column:
            raise ReaderError(f"{table}: header {rows[0]} lacks the column {path_column or caption_column!r}")
        else:
            path_idx, caption_idx, first_line = 0, 1, 1
        captions: dict[str, list[str]] = {}
        for n, row in enumerate(rows, first_line):
            if len(row) <= max(path_idx, caption_idx):
                raise ReaderError(f"{table}:{n}: expected a path and a caption, got {row}")
            path, caption = row[path_idx].strip(), row[caption_idx].strip()
            if not path or not caption:
                raise ReaderError(f"{table}:{n}: empty path or caption")
            inside(base, path, f"{table}:{n}")
            captions.setdefault(path, []).append(caption)
        return [(make_key(self.split, p), base / p, texts) for p, texts in captions.items()]

    def _load(self, record: tuple[str, Path, list[str]]) -> Sample:
        key, path, captions = record
        sample = self._base(key, *read_image(path, self.max_pixels))
        sample["text"] = list(captions)
        return sample
