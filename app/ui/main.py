"""``tray-notifier``: the tray application's start-up (Qt application, logs, language, single
instance, composition root) and its event loop."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import (
    QMessageLogContext,
    QObject,
    QSocketNotifier,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QMessageBox

from app import APP_ID, APP_NAME, logs
from app.core import autostart, network_policy
from app.core import config as config_mod
from app.core.config import Config, ConfigError, Paths
from app.core.relocation import follow_the_server
from app.core.secrets import KeyringSecretStore, SecretStore
from app.core.store import HistoryStoreError
from app.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL
from app.ui import i18n, icons
from app.ui.single_instance import SingleInstance, default_key
from app.ui.worker import StreamWorker

log = logging.getLogger(__name__)

LOG_FILE_NAME = f"{APP_ID}.log"


def use_offscreen_without_display(environ: dict[str, str] | None = None) -> bool:
    """On Linux with no display and no QT_QPA_PLATFORM, choose the offscreen platform (Qt would
    abort otherwise). Returns True when it did (and logs a clear warning)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return False
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return False
    env["QT_QPA_PLATFORM"] = "offscreen"
    log.warning(
        "no display (DISPLAY and WAYLAND_DISPLAY are unset): running offscreen. There is no "
        "tray icon; toasts go to our own (invisible) toast window and to this log."
    )
    return True


_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}
# what platforms without a window manager say about calls they ignore: nothing is wrong
_QT_CHATTER = ("This plugin does not support", "QPlatformNativeInterface::systemTrayWindowChanged")
_qt_log = logging.getLogger("qt")


def _qt_message(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    level = _QT_LEVELS.get(mode, logging.WARNING)
    if any(chatter in message for chatter in _QT_CHATTER):
        level = logging.DEBUG
    _qt_log.log(level, "%s", message)


def route_qt_messages() -> object:
    """Send Qt's own messages to our log (redacted, in the log file) instead of bare stderr.
    Returns the handler it replaced."""
    return qInstallMessageHandler(_qt_message)


def application() -> QApplication:
    """The QApplication, set up for a tray program (quitting only from the menu)."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(icons.app_icon())
    return app


# platforms where nobody can see (or close) a window: a modal dialog there would hang for ever
_INVISIBLE_PLATFORMS = frozenset({"offscreen", "minimal", "vnc"})


def can_show_dialogs(environ: dict[str, str] | None = None) -> bool:
    """False when the Qt platform has no screen a person looks at (offscreen, minimal)."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    return platform not in _INVISIBLE_PLATFORMS


def report_fatal(message: str) -> None:
    """A problem that stops the tray: on stderr always, and in a dialog where one can be seen."""
    print(f"{APP_NAME}: {message}", file=sys.stderr, flush=True)  # noqa: T201
    if can_show_dialogs():
        application()
        QMessageBox.critical(None, APP_NAME, message)


def install_excepthook() -> object:
    """One hook for exceptions nobody caught (in a Qt slot too): the traceback goes to the log,
    a short message to the person, and the tray keeps running. Returns the hook it replaced."""
    previous = sys.excepthook
    told: list[bool] = []  # say it once per run: a repeating error must not nag

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, exc, tb)
            return
        log.critical("unexpected error", exc_info=(kind, exc, tb))
        text = (
            f"An unexpected error happened ({kind.__name__}). Tray Notifier keeps running; "
            "the details are in the log file (Settings, Open log folder)."
        )
        if not told and can_show_dialogs() and QApplication.instance() is not None:
            told.append(True)
            QMessageBox.warning(None, APP_NAME, text)

    sys.excepthook = hook
    return previous


def run(args: argparse.Namespace) -> int:
    """Start the tray application; returns the exit code."""
    use_offscreen_without_display()
    route_qt_messages()
    install_excepthook()
    paths = Paths.default()
    logs.add_file(paths.log_dir / LOG_FILE_NAME)
    try:
        config = config_mod.load(paths)
    except ConfigError as exc:
        log.error("%s", exc)
        report_fatal(str(exc))
        return EXIT_PROTOCOL
    if not getattr(args, "log_level", None):  # --log-level wins over the settings
        logs.setup(config.log_level)  # checked and upper-cased by the config loader
    return run_tray(config=config, paths=paths, secrets=KeyringSecretStore())


