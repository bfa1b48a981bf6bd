"""A real Radicale CalDAV server for tests: a subprocess on a loopback port, storage in a temp dir.

Radicale is a test dependency (pyproject ``[test]``). Users are throwaway htpasswd entries (plain
text, which Radicale supports for exactly this kind of use).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from servers.dovecot import free_port


@dataclass
class Radicale:
    """One Radicale process; ``url`` is its root (discovery starts there)."""

    root: Path
    users: dict[str, str] = field(default_factory=dict)
    tls: tuple[Path, Path, Path] | None = None  # (certificate chain, key, CA that signed it)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        (self.root / "collections").mkdir(parents=True, exist_ok=True)
        self._write_users()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/"

    def _write_users(self) -> None:
        (self.root / "users").write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))

    def add_user(self, name: str, password: str) -> None:
        """A user (Radicale re-reads the htpasswd file when it changes)."""
        self.users[name] = password
        self._write_users()

    def start(self) -> None:
        config = self.root / "config"
        tls = f"ssl = True\ncertificate = {self.tls[0]}\nkey = {self.tls[1]}\n" if self.tls else ""
        config.write_text(f"""
[server]
hosts = 127.0.0.1:{self.port}
{tls}[auth]
type = htpasswd
htpasswd_filename = {self.root / 'users'}
htpasswd_encryption = plain
delay = 0
[storage]
filesystem_folder = {self.root / 'collections'}
[logging]
level = warning
[web]
type = none
""")
        self.proc = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"radicale exited: {err}")
            try:
                httpx.get(self.url, timeout=1, verify=self._verify())
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("radicale did not start in time")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    # ---- seeding, as another client (the organizer's invitations arriving) -------------------------

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, self.users[user]), timeout=10, verify=self._verify())

    def _verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.tls[2])) if self.tls else True

    def make_calendar(self, user: str, name: str, display: str) -> str:
        """MKCALENDAR ``/user/name/`` with a display name; returns its path."""
        path = f"/{user}/{name}/"
        body = f"""<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><D:displayname>{display}</D:displayname></D:prop></D:set>
</C:mkcalendar>"""
        with self.client(user) as http:
            resp = http.request("MKCALENDAR", path, content=body)
            assert resp.status_code in (201, 405), resp.text
        return path

    def put(self, user: str, calendar: str, uid: str, ics: str) -> None:
        with self.client(user) as http:
            resp = http.put(f"{calendar}{uid}.ics", content=ics.encode(),
                            headers={"Content-Type": "text/calendar; charset=utf-8"})
            assert resp.status_code in (201, 204), resp.text

    def delete(self, user: str, calendar: str, uid: str) -> None:
        with self.client(user) as http:
            resp = http.delete(f"{calendar}{uid}.ics")
            assert resp.status_code in (200, 204), resp.text


def make_server(tls: tuple[Path, Path, Path] | None = None) -> Radicale:
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None  # memory: many small files
    return Radicale(root=Path(tempfile.mkdtemp(prefix="salvage-radicale-", dir=where)), tls=tls)


def remove(server: Radicale) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def vevent(uid: str, title: str, start: str, end: str, *, organizer: str = "rita@acme.example",
           attendee: str = "alex@example.com", extra: str = "") -> str:
    """A VCALENDAR with one VEVENT; ``start``/``end`` in iCalendar form (``20261203T140000Z``)."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Salvage tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:{title}\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        f"ORGANIZER;CN=Rita Recruiter:mailto:{organizer}\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED;CN=Alex Morgan:mailto:{attendee}\r\n"
        f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
