"""gunicorn hooks for production: `gunicorn -c portal/gunicorn_config.py portal.wsgi --workers 4`.

With PROMETHEUS_MULTIPROC_DIR set, every worker writes its request metrics to that folder and
/metrics merges them, whichever worker answers the scrape. The folder is emptied when gunicorn
starts (stale files of a previous run would be counted again) and a dead worker's live gauges
are dropped. Other settings come from the command line or GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import multiprocess


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
