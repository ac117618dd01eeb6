"""The one canonical JSON of everything that is hashed or signed: ledger records, checkpoints,
export manifests, receipts and diff documents.

Rules, which no caller may vary (the ledger's hashes depend on every byte):
- object keys sorted by code point, at every depth;
- no whitespace: separators "," and ":";
- non-ASCII characters written as themselves (no \\u escapes), and the text encoded as UTF-8;
- values are what `json` writes for them: the callers pass strings, integers, booleans, null, lists
  and objects only (instants are formatted to ISO 8601 strings by the caller, before hashing).
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
