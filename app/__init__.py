"""Tray Notifier: organisation announcements in the system tray, over Server-Sent Events."""

__version__ = "0.1.0"
APP_NAME = "Tray Notifier"
APP_ID = "tray-notifier"
