"""The canary: PySide6 must not change the reference counts of ``None``, ``True`` or ``False``.

PySide6 6.12.0 on CPython 3.11 takes one reference off ``True`` at every ``Signal.emit()`` and
one off ``None`` at every Qt call that returns nothing, and never adds them back; when a count
reaches zero the interpreter aborts (``Fatal Python error: none_dealloc``). A tray died that way
after 123 announcements. ``pyproject.toml`` excludes that release where it bites; this test fails
on any PySide6 (a new release, a different lock) that brings the defect back. On 3.12 and later
those objects are immortal, so the counts never move and the test passes there trivially.
"""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtCore import QObject, Signal

ROUNDS = 200  # enough to see any drift, few enough not to reach zero and abort


class _Emitter(QObject):
    plain = Signal()
    flag = Signal(bool)
    value = Signal(object)


def _counts() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_emits_and_void_calls_leave_none_true_and_false_alone() -> None:
    emitter = _Emitter()
    received = [0]  # a count: keeping the values would hold references to None and True

    def count(_value: object) -> None:
        received[0] += 1

    emitter.value.connect(count)
    emitter.flag.connect(count)
    before = _counts()
    for i in range(ROUNDS):
        emitter.plain.emit()  # a signal without arguments
        emitter.flag.emit(i % 2 == 0)  # True and False cross the binding
        emitter.value.emit(None)  # None crosses the binding
        emitter.setObjectName("canary")  # a Qt call that returns nothing
        emitter.blockSignals(False)  # a Qt call that returns a bool
    after = _counts()
    assert received[0] == 2 * ROUNDS
    drift = tuple(a - b for a, b in zip(after, before, strict=True))
    assert drift == (0, 0, 0), (
        f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} changed the reference "
        f"counts of (None, True, False) by {drift} over {ROUNDS} rounds: this release corrupts "
        "them and the tray will abort. Exclude it in pyproject.toml."
    )
