"""`salvage service install|uninstall`: a systemd user unit (Linux) or a launchd agent (macOS).

Both run ``salvage run --config <absolute config>`` with the very ``salvage`` that ran ``install``,
restart it when it fails (not when it was stopped), and send its stderr to the journal (systemd) or
to ``~/Library/Logs/salvage.log`` (launchd). Nothing is enabled behind the user's back: the command
prints what to run next.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import shlex
import sys
from pathlib import Path

from rich.console import Console

from daemon.config import default_config_path, load_config

UNIT_NAME = "salvage.service"
LAUNCHD_LABEL = "org.salvage.run"
# Passed through to the service so it uses the same files as the shell that installed it.
ENV_PASSTHROUGH = ("SALVAGE_CONFIG_DIR", "SALVAGE_STATE_DIR")


def platform() -> str:
    """``darwin`` → launchd; anything else → systemd."""
    return sys.platform


def salvage_argv() -> list[str]:
    """How to start this same Salvage: the ``salvage`` script that is running, or ``python -m``."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "salvage" and script.exists():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "daemon.cli"]


def run_argv(config_path: Path) -> list[str]:
    """The full command line of the service."""
    return [*salvage_argv(), "run", "--config", str(config_path.expanduser().absolute())]


def service_env() -> dict[str, str]:
    return {name: os.environ[name] for name in ENV_PASSTHROUGH if os.environ.get(name)}


# ---- systemd ------------------------------------------------------------------------------------


def systemd_dir() -> Path:
    """``$XDG_CONFIG_HOME/systemd/user`` (``~/.config/systemd/user``), where user units live."""
    base = os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "systemd" / "user"


def _systemd_quote(arg: str, *, command: bool = True) -> str:
    """One ExecStart (``command``) or Environment word, as systemd will split and unescape it.

    ``%`` starts a specifier everywhere and is doubled; ``$`` is expanded only on command lines, so
    it is doubled there. A word with blanks, quotes, backslashes or ``;`` is double-quoted with
    C-style escapes.
    """
    text = arg.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if text and not any(c.isspace() or c in "\"'\\;" for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + escaped + '"'


def systemd_unit(argv: list[str], env: dict[str, str]) -> str:
    """The text of ``salvage.service``."""
    lines = [
        "# Written by `salvage service install`; `salvage service uninstall` removes it.",
        "[Unit]",
        "Description=Salvage: drafts the right email when a job interview is at risk",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_systemd_quote(a) for a in argv),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=30",
        # 2 is a bad config or another instance on the same state: restarting cannot help
        "RestartPreventExitStatus=2",
        "TimeoutStopSec=30",
        # stderr goes to the journal; log lines carry no timestamp of their own there
        "StandardError=journal",
        "SyslogIdentifier=salvage",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    lines += [f"Environment={_systemd_quote(f'{k}={v}', command=False)}" for k, v in sorted(env.items())]
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


# ---- launchd ------------------------------------------------------------------------------------


def launchd_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def launchd_plist(argv: list[str], env: dict[str, str]) -> bytes:
    """The XML property list of the launchd agent."""
    log = str(Path.home() / "Library" / "Logs" / "salvage.log")
    data: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": argv,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean stop
        "ThrottleInterval": 30,
        "ProcessType": "Background",
        "StandardErrorPath": log,
        "StandardOutPath": log,
        # launchd starts agents with a bare PATH; keep the installer's, so notify.command is found
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", os.defpath), **env},
    }
    return plistlib.dumps(data, fmt=plistlib.FMT_XML)


# ---- the command --------------------------------------------------------------------------------


def service_command(args: argparse.Namespace, out: Console) -> int:
    """Install or uninstall the user service (``--print`` shows the file instead of writing it)."""
    if args.service_command == "install":
        return _install(args, out)
    return _uninstall(out)


def _install(args: argparse.Namespace, out: Console) -> int:
    config_path = (getattr(args, "config", None) or default_config_path()).expanduser().absolute()
    load_config(config_path)  # a unit for a config that does not load would only crash-loop
    argv = run_argv(config_path)
    env = service_env()
    mac = platform() == "darwin"
    target = launchd_path() if mac else systemd_dir() / UNIT_NAME
    payload = launchd_plist(argv, env) if mac else systemd_unit(argv, env).encode()
    if getattr(args, "print_only", False):
        sys.stdout.write(payload.decode())
        sys.stdout.flush()
        return 0
    existed = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    if mac:
        (Path.home() / "Library" / "Logs").mkdir(parents=True, exist_ok=True)  # launchd will not create it
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, target)
    out.print(f"{'Updated' if existed else 'Wrote'} {target}", markup=False)
    out.print(f"It runs: {shlex.join(argv)}", markup=False)
    if mac:
        out.print("Start it now and at every login with:", markup=False)
        if existed:
            out.print(f"  launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}   (first unload the old one)", markup=False)
        out.print(f"  launchctl bootstrap gui/$(id -u) {target}", markup=False)
        out.print(f"Logs: {Path.home() / 'Library' / 'Logs' / 'salvage.log'}", markup=False)
    else:
        out.print("Start it now and at every login with:", markup=False)
        out.print(f"  systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}", markup=False)
        if existed:
            out.print(f"It was already installed: `systemctl --user restart {UNIT_NAME}` picks up the change.",
                      markup=False)
        out.print("Keep it running while you are logged out:  loginctl enable-linger $USER", markup=False)
        out.print(f"Logs: journalctl --user -u {UNIT_NAME} -f    Reload the config: "
                  f"systemctl --user reload {UNIT_NAME}", markup=False)
    out.print("Check on it with: salvage status", markup=False)
    return 0


def _uninstall(out: Console) -> int:
    mac = platform() == "darwin"
    target = launchd_path() if mac else systemd_dir() / UNIT_NAME
    if mac:
        out.print(f"Stop the running agent with:  launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}", markup=False)
    else:
        wants = systemd_dir() / "default.target.wants" / UNIT_NAME
        if wants.is_symlink():
            wants.unlink()  # what `systemctl --user disable` does; the unit file is going away
            out.print(f"Removed {wants}", markup=False)
    if not target.exists():
        out.print(f"Nothing to remove: {target} does not exist.", markup=False)
        return 0
    target.unlink()
    out.print(f"Removed {target}", markup=False)
    if not mac:
        out.print(f"Stop the running service with:  systemctl --user stop {UNIT_NAME} && "
                  "systemctl --user daemon-reload", markup=False)
    return 0
