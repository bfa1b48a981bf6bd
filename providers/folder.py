"""Draft store that writes each draft as an RFC 5322 ``.eml`` file into a folder.

Used by ``salvage demo``, dry runs and anyone who prefers to open drafts by hand: the files carry
``X-Unsent: 1``, so Outlook and Thunderbird open them as editable drafts.

A folder cannot see a mail client, so fates are read from the files:

- the file is still there with our body → untouched; with another body (or unreadable) → edited;
- the file was moved into the ``sent/`` subfolder of the drafts folder → sent (do that by hand, or
  with a mail-client rule, to tell Salvage a draft went out);
- the file is gone from a folder that could be read in full → deleted ("no": the draft is never
  re-created).

A fate is only ever read from positive evidence: a drafts folder that is missing, not a folder or
not readable, a draft file that cannot be read (permission, I/O error) or is not a regular file, is
a :class:`~providers.base.ProviderError` for that pass, never "deleted".

Drafts are personal mail: files are written atomically (temporary file + rename) with mode 0600, and
a folder Salvage creates is 0700, whatever the umask. A temporary file a crash left behind is removed
when the store is opened. Symbolic links are never followed, so a link in the folder cannot make
Salvage read or write elsewhere.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Callable
from datetime import datetime, timezone
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from daemon.config import ProviderSection
from daemon.core.model import Event, utc_now
from daemon.paths import private_dir, remove_stale_temp
from providers.base import (
    Capabilities,
    DraftFate,
    DraftMessage,
    DraftRef,
    Provider,
    ProviderContext,
    ProviderError,
    Role,
    ThreadInfo,
)
from providers.mime import KEY_HEADER, fingerprint, message_bytes, parse_message, plain_body

SENT_DIR = "sent"
MAX_BYTES = 5 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml$")
_TEMP = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml\.[0-9a-f]{8}\.tmp")


class FolderSettings(ProviderSection):
    """``drafts: {type: folder}``: ``.eml`` files in a folder (a ``sent/`` folder beside them tells sent)."""

    type: Literal["folder"]
    path: Path = Field(description="Folder where drafts are written as .eml files.")


def open_drafts(settings: FolderSettings, context: ProviderContext) -> FolderDrafts:
    """The draft store for an account whose drafts go to a folder of ``.eml`` files."""
    return FolderDrafts(settings.path, now=context.clock)


PROVIDER = Provider(name="folder", drafts=Role(FolderSettings, "providers.folder:open_drafts"))


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe ASCII slug of a subject line ('draft' when nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:limit].rstrip("-") or "draft"


class FolderDrafts:
    """A :class:`~providers.base.DraftStore` over a folder of ``.eml`` files."""

    capabilities = Capabilities(threads_replies=False, detects_edits=True, detects_sent=True)

    def __init__(self, path: Path | str, now: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._now = now
        remove_stale_temp(self.path, _TEMP)  # left by a crash between write and rename

    # ---- DraftStore -----------------------------------------------------------------------------

    def create(self, draft: DraftMessage) -> DraftRef:
        """Write a new ``.eml`` draft and return its file name as the id."""
        created = self._now()
        if created.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        self._ensure_folder()
        base = f"{created.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{draft.key[:8]}-{slug(draft.subject)}"
        name = f"{base}.eml"
        counter = 2
        while os.path.lexists(self.path / name):
            name = f"{base}-{counter}.eml"
            counter += 1
        self._write(name, draft, created)
        return DraftRef(id=name, fingerprint=fingerprint(draft.text), created=created, extra={"key": draft.key})

    def fate(self, ref: DraftRef) -> DraftFate:
        """Untouched, edited (other body, or unparsable), sent (moved to ``sent/``) or deleted.

        Deleted only when the folder was read in full and neither it nor ``sent/`` holds the draft;
        anything that keeps us from knowing raises :class:`ProviderError`.
        """
        name = _check_name(ref.id)
        self._check_folder()
        raw = self._read(self.path / name)
        if raw is not None:
            try:
                body = plain_body(parse_message(raw))
            except Exception:  # noqa: BLE001 - whatever the user did to it, it is theirs now
                return DraftFate.EDITED
            return DraftFate.UNTOUCHED if fingerprint(body) == ref.fingerprint else DraftFate.EDITED
        key = ref.extra.get("key")
        sent = self._sent_dir()
        if sent is not None and (_is_regular(sent / name) or (key and self._scan(sent, key) is not None)):
            return DraftFate.SENT
        if key and self._scan(self.path, key) is not None:
            return DraftFate.EDITED  # renamed by the user: theirs now, leave it alone
        return DraftFate.DELETED

    def update(self, ref: DraftRef, draft: DraftMessage) -> DraftRef:
        """Rewrite the draft's file (same name) with new content."""
        name = _check_name(ref.id)
        if not _is_regular(self.path / name):
            raise ProviderError(f"draft {name} is no longer in {self.path}; not re-creating it")
        self._write(name, draft, self._now())
        extra = {**ref.extra, "key": draft.key}
        return DraftRef(id=name, fingerprint=fingerprint(draft.text), thread_id=ref.thread_id,
                        created=ref.created, extra=extra)

    def delete(self, ref: DraftRef) -> None:
        """Remove the draft's file; a file that is already gone is fine."""
        name = _check_name(ref.id)
        try:
            os.unlink(self.path / name)  # unlinks a symlink itself, never its target
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ProviderError(f"cannot delete draft {self.path / name}: {exc.strerror or exc}") from None

    def find_by_key(self, key: str) -> DraftRef | None:
        """The live draft (not in ``sent/``) carrying ``X-Salvage-Key: key``, if any."""
        if not os.path.lexists(self.path):
            return None  # no folder yet: nothing was ever written here
        self._check_folder()
        found = self._scan(self.path, key)
        if found is None:
            return None
        name, raw = found
        try:
            msg = parse_message(raw)
            body = plain_body(msg)
        except Exception:  # noqa: BLE001 - an unreadable file still proves the draft exists
            return DraftRef(id=name, fingerprint="", extra={"key": key})
        created: datetime | None = None
        if msg["Date"]:
            try:
                created = parsedate_to_datetime(str(msg["Date"]))
            except (TypeError, ValueError):
                created = None
            if created is not None and created.utcoffset() is None:
                created = created.replace(tzinfo=timezone.utc)
        return DraftRef(id=name, fingerprint=fingerprint(body), created=created, extra={"key": key})

    def find_thread(self, event: Event) -> ThreadInfo | None:
        """A folder has no mailbox to search for the invitation: always None."""
        return None

    # ---- files ----------------------------------------------------------------------------------

    def _ensure_folder(self) -> None:
        try:
            private_dir(self.path)
        except OSError as exc:
            raise ProviderError(f"cannot create drafts folder {self.path}: {exc.strerror or exc}") from None
        if not self.path.is_dir():
            raise ProviderError(f"drafts folder {self.path} is not a directory")

    def _write(self, name: str, draft: DraftMessage, when: datetime) -> None:
        """Write atomically: a temporary file in the same folder, then a rename over the target."""
        data = message_bytes(draft, date=when, unsent=True, readable=True)  # 8-bit UTF-8: `cat` reads it
        self._ensure_folder()
        tmp = self.path / f".{name}.{secrets.token_hex(4)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(tmp, flags, 0o600)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, self.path / name)  # replaces a symlink itself, never writes through it
        except OSError as exc:
            raise ProviderError(f"cannot write draft {self.path / name}: {exc.strerror or exc}") from None

    def _check_folder(self) -> None:
        """The drafts folder must be there and readable before its content can prove anything."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise ProviderError(f"drafts folder {self.path} is missing; no draft's fate is judged until "
                                "it is back") from None
        except OSError as exc:
            raise ProviderError(f"drafts folder {self.path} cannot be read: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise ProviderError(f"drafts folder {self.path} is not a directory")

    def _read(self, path: Path) -> bytes | None:
        """The bytes of a regular file (never through a symlink); None only when nothing is there.

        A symlink in its place is returned as ``b""`` (there, but not our draft: the user's now); a
        file that cannot be read, or a folder or device in its place, raises :class:`ProviderError`.
        """
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return b""  # a symlink planted in the folder: not read, not ours
            raise ProviderError(f"cannot read draft {path}: {exc.strerror or exc}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ProviderError(f"draft {path} is not a regular file; leaving it alone")
            with os.fdopen(fd, "rb") as handle:
                fd = -1
                return handle.read(MAX_BYTES + 1)[:MAX_BYTES]
        except OSError as exc:
            raise ProviderError(f"cannot read draft {path}: {exc.strerror or exc}") from None
        finally:
            if fd >= 0:
                os.close(fd)

    def _sent_dir(self) -> Path | None:
        sent = self.path / SENT_DIR
        try:
            info = os.lstat(sent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ProviderError(f"cannot look into {sent}: {exc.strerror or exc}") from None
        return sent if stat.S_ISDIR(info.st_mode) else None

    def _scan(self, folder: Path, key: str) -> tuple[str, bytes] | None:
        """The first ``.eml`` file in ``folder`` whose X-Salvage-Key is ``key`` (name, bytes).

        A folder or a file that cannot be read raises :class:`ProviderError`: "not found" must mean
        that every file was looked at.
        """
        for name in _eml_names(folder):
            raw = self._read(folder / name)
            if not raw:
                continue
            try:
                headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
                value = headers.get(KEY_HEADER)
            except Exception:  # noqa: BLE001 - a mangled file is not ours to judge here
                continue
            if value is not None and str(value).strip() == key:
                return name, raw
        return None




def _eml_names(folder: Path) -> list[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise ProviderError(f"cannot list {folder}: {exc.strerror or exc}") from None
    return [entry.name for entry in entries
            if entry.name.endswith(".eml") and not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)]


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _check_name(name: str) -> str:
    """A draft id must be a plain ``.eml`` file name inside the folder (no paths, no dot files)."""
    if not _NAME.fullmatch(name or ""):
        raise ProviderError(f"{name!r} is not a draft file name made by the folder provider")
    return name
