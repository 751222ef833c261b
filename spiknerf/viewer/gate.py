"""Renders between training steps, never during one.

While ``spiknerf train --viewer`` trains, the viewer's renders run in their
own thread but take turns with the training loop: a render waits in
:meth:`StepGate.turn` until the loop, after a step, calls
:meth:`StepGate.between_steps`, which lets one waiting render run and waits
until it has finished. So a render never sees a model half-way through an
update, never competes with a step for the cores, and with no render waiting
``between_steps`` costs one attribute read. After :meth:`StepGate.close`
(training over or failed) renders run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StepGate:
    """Turns between the training loop and the viewer's renders (see the module's docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting = 0  # renders waiting for a turn
        self._granted = False  # the loop offers a turn, not yet taken
        self._busy = False  # a render is running in its turn
        self._open = False

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for the loop to reach the end of a step, then run the block while the loop waits."""
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: self._granted or self._open)
            self._waiting -= 1
            gated = not self._open
            if gated:
                self._granted, self._busy = False, True
        try:
            yield
        finally:
            if gated:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def between_steps(self) -> None:
        """Called by the loop after each step: let one waiting render run, and wait until it has."""
        if not self._waiting:
            return
        with self._cond:
            if not self._waiting or self._open:
                return
            self._granted = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._granted and not self._busy)

    def close(self) -> None:
        """Training is over: renders no longer wait."""
        with self._cond:
            self._open = True
            self._cond.notify_all()
