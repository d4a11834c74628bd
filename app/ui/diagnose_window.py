"""*Diagnose connection…*: the doctor's report (:mod:`app.core.doctor`) in a window, with
*Copy report* for the helpdesk and *Check again*. The checks run on a thread of their own
(they wait on the network); the window only shows what they found. No secret is in the
report (the doctor never puts one there)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.doctor import Check, failed, report

Diagnosis = Callable[[], list[Check]]


class DiagnoseWindow(QWidget):
    """The doctor's report.

    Signals:
        checked(object): the list of checks, emitted from the diagnosis thread (queued to the
            GUI thread, where the window shows it).
    """

    checked = Signal(object)

    def __init__(self, diagnose: Diagnosis, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._diagnose = diagnose
        self._thread: threading.Thread | None = None
        self.report_text = ""
        self.setWindowTitle(self.tr("Diagnose connection"))
        self.summary = QLabel()
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.copy_button = QPushButton(self.tr("Copy report"))
        self.again_button = QPushButton(self.tr("Check again"))
        self.copy_button.clicked.connect(self.copy_report)
        self.again_button.clicked.connect(self.start)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.again_button)
        buttons.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)
        self.resize(720, 480)
        self.checked.connect(self._show)

    def start(self) -> None:
        """Run the checks again (unless they are running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.summary.setText(self.tr("Checking every hop to the server…"))
        self.copy_button.setEnabled(False)
        self.again_button.setEnabled(False)
        self._thread = threading.Thread(target=self._work, name="doctor", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        self.checked.emit(self._diagnose())

    def _show(self, checks: list[Check]) -> None:
        self.report_text = report(checks)
        self.text.setPlainText(self.report_text)
        self.summary.setText(
            self.tr("A hop failed: the first FAIL names it, and what to do.")
            if failed(checks)
            else self.tr("No hop failed.")
        )
        self.copy_button.setEnabled(True)
        self.again_button.setEnabled(True)

    def copy_report(self) -> None:
        """Put the report on the clipboard, for the helpdesk."""
        QGuiApplication.clipboard().setText(self.report_text)
