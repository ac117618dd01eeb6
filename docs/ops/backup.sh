#!/usr/bin/env bash
# Back up the Version Contract Portal: the database (pg_dump, custom format), the signing keys and
# the built consent exports, with a SHA256SUMS manifest. Prints the backup folder it wrote.
#
#   DATABASE_URL=postgres://… SIGNING_KEYS_DIR=/srv/vcp/keys MEDIA_ROOT=/srv/vcp/media \
#     docs/ops/backup.sh /backups
#
# Run it as often as the recovery point you need (the database changes with every decision); the
# keys change only on rotation. Keep the keys archive as secret as the keys folder itself.
set -euo pipefail

out=${1:?usage: backup.sh OUT_DIR}
: "${DATABASE_URL:?DATABASE_URL is needed}"
: "${SIGNING_KEYS_DIR:?SIGNING_KEYS_DIR is needed}"
: "${MEDIA_ROOT:?MEDIA_ROOT is needed}"

dest="$out/vcp-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$dest"
umask 077

# One consistent snapshot of every table (pg_dump runs in a single repeatable-read transaction).
pg_dump --format=custom --no-owner --no-privileges --file "$dest/database.dump" "$DATABASE_URL"
tar -C "$SIGNING_KEYS_DIR" -czf "$dest/signing-keys.tar.gz" .
if [ -d "$MEDIA_ROOT/exports" ]; then
  tar -C "$MEDIA_ROOT" -czf "$dest/exports.tar.gz" exports
fi
(cd "$dest" && sha256sum -- * >SHA256SUMS)
echo "$dest"
