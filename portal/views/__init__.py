"""Customer-facing pages, one module per area (dashboard, migrations, diffs, exports, billing, bugs)."""
