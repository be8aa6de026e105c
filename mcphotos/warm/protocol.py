"""The warm socket's wire format: one JSON object per line each way (docs/serve-api.md).

Arrays travel as ``{"data": base64, "dtype": "float32"|"uint8", "shape": [...]}``: exact bytes,
so a vector that went through the server is bit for bit the one the server computed.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by the calls that move arrays: a warm find moves none
    import numpy as np

PROTOCOL = 1
MAX_LINE = 256 * 1024 * 1024  # a batch of preprocessed pixels is a few MB; this only bounds a bad peer
DTYPES = ("float32", "uint8")


class ProtocolError(Exception):
    """A line that is not a request or an answer of this protocol."""


def pack(array: np.ndarray) -> dict[str, Any]:
    import numpy as np

    a = np.ascontiguousarray(array)
    name = str(a.dtype)
    if name not in DTYPES:
        a, name = a.astype(np.float32), "float32"
    return {"data": base64.b64encode(a.tobytes()).decode("ascii"), "dtype": name, "shape": list(a.shape)}


def unpack(obj: Any) -> np.ndarray:
    import numpy as np

    try:
        if obj["dtype"] not in DTYPES:
            raise ValueError(f"dtype {obj['dtype']!r}")
        dtype = np.dtype(obj["dtype"])
        shape = tuple(int(n) for n in obj["shape"])
        raw = base64.b64decode(obj["data"], validate=True)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(f"not an array: {e}") from None


def dumps(obj: dict[str, Any]) -> bytes:
    # Paths that are not UTF-8 keep their bytes as surrogate escapes (as --json does) and
    # come back the same, because ASCII-only JSON escapes them.
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    if not line.endswith(b"\n"):
        raise ProtocolError("the line ended early (peer gone, or over the size limit)")
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not a JSON object")
    return obj
