"""Qt user interface: tray, toasts, windows, and the one worker thread."""
