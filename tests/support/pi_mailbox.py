"""A fake Raspberry Pi firmware mailbox: answers the GET_GENCMD_RESULT ioctl as the firmware does.

Install it with ``sysfs.set_mailbox_ioctl(FakeMailbox(...))`` and create ``/dev/vcio`` in the fixture
root (``install``). It checks the message the product builds (size, tag, request code, the ioctl
number) and writes the reply where vcgencmd reads it: the text after the six header words, the
response code in word 1 and the firmware's error code in word 5.
"""

from __future__ import annotations

import struct
from pathlib import Path

from profiler.platform import sysfs

UNKNOWN = ('error=1 error_msg="Command not registered"', 0xFFFFFFFF)  # what the firmware says to a command it lacks
HEADER = struct.Struct("=6I")


class FakeMailbox:
    def __init__(self, replies: dict[str, str | list[str] | tuple[str, int]], nul_lines: bool = False):
        self.replies = replies  # command -> text, a list of texts (one per call, the last repeats) or (text, error)
        self.nul_lines = nul_lines  # answer with NUL between lines instead of newlines
        self.calls: list[str] = []
        self.fds: set[int] = set()

    def answer(self, command: str) -> tuple[str, int]:
        found = self.replies.get(command)
        if found is None:
            return UNKNOWN
        if isinstance(found, tuple):
            return found
        if isinstance(found, list):
            seen = sum(c == command for c in self.calls) - 1
            return found[min(seen, len(found) - 1)], 0
        return found, 0

    def __call__(self, fd: int, request: int, message: bytearray) -> int:
        assert request == sysfs.IOCTL_MBOX_PROPERTY
        size, code, tag, room, _, _ = HEADER.unpack_from(message, 0)
        assert size == len(message) and code == 0 and tag == sysfs.GENCMD_TAG
        command = bytes(message[HEADER.size:HEADER.size + room]).split(b"\0")[0].decode()
        self.calls.append(command)
        self.fds.add(fd)
        text, error = self.answer(command)
        body = (text.replace("\n", "\0") if self.nul_lines else text).encode() + b"\0"
        message[HEADER.size:HEADER.size + len(body)] = body
        HEADER.pack_into(message, 0, size, sysfs.MBOX_SUCCESS, tag, room, 0x80000000 | len(body), error)
        return 0


def install(root: Path, mailbox: FakeMailbox) -> FakeMailbox:
    """Make ``/dev/vcio`` exist in the fixture root and answer through ``mailbox``."""
    (root / "dev").mkdir(parents=True, exist_ok=True)
    (root / "dev" / "vcio").write_text("")
    sysfs.set_mailbox_ioctl(mailbox)
    return mailbox
