"""A real Dovecot IMAP server for tests: own config, temp dirs, loopback ports, throwaway users.

Debian's ``dovecot-imapd`` provides the binary (``.ci/run`` installs it). Nothing of the system's
own Dovecot setup is used: the config below is complete, every path lives in a temp dir, and the
process runs in the foreground (``-F``) so the fixture can stop it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable_reason() -> str | None:
    """Why Dovecot cannot be used here, or None when it can."""
    if DOVECOT is None:
        return "Dovecot is not installed (apt-get install -y dovecot-imapd; .ci/run does this)"
    return None


@dataclass
class Dovecot:
    """One Dovecot process serving IMAP (plain + STARTTLS) and IMAPS on loopback ports."""

    root: Path
    cert_pem: Path | None = None  # key + certificate chain, for TLS
    users: dict[str, str] = field(default_factory=dict)
    special_use: bool = True  # False: folders carry no \\Drafts / \\Sent flags (older servers)
    port: int = 0
    tls_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the mail user (not root) must reach its maildir
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        self._write_config()

    # ---- users and mail ---------------------------------------------------------------------------

    @property
    def _ids(self) -> tuple[int, int]:
        if os.geteuid() == 0:
            return 65534, 65534  # nobody: imap processes refuse to run as root
        return os.getuid(), os.getgid()

    def add_user(self, name: str, password: str) -> None:
        """A mail user with a Maildir holding INBOX, Drafts and Sent."""
        self.users[name] = password
        uid, gid = self._ids
        home = self.maildir(name)
        for folder in ("", ".Drafts", ".Sent") if self.special_use else ("",):
            for sub in ("cur", "new", "tmp"):
                (home / folder / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in [home.parent, *home.rglob("*"), home]:
                os.chown(path, uid, gid)
        lines = [f"{user}:{{PLAIN}}{pw}:{uid}:{gid}::{self.root / 'mail' / user}" for user, pw in self.users.items()]
        passwd = self.root / "passwd"
        passwd.write_text("\n".join(lines) + "\n")
        os.chmod(passwd, 0o644)

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def write_messages(self, user: str, folder: str, messages: list[bytes], flags: str = "") -> None:
        """Drop messages straight into a maildir folder ('' is INBOX), fast, before Dovecot indexes them."""
        base = self.maildir(user) / (f".{folder}" if folder else "") / "cur"
        stamp = int(time.time())
        for i, raw in enumerate(messages):  # root-owned 0644 files are fine: the folder is the user's
            with open(base / f"{stamp}.M{i}P{os.getpid()}.salvage-test:2,{flags}", "wb") as handle:
                handle.write(raw)

    # ---- process ----------------------------------------------------------------------------------

    def _write_config(self) -> None:
        root = self.root
        if os.geteuid() == 0:
            owners = "default_login_user = dovenull\ndefault_internal_user = dovecot\n"
        else:
            me = os.environ.get("USER") or str(os.getuid())
            owners = f"default_login_user = {me}\ndefault_internal_user = {me}\n"
        if self.cert_pem is not None:
            ssl = f"ssl = yes\nssl_cert = <{self.cert_pem}\nssl_key = <{self.cert_pem}\n"
        else:
            ssl = "ssl = no\n"
        folders = """
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }""" if self.special_use else ""
        config = f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{owners}{ssl}
disable_plaintext_auth = no
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
auth_mechanisms = plain login xoauth2 oauthbearer
mail_location = maildir:~/Maildir
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
namespace inbox {{
  inbox = yes
  separator = /{folders}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port if self.cert_pem is not None else 0}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No reachable penalty socket: tests log in wrongly on purpose, and the growing delay per IP
  # that protects a real server would slow every later login from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
        (root / "dovecot.conf").write_text(config)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        assert DOVECOT is not None
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() ends the imap processes too
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start in time\n{self.log()}")

    def stop(self) -> None:
        """Stop the server (and every process it started)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the imap processes of open connections go too
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def make_server(cert_pem: Path | None = None, *, special_use: bool = True) -> Dovecot:
    """A Dovecot in a fresh temp dir (world-traversable, which pytest's tmp_path is not)."""
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None  # memory: maildirs are many files
    root = Path(tempfile.mkdtemp(prefix="salvage-dovecot-", dir=where))
    return Dovecot(root=root, cert_pem=cert_pem, special_use=special_use)


def remove(server: Dovecot) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
