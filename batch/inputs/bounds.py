"""An .xlsx file's parts measured before openpyxl loads them: a small file can unzip to gigabytes.

openpyxl holds every shared string in memory, and its XML parser holds a whole run of text
(or of whitespace) between two tags. So before the workbook is opened, its zip directory and
its parts are checked in one streaming pass, a block at a time:

* the shared strings at most SHARED_BYTES unzipped and SHARED_STRINGS strings;
* no text between two tags, in any part, longer than TEXT_RUN bytes (Excel keeps at most
  32,767 characters in a cell);
* no other part (workbook, styles, relations) over PART_BYTES unzipped.

Python's zipfile never unzips more than a part's declared size (it stops there and checks
the CRC), so the declared sizes bound what the reader can ever be handed.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from batch.errors import InputError

SHARED_BYTES = 256 * 2**20
SHARED_STRINGS = 4 * 2**20  # four columns of Excel's largest sheet, 1,048,576 rows
PART_BYTES = 64 * 2**20
TEXT_RUN = 2**20
_BLOCK = 2**20
_STRING = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s/>]")


def check_xlsx(path: Path) -> None:
    """Refuse (InputError) an .xlsx whose parts would not fit the bounds above."""
    try:
        with zipfile.ZipFile(path) as archive:
            for part in archive.infolist():
                _check_part(archive, part, path.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise InputError(f"input {path.name} is not a readable .xlsx file ({exc})") from None


def _check_part(archive: zipfile.ZipFile, part: zipfile.ZipInfo, name: str) -> None:
    inner = part.filename.lower()
    if not inner.endswith((".xml", ".rels")):
        return  # pictures and the like: the reader never parses them
    shared = inner.endswith("sharedstrings.xml")
    sheet = inner.startswith("xl/worksheets/")
    limit = SHARED_BYTES if shared else None if sheet else PART_BYTES
    if limit is not None and part.file_size > limit:
        raise InputError(
            f"input {name}: its part {part.filename} unzips to {part.file_size:,} bytes, over "
            f"the {limit:,} an input may hold; not read (a zip bomb?)"
        )
    strings = 0
    carry = b""
    with archive.open(part) as stream:
        while block := stream.read(_BLOCK):
            data = carry + block
            cut = data.rfind(b"<")
            whole, carry = (data[:cut], data[cut:]) if cut >= 0 else (b"", data)
            if len(carry) > TEXT_RUN or max(map(len, whole.split(b"<")), default=0) > TEXT_RUN:
                raise InputError(
                    f"input {name}: its part {part.filename} holds a run of text longer than "
                    f"{TEXT_RUN:,} bytes, more than any cell holds; not read (a zip bomb?)"
                )
            if shared:
                strings += len(_STRING.findall(whole))
                if strings > SHARED_STRINGS:
                    raise InputError(
                        f"input {name}: it holds more than {SHARED_STRINGS:,} shared strings, "
                        "more than a customer file needs; not read (a zip bomb?)"
                    )
