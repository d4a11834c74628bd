"""Screenshots of the windows for docs/screenshots/, with realistic sample data.

Run on a real X server (e.g. under ../shared/gui-session.sh) so fonts and styles are the real ones:

    QT_QPA_PLATFORM=xcb LANG=en_US.UTF-8 .venv/bin/python scripts/screenshots.py docs/screenshots

The tray menu and the native notification need the whole desktop (tray host, notification
daemon): take those with the session's screenshot tool while ``python -m app demo`` runs.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QLocale
from PySide6.QtWidgets import QApplication, QWidget

from app.core.model import Announcement, Priority
from app.core.store import HistoryStore
from app.ui import i18n
from app.ui.history_window import HistoryWindow
from app.ui.login_dialog import LoginDialog
from app.ui.urgent_window import UrgentWindow

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SAMPLES = [
    (
        "Welcome to Tray Notifier",
        "New announcements pop up here and stay in this window.",
        Priority.LOW,
        None,
        26 * 60,
    ),
    (
        "Network maintenance tonight",
        "Email and the intranet are unavailable from 22:00 to 23:30. Save your work before then.",
        Priority.NORMAL,
        "https://it.example.org/status",
        5 * 60,
    ),
    (
        "New holiday request form",
        "From Monday, holiday requests go through the HR portal.",
        Priority.NORMAL,
        "https://hr.example.org/holidays",
        3 * 60,
    ),
    (
        "Quarterly all-hands on Thursday",
        "10:00 in the main hall, and streamed on the intranet.",
        Priority.HIGH,
        None,
        95,
    ),
    (
        "Fire alarm test at 15:00",
        "The alarm will sound for about a minute. No need to leave.",
        Priority.URGENT,
        None,
        12,
    ),
]


def grab(widget: QWidget, target: Path) -> None:
    widget.show()
    widget.raise_()
    for _ in range(20):
        QApplication.processEvents()
    widget.grab().save(str(target))
    print(f"wrote {target}")  # noqa: T201 - a developer script reports what it wrote


def main(out: Path) -> None:
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Tray Notifier")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "history.sqlite3")
        for n, (title, body, priority, url, minutes_ago) in enumerate(SAMPLES, 1):
            store.add(
                Announcement(
                    str(n),
                    title,
                    body,
                    priority,
                    url,
                    created_at=NOW - timedelta(minutes=minutes_ago),
                )
            )
        store.mark_read("1")
        for language in ("en", "zh_CN"):
            i18n.install(app, language)
            QLocale.setDefault(QLocale("zh_CN" if language == "zh_CN" else "en_US"))
            history = HistoryWindow(store)
            history.resize(900, 520)
            history.show_announcement("2")
            grab(history, out / f"history-window-{language}.png")
            urgent = UrgentWindow(
                Announcement(
                    "9",
                    "Evacuate building B now",
                    "A gas leak was reported on floor 2.\nLeave by "
                    "the north stairs and meet at assembly point C. Do not use the lifts.",
                    Priority.URGENT,
                    "https://intranet.example.org/safety",
                    created_at=NOW,
                )
            )
            grab(urgent, out / f"urgent-window-{language}.png")
            urgent.dismiss()
            login = LoginDialog("https://announcements.example.org", "alice")
            grab(login, out / f"login-dialog-{language}.png")
            history.close()
        store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