def run_tray(
    *,
    config: Config,
    paths: Paths,
    secrets: SecretStore,
    exit_after: float | None = None,
    single_instance: bool = True,
    password: str | None = None,
) -> int:
    """Build the application around ``config`` and run it until Quit (or ``exit_after`` s).
    ``password`` logs in as ``config.username`` at once (the demo)."""
    app = application()
    language = i18n.install(app, config.language)
    log.info("%s starting (language %s, log folder %s)", APP_NAME, language, paths.log_dir)
    instance = SingleInstance(default_key(str(paths.data_dir))) if single_instance else None
    if instance is not None:
        if instance.notify_running():
            log.info("%s is already running: asked it to show its window", APP_NAME)
            return EXIT_OK
        instance.listen()
    # the stored login is read (and the HTTP stack loaded) on the worker thread while the rest
    # of the GUI is imported and built
    network_policy.use(config.network, secrets=secrets)  # [network] and the proxy login
    worker = StreamWorker(config=config, secrets=secrets)
    follow_the_server(config, paths.data_dir, secrets)  # IT moved it: before either is read
    if config.server_url and config.username and password is None:
        worker.start()
        worker.prepare(config.server_url, config.username)
    try:
        from app.ui.notifier import FreedesktopNotifications
        from app.ui.root import Root

        bus = FreedesktopNotifications.open()
        root = Root(
            config=config,
            paths=paths,
            secrets=secrets,
            autostart=autostart.for_platform(),
            bus=bus,
            worker=worker,
        )
    except BaseException:
        worker.shutdown()  # its thread never outlives run_tray
        raise
    if instance is not None:  # a second launch, and the login and logout commands
        instance.activated.connect(root.show_history)
        instance.loginStored.connect(root.follow_login)
        instance.loggedOut.connect(root.follow_logout)
    restore_signals = quit_on_signals(root.quit, parent=root)
    # what start-up made (modules, classes, the windows' wrappers) lives as long as the
    # process: kept out of the collector's full passes, which then scan only what came after
    # (during a catch-up such a pass held the GIL 15-46 ms; 1-8 ms with this)
    gc.freeze()
    try:
        root.start(password=password)
        if exit_after is not None:
            QTimer.singleShot(int(exit_after * 1000), root.quit)
        code = app.exec()
    except HistoryStoreError as exc:  # not damaged (that is moved aside): newer, or unwritable
        log.error("%s", exc)
        report_fatal(str(exc))
        code = EXIT_FAILURE
    finally:
        root.shutdown()
        if instance is not None:
            instance.close()
        if bus is not None:
            bus.close()
        restore_signals()
    log.info("%s stopped", APP_NAME)
    return int(code)


def quit_on_signals(
    on_signal: Callable[[], None],
    *,
    parent: QObject,
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> Callable[[], None]:
    """SIGINT / SIGTERM call ``on_signal`` (on the GUI thread, from the event loop); no polling.

    Python runs its signal handlers only when the interpreter next runs, and during ``exec()``
    Qt's loop sleeps in C. So the C-level handler also writes the signal number to a socket
    (``signal.set_wakeup_fd``) that a :class:`QSocketNotifier` watches: the loop wakes only
    when a signal comes, the slot that drains the socket is Python code, and Python runs the
    pending handler right there. Returns a function that undoes all this (at quit)."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, parent)

    def drain() -> None:  # the handler itself runs as this slot returns to the interpreter
        with contextlib.suppress(OSError):
            while reader.recv(64):
                pass

    notifier.activated.connect(drain)
    previous = {
        sig: signal.signal(sig, lambda _n, _f: QTimer.singleShot(0, on_signal)) for sig in signals
    }

    def restore() -> None:
        notifier.setEnabled(False)
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reader.close()
        writer.close()

    return restore
