"""`python -m vcp_gateway keygen [--out PATH] [--force]`: create the gateway's receipt key."""

from __future__ import annotations

import argparse
import sys

from vcp_gateway.receipts import ReceiptSigner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vcp_gateway", description="vcp_gateway tools")
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser(
        "keygen",
        help="create an Ed25519 receipt key",
        description="Write a new Ed25519 private key (PKCS8 PEM, mode 0600) and print its key id and public key.",
    )
    keygen.add_argument("--out", default="receipt-key.pem", help="where to write it (default: %(default)s)")
    keygen.add_argument("--force", action="store_true", help="replace the file if it exists")
    args = parser.parse_args(argv)

    signer = ReceiptSigner.generate()
    try:
        signer.save(args.out, overwrite=args.force)
    except FileExistsError:
        print(f"{args.out} exists: not replaced (use --force to replace it)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"key-id: {signer.key_id}")
    print(f"private-key: {args.out}")
    print(signer.public_key_pem, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
