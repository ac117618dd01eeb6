#!/usr/bin/env bash
# Restore a backup written by backup.sh into a NEW, empty database, put the signing keys and exports
# back, and prove the result: every ledger chain verifies (`manage.py verify_ledger`, exit 1 names
# the first broken record).
#
#   createdb -h db.internal -U postgres vcp_restored
#   SIGNING_KEYS_DIR=/srv/vcp/keys MEDIA_ROOT=/srv/vcp/media \
#     docs/ops/restore.sh /backups/vcp-20260101T000000Z postgres://postgres@db.internal/vcp_restored
#
# Then point DATABASE_URL of the web, worker and beat processes at the restored database.
set -euo pipefail

src=${1:?usage: restore.sh BACKUP_DIR NEW_DATABASE_URL}
target=${2:?usage: restore.sh BACKUP_DIR NEW_DATABASE_URL}
: "${SIGNING_KEYS_DIR:?SIGNING_KEYS_DIR is needed}"
: "${MEDIA_ROOT:?MEDIA_ROOT is needed}"
python=${PYTHON:-python}
here=$(cd "$(dirname "$0")/../.." && pwd)

(cd "$src" && sha256sum --check --quiet SHA256SUMS)
# All or nothing: a failed restore leaves the new database empty, never half-filled.
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname "$target" \
  "$src/database.dump"
mkdir -p "$SIGNING_KEYS_DIR"
tar -C "$SIGNING_KEYS_DIR" -xzf "$src/signing-keys.tar.gz"
if [ -f "$src/exports.tar.gz" ]; then
  mkdir -p "$MEDIA_ROOT"
  tar -C "$MEDIA_ROOT" -xzf "$src/exports.tar.gz"
fi
# A backup of an older release is brought up to this release's schema.
DATABASE_URL="$target" "$python" "$here/manage.py" migrate --noinput -v0
DATABASE_URL="$target" "$python" "$here/manage.py" verify_ledger
