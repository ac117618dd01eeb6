#!/usr/bin/env python3
"""Verify a consent evidence bundle offline: python3 verify_bundle.py BUNDLE.zip KEYS.pem [CHECKPOINTS...]
Needs Python 3.11+ and `cryptography`. KEYS.pem: /.well-known/consent-signing-key.pem?all=1 (PEMs,
each after '# kid: <key id>'). Checks the signature, file hashes, record hashes and links, CSV against
NDJSON, terms against terms_sha256 and the checkpoints; names the file, record and field of each problem.
CHECKPOINTS: files with the organisation's own copies of signed checkpoints (the e-mails as saved, or
their JSON): each must verify, and the bundle must agree with it (or be a filtered export).
An audit pack (the same zip plus audit-pack.json and audit-pack.pdf) also has each ledger record it quotes
checked against records.ndjson."""

import base64, csv, hashlib, io, itertools, json, re, sys, zipfile  # noqa: E401, I001
from cryptography.hazmat.primitives.serialization import load_pem_public_key

GENESIS, PEM_RE = "0" * 64, r"(?:# kid: (\S+)\s+)?(-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----)"


def canonical(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# Spreadsheet formula injection (OWASP "CSV Injection"): a cell starting with one of these is written
# with one more leading ' so a spreadsheet shows it as text. ' itself is in the list so the rule can be
# undone without doubt: the value is the cell without its first character when that is a '.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def neutral(text):
    """A text cell as records.csv holds it (the OWASP rule above)."""
    return "'" + text if text[:1] in FORMULA_START else text


def original(text):
    """The value a records.csv cell stands for: the inverse of neutral()."""
    return text[1:] if text[:1] == "'" else text


def cell(value):
    """A value as records.csv holds it: empty for null, text or compact JSON, then neutral()."""
    return neutral("" if value is None else value if isinstance(value, str) else canonical(value).decode())


def load_keys(text):
    return {kid or None: load_pem_public_key(pem.encode()) for kid, pem in re.findall(PEM_RE, text, re.S)}


def signature_ok(keys, key_id, payload, signature_b64):
    key = keys.get(key_id) or keys.get(None)
    try:
        return key.verify(base64.b64decode(signature_b64), payload) is None
    except Exception:  # unknown key, bad base64 or a signature that does not verify
        return False


def read_checkpoints(text):
    """Signed checkpoints in a file: a JSON object or list, or any text (a saved e-mail) with one
    checkpoint's JSON on a line of its own."""
    try:
        found = json.loads(text)
    except ValueError:
        found = []
        for line in text.splitlines():
            try:
                found.append(json.loads(line.strip()))
            except ValueError:
                continue
    found = found if isinstance(found, list) else [found]
    return [c for c in found if isinstance(c, dict) and {"seq", "head_hash", "signature"} <= set(c)]


def check_own_checkpoints(keys, own, records, heads):
    """Hold the organisation's own checkpoints against the bundle: records {(org, seq): hash}, heads
    {org: manifest info}. A checkpoint beyond the last record of a bundle that reaches the chain
    head means the records after it were removed and the head rewound."""
    problems = []
    for c in own:
        org, seq, name = (
            c.get("organization"),
            c.get("seq"),
            f"your checkpoint {c.get('organization')}#{c.get('seq')}",
        )
        payload = canonical({k: c.get(k) for k in ("organization", "seq", "head_hash", "created_at")})
        if not signature_ok(keys, c.get("key_id"), payload, c.get("signature", "")):
            problems.append(f"{name}: signature does not verify (not a checkpoint the vendor signed)")
        elif (org, seq) in records and records[(org, seq)] != c["head_hash"]:
            problems.append(f"{name}: the bundle's record #{seq} has another hash: history was rewritten")
        elif org in heads and (org, seq) not in records:
            info = heads[org]
            if info.get("last_seq") == info.get("head_seq") and seq > info.get("head_seq", 0):
                problems.append(
                    f"{name}: the chain head in this bundle is #{info.get('head_seq')}, before this "
                    "checkpoint: records were removed and the head rewound"
                )
    return problems


def verify_bundle(path, keys, own_checkpoints=()):
    problems, hashes = [], {}
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if not {"manifest.json", "manifest.sig", "records.ndjson", "records.csv"} <= names:
            return ["bundle: manifest.json, manifest.sig, records.ndjson or records.csv is missing"]
        raw = z.read("manifest.json")
        manifest = json.loads(raw)
        if not signature_ok(keys, manifest.get("key_id"), raw, z.read("manifest.sig").decode().strip()):
            problems.append(
                f"manifest.sig: signature of manifest.json does not verify with key {manifest.get('key_id')}"
            )
        files = manifest.get("files", {})
        for name in sorted((names | set(files)) - {"manifest.json", "manifest.sig"}):
            if name not in files or name not in names:
                problems.append(
                    f"{name}: {'not listed in' if name in names else 'missing but listed in'} the manifest"
                )
            elif hashlib.file_digest(z.open(name), "sha256").hexdigest() != files[name]["sha256"]:
                problems.append(f"{name}: sha256 differs from the manifest: the file was changed")
        terms = {n[6:-3]: hashlib.sha256(z.read(n)).hexdigest() for n in names if n.startswith("terms/")}
        cps = {
            (c["organization"], c["seq"]): c
            for c in json.loads(z.read("checkpoints.json") if "checkpoints.json" in names else "[]")
        }
        for c in cps.values():
            payload = canonical({k: c[k] for k in ("organization", "seq", "head_hash", "created_at")})
            if not signature_ok(keys, c.get("key_id"), payload, c.get("signature", "")):
                problems.append(
                    f"checkpoints.json: checkpoint {c['organization']}#{c['seq']} signature does not verify"
                )
        pack = json.loads(z.read("audit-pack.json")) if "audit-pack.json" in names else {}
        quoted = {
            (pack["organization"]["slug"], r["seq"]): r for r in pack.get("ledger", {}).get("records", [])
        }
        last, seen, n = {}, {}, 0
        ndjson = (
            json.loads(line) for line in io.TextIOWrapper(z.open("records.ndjson"), "utf-8") if line.strip()
        )
        rows = csv.DictReader(io.TextIOWrapper(z.open("records.csv"), "utf-8", newline=""))
        for n, (rec, row) in enumerate(itertools.zip_longest(ndjson, rows), 1):
            if rec is None or row is None:
                problems.append(
                    f"records.{'ndjson' if rec is None else 'csv'}: has no record {n}: the files differ in length"
                )
                break
            org, seq, prev_hash, own_hash = (
                rec.get("organization"),
                rec.get("seq"),
                rec.get("prev_hash"),
                rec.get("hash"),
            )
            where = f"records.ndjson line {n} (record {org}#{seq})"
            if diff := sorted(k for k in set(rec) | set(row) if cell(rec.get(k)) != row.get(k)):
                problems.append(
                    f"records.csv row {n} (record {org}#{seq}): field {', '.join(diff)} differs from records.ndjson"
                )
            body = {k: v for k, v in rec.items() if k not in ("prev_hash", "hash")}
            if hashlib.sha256(canonical(body) + str(prev_hash).encode()).hexdigest() != own_hash:
                problems.append(f"{where}: hash does not match the record's content: the record was altered")
            before = last.get(org)
            if before and seq <= before[0]:
                problems.append(f"{where}: out of order, after record #{before[0]}")
            elif (seq == 1 and prev_hash != GENESIS) or (
                before and seq == before[0] + 1 and prev_hash != before[1]
            ):
                problems.append(f"{where}: prev_hash does not link to record #{seq - 1}")
            if (
                rec.get("terms_version")
                and rec["terms_version"] in terms
                and terms[rec["terms_version"]] != rec.get("terms_sha256")
            ):
                problems.append(f"{where}: terms_sha256 differs from terms/{rec['terms_version']}.md")
            if (org, seq) in cps and cps[(org, seq)]["head_hash"] != own_hash:
                problems.append(
                    f"{where}: hash differs from signed checkpoint {org}#{seq}: history was rewritten"
                )
            if (org, seq) in quoted and quoted.pop((org, seq)) != rec:
                problems.append(f"audit-pack.json: record {org}#{seq} differs from {where}")
            last[org], seen[org] = (seq, own_hash), seen.get(org, 0) + 1
            hashes[(org, seq)] = own_hash
        for org, seq in sorted(quoted):
            problems.append(f"audit-pack.json: quotes record {org}#{seq}, which records.ndjson does not hold")
        if n != manifest.get("record_count"):
            problems.append(f"records.ndjson: {n} records, manifest.json says {manifest.get('record_count')}")
        for org, info in manifest.get("organizations", {}).items():
            if last.get(org) and info["last_seq"] == info["head_seq"] and last[org][1] != info["head_hash"]:
                problems.append(
                    f"records.ndjson: last record {org}#{info['last_seq']} differs from the chain head in manifest.json"
                )
        problems += check_own_checkpoints(keys, own_checkpoints, hashes, manifest.get("organizations", {}))
    return problems


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.splitlines()[0])
    own = [c for name in sys.argv[3:] for c in read_checkpoints(open(name).read())]  # noqa: SIM115
    found = verify_bundle(sys.argv[1], load_keys(open(sys.argv[2]).read()), own)  # noqa: SIM115
    print("\n".join(found) or "OK: signature, file hashes, chain, CSV and checkpoints verify")
    sys.exit(1 if found else 0)
