"""The YAML front matter of a Model Zoo readme.md: written, and read back strictly.

Caffe's scripts/download_model_binary.py reads `caffemodel`, `caffemodel_url` and `sha1`
from it. The writer double-quotes every value (valid YAML, and a sha1 made only of
digits stays a string); the reader accepts the flat `key: value` form zoo readmes use
(plain, single- or double-quoted scalars) and says which line of which file is wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from zoo.errors import ZooError

REQUIRED = ("caffemodel", "caffemodel_url", "sha1")
KEY_ORDER = ("name", "caffemodel", "caffemodel_url", "license", "sha1", "caffe_commit",
             "gist_id", "description")
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def render_readme(fields: dict[str, str], body: str) -> str:
    """readme.md text: front matter (known keys first, in the zoo's usual order), then body."""
    keys = [k for k in KEY_ORDER if k in fields] + [k for k in fields if k not in KEY_ORDER]
    lines = ["---"] + [f"{key}: {json.dumps(str(fields[key]))}" for key in keys] + ["---"]
    return "\n".join(lines) + "\n\n" + body.rstrip("\n") + "\n"


def _scalar(text: str, where: str) -> str:
    text = text.strip()
    if text.startswith('"'):
        try:
            value, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as e:
            raise ZooError(f"{where}: unterminated or malformed double-quoted value") from e
        rest = text[end:].strip()
        if not isinstance(value, str) or (rest and not rest.startswith("#")):
            raise ZooError(f"{where}: unexpected text after the quoted value")
        return value
    if text.startswith("'"):
        match = re.fullmatch(r"'((?:[^']|'')*)'\s*(#.*)?", text)
        if not match:
            raise ZooError(f"{where}: unterminated single-quoted value")
        return match.group(1).replace("''", "'")
    if text[:1] in ("[", "{", "|", ">", "&", "*", "!"):
        raise ZooError(f"{where}: nested or block YAML values are not zoo front matter")
    return re.sub(r"\s+#.*$", "", text)


def parse_readme(path: Path | str) -> dict[str, str]:
    """The front matter of a zoo readme.md as strings; ZooError for anything malformed."""
    path = Path(path)
    if path.is_dir():
        path = path / "readme.md"
    if not path.is_file():
        raise ZooError(f"{path}: no readme.md (not a Model Zoo folder)")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ZooError(f"{path}: line 1 must be '---' to open the YAML front matter")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ZooError(f"{path}: the front matter opened on line 1 is never closed "
                       "by a '---' line") from None
    fields: dict[str, str] = {}
    for number in range(1, end):
        line, where = lines[number], f"{path}:{number + 1}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match or line[:1].isspace():
            raise ZooError(f"{where}: expected 'key: value', found {line.strip()[:60]!r}")
        key, value = match.group(1), match.group(2) or ""
        if key in fields:
            raise ZooError(f"{where}: key {key!r} appears twice")
        fields[key] = _scalar(value, where)
    check_fields(fields, path)
    return fields


def check_fields(fields: dict[str, str], path: Path | str) -> None:
    """The keys the downloader needs, a 40-hex sha1 and a caffemodel name inside the folder."""
    missing = [k for k in REQUIRED if not fields.get(k)]
    if missing:
        raise ZooError(f"{path}: front matter lacks {', '.join(missing)} "
                       f"(required: {', '.join(REQUIRED)})")
    if not _SHA1.match(fields["sha1"]):
        raise ZooError(f"{path}: sha1 {fields['sha1']!r} is not 40 lower-case hex digits")
    name = fields["caffemodel"]
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ZooError(f"{path}: caffemodel {name!r} must be a file name, not a path")
    if not re.match(r"^(https?|file)://", fields["caffemodel_url"]):
        raise ZooError(f"{path}: caffemodel_url {fields['caffemodel_url']!r} is not an "
                       "http(s) or file URL")
