"""The Settings dialog: edits a copy of the typed config and hands the new one back."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTime, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core.config import Config, QuietHours
from app.core.files import private_dir
from app.core.model import Priority
from app.ui import widgets
from app.ui.icons import app_icon
from app.ui.login_dialog import check_server_url, profile_text

#: languages offered: (config value, name shown). Language names are written in their own
#: language so that anyone can find theirs; "" follows the system.
LANGUAGES: tuple[tuple[str, str], ...] = (("en", "English"), ("zh_CN", "简体中文"))
MAX_RETENTION_DAYS = 3650


def _threshold_names() -> dict[Priority, str]:
    return {
        Priority.LOW: QCoreApplication.translate("SettingsDialog", "All announcements"),
        Priority.NORMAL: QCoreApplication.translate("SettingsDialog", "Normal, high and urgent"),
        Priority.HIGH: QCoreApplication.translate("SettingsDialog", "High and urgent"),
        Priority.URGENT: QCoreApplication.translate("SettingsDialog", "Urgent only"),
    }


class SettingsDialog(QDialog):
    """Edits the user's settings; Save validates, emits ``saved`` and closes.

    A setting IT locked (``config.locked``) or an environment variable set for this run is
    shown read-only, with a tooltip saying who set it, and Save keeps its value.

    Signals (emitted on the GUI thread):
        saved(object): the new ``app.core.config.Config`` (built with ``config.with_changes``);
            the root writes it with ``config.save_user`` and applies it.

    ``open_url`` (keyword) opens the log folder; tests inject it.
    """

    saved = Signal(Config)

    def __init__(
        self,
        config: Config,
        *,
        log_dir: Path,
        parent: QWidget | None = None,
        open_url: widgets.OpenUrl = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self._config = config
        self._log_dir = log_dir
        self._open_url = open_url
        self.setObjectName("settingsDialog")
        self.setWindowTitle(self.tr("Settings — %1").replace("%1", APP_NAME))
        self.setWindowIcon(app_icon())
        self.setStyleSheet(widgets.stylesheet())
        self.setMinimumWidth(480)
        self._build()
        self._load(config)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.server_edit = QLineEdit(self)
        self.server_edit.setPlaceholderText("https://announcements.example.org")
        self.server_edit.setAccessibleName(self.tr("Server address"))
        self.autostart_check = QCheckBox(self.tr("Start %1 when I log in").replace("%1", APP_NAME))

        self.threshold_combo = QComboBox(self)
        for priority, name in _threshold_names().items():
            self.threshold_combo.addItem(name, priority.value)
        self.threshold_combo.setAccessibleName(self.tr("Which announcements pop up"))

        self.quiet_box = QGroupBox(self.tr("&Quiet hours"), self)
        self.quiet_box.setCheckable(True)
        self.quiet_box.setAccessibleName(self.tr("Quiet hours"))
        self.quiet_start = QTimeEdit(self.quiet_box)
        self.quiet_end = QTimeEdit(self.quiet_box)
        for edit, name in ((self.quiet_start, self.tr("From")), (self.quiet_end, self.tr("To"))):
            edit.setDisplayFormat("HH:mm")
            edit.setAccessibleName(self.tr("Quiet hours: %1").replace("%1", name))
        quiet_row = QHBoxLayout()
        quiet_row.addWidget(QLabel(self.tr("From"), self.quiet_box))
        quiet_row.addWidget(self.quiet_start)
        quiet_row.addSpacing(12)
        quiet_row.addWidget(QLabel(self.tr("to"), self.quiet_box))
        quiet_row.addWidget(self.quiet_end)
        quiet_row.addStretch(1)
        quiet_note = QLabel(
            self.tr("Only urgent announcements pop up during quiet hours."), self.quiet_box
        )
        quiet_note.setObjectName("hint")
        quiet_note.setWordWrap(True)
        quiet_layout = QVBoxLayout(self.quiet_box)
        quiet_layout.addLayout(quiet_row)
        quiet_layout.addWidget(quiet_note)

        self.language_combo = QComboBox(self)
        self.language_combo.addItem(self.tr("System default"), "")
        for code, name in LANGUAGES:
            self.language_combo.addItem(name, code)
        self.language_combo.setAccessibleName(self.tr("Language"))
        language_note = QLabel(self.tr("A new language is used after a restart."), self)
        language_note.setObjectName("hint")

        self.retention_spin = QSpinBox(self)
        self.retention_spin.setRange(1, MAX_RETENTION_DAYS)
        self.retention_spin.setSuffix(self.tr(" days"))
        self.retention_spin.setAccessibleName(self.tr("Keep history for this many days"))

        self.log_button = QPushButton(self.tr("Open &log folder"), self)
        self.log_button.setAccessibleName(self.tr("Open the folder holding the log files"))
        self.log_button.clicked.connect(self.open_log_folder)

        self.error_label = widgets.plain_label("", self)
        self.error_label.setObjectName("errorLabel")
        self.error_label.hide()

        self.locked_note = QLabel(
            self.tr("Settings shown greyed out were set by your IT department."), self
        )
        self.locked_note.setObjectName("hint")
        self.locked_note.setWordWrap(True)
        self.locked_note.hide()
        #: the widget that edits each setting (a dotted key of app.core.config)
        self.setting_widgets: dict[str, QWidget] = {
            "server_url": self.server_edit,
            "start_at_login": self.autostart_check,
            "toast_min_priority": self.threshold_combo,
            "language": self.language_combo,
            "retention_days": self.retention_spin,
            "quiet_hours": self.quiet_box,
        }

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self.tr("&Server address:"), self.server_edit)
        self.profile_label = QLabel(self)
        self.profile_label.setTextFormat(Qt.TextFormat.PlainText)
        self.profile_label.setObjectName("hint")
        form.addRow("", self.profile_label)
        form.addRow("", self.autostart_check)
        form.addRow(self.tr("&Pop up:"), self.threshold_combo)
        form.addRow(self.tr("&Language:"), self.language_combo)
        form.addRow("", language_note)
        form.addRow(self.tr("&Keep history:"), self.retention_spin)

        buttons = QDialogButtonBox(self)
        self.save_button = buttons.addButton(
            self.tr("&Save"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        buttons.addButton(self.tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        self.save_button.setDefault(True)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.log_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(12)
        layout.addWidget(self.locked_note)
        layout.addLayout(form)
        layout.addWidget(self.quiet_box)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        layout.addLayout(bottom)
        self.setTabOrder(self.server_edit, self.autostart_check)
        self.setTabOrder(self.autostart_check, self.threshold_combo)
        self.setTabOrder(self.threshold_combo, self.language_combo)
        self.setTabOrder(self.language_combo, self.retention_spin)
        self.setTabOrder(self.retention_spin, self.quiet_box)
        self.setTabOrder(self.quiet_box, self.quiet_start)
        self.setTabOrder(self.quiet_start, self.quiet_end)
        self.setTabOrder(self.quiet_end, self.log_button)

    def _load(self, config: Config) -> None:
        self.server_edit.setText(config.server_url)
        self.profile_label.setText(profile_text(config.auth))
        self.autostart_check.setChecked(config.start_at_login)
        self.threshold_combo.setCurrentIndex(
            self.threshold_combo.findData(config.toast_min_priority.value)
        )
        quiet = config.quiet_hours
        self.quiet_box.setChecked(quiet is not None)
        start, end = (quiet.start, quiet.end) if quiet else (None, None)
        self.quiet_start.setTime(QTime(start.hour, start.minute) if start else QTime(22, 0))
        self.quiet_end.setTime(QTime(end.hour, end.minute) if end else QTime(7, 0))
        language = self.language_combo.findData(config.language)
        self.language_combo.setCurrentIndex(max(0, language))
        self.retention_spin.setValue(min(MAX_RETENTION_DAYS, max(1, config.retention_days)))
        for key, widget in self.setting_widgets.items():
            why = self._read_only_reason(config, key)
            widget.setEnabled(why is None)
            widget.setToolTip(why or "")
            if why is not None:
                widget.setAccessibleDescription(why)
        self.locked_note.setVisible(any(config.is_locked(k) for k in self.setting_widgets))

    def _read_only_reason(self, config: Config, key: str) -> str | None:
        """Why the user cannot change ``key`` here (shown as its tooltip), or None."""
        if config.is_locked(key):
            return self.tr("Set by your IT department: this setting cannot be changed here.")
        variable = config.set_by_environment(key)
        if variable is not None:
            return self.tr("Set by the environment variable %1 for this run.").replace(
                "%1", variable
            )
        return None

    def is_read_only(self, key: str) -> bool:
        """True when the setting ``key`` is shown read-only (IT locked it, or the environment
        set it)."""
        return self._read_only_reason(self._config, key) is not None

    # ------------------------------------------------------------------ actions

    def result_config(self) -> Config | None:
        """The edited settings as a new Config; None (and the problem shown) when invalid.
        Read-only settings keep the value they came with."""
        server = self.server_edit.text().strip()
        if server and not self.is_read_only("server_url"):
            server, problem = check_server_url(server)
            if problem:
                self._fail(problem)
                self.server_edit.setFocus(Qt.FocusReason.OtherFocusReason)
                return None
        quiet: QuietHours | None = None
        if self.quiet_box.isChecked() and not self.is_read_only("quiet_hours"):
            start = self.quiet_start.time().toPython()
            end = self.quiet_end.time().toPython()
            if start == end:
                self._fail(self.tr("Quiet hours must start and end at different times."))
                self.quiet_end.setFocus(Qt.FocusReason.OtherFocusReason)
                return None
            quiet = QuietHours(start, end)  # type: ignore[arg-type]
        self.error_label.hide()
        changes = {
            "server_url": server,
            "start_at_login": self.autostart_check.isChecked(),
            "toast_min_priority": Priority(self.threshold_combo.currentData()),
            "quiet_hours": quiet,
            "language": str(self.language_combo.currentData()),
            "retention_days": self.retention_spin.value(),
        }
        return self._config.with_changes(
            **{k: v for k, v in changes.items() if not self.is_read_only(k)}
        )

    def save(self) -> None:
        """Validate; emit ``saved`` with the new config and close, or show what is wrong."""
        config = self.result_config()
        if config is None:
            return
        self.saved.emit(config)
        self.accept()

    def open_log_folder(self) -> bool:
        """Open the log folder in the file manager (created first if needed, owner-only)."""
        private_dir(self._log_dir)
        return bool(self._open_url(QUrl.fromLocalFile(str(self._log_dir))))

    def _fail(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
