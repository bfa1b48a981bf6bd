"""The YAML configuration: typed models, loading with ``${ENV}`` interpolation, and plain errors.

Every problem in a config file is collected and reported with its key path, file and line, and
what was expected (:class:`ConfigError`); the CLI prints them and exits 2.
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon import paths

REASONS = (
    "scheduling_conflict",
    "illness",
    "family_emergency",
    "current_job",
    "technical_problem",
    "transport_delay",
    "own_mistake",
)
# Not a reason a user picks: the planner gives it to a reschedule request whose only problem is an
# odd hour caused by an invitation set up in another time zone (the fact is the honest reason).
TIME_ZONE_REASON = "time_zone"
Reason = Literal[
    "scheduling_conflict",
    "illness",
    "family_emergency",
    "current_job",
    "technical_problem",
    "transport_delay",
    "own_mistake",
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


class TimeRange(Strict):
    start: time = Field(description="Start of the range, HH:MM in the user's timezone.")
    end: time = Field(description="End of the range, HH:MM (exclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        return self


class UserConfig(Strict):
    name: str = Field(description="Your name, used to sign drafts.")
    email: str = Field(description="Your email address (the drafts' From).")
    timezone: str = Field(description="Your IANA timezone, e.g. Europe/London.")
    phone: str | None = Field(None, description="Your phone number, offered in drafts if set.")
    signature: str | None = Field(None, description="Extra lines under your name in drafts.")
    aliases: list[str] = Field(default_factory=list, description="Other addresses that are you.")

    _tz = field_validator("timezone")(_check_zone)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is not an email address")
        return value.lower()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset([self.email, *(a.lower() for a in self.aliases)])


class WorkingHours(Strict):
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]),
        description="Days on which slots may be proposed.",
    )
    start: time = Field(time(9, 0), description="Earliest start of a proposed slot.")
    end: time = Field(time(17, 30), description="Latest end of a proposed slot.")

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        if not self.days:
            raise ValueError("days must name at least one weekday")
        return self


class Buffers(Strict):
    before_minutes: int = Field(15, ge=0, le=480, description="Wanted gap before an interview.")
    after_minutes: int = Field(10, ge=0, le=480, description="Wanted gap after an interview.")
    travel_minutes: int = Field(
        45, ge=0, le=720, description="Wanted gap around an in-person interview at another place."
    )


class Window(Strict):
    past_days: int = Field(1, ge=0, le=60, description="How far back to read calendars.")
    future_days: int = Field(30, ge=1, le=365, description="How far ahead to read calendars.")


class MissedConfig(Strict):
    grace_minutes: int = Field(
        10, ge=0, le=240, description="After start + grace, an interview may be declared missed."
    )
    followup_after_hours: int = Field(
        20, ge=1, le=168, description="When to draft the follow-up apology after a missed interview."
    )
    tag: str = Field(
        "missed", description="A word in the event title or categories that marks it missed."
    )


class ClassificationConfig(Strict):
    threshold: float = Field(3.0, description="Score at or above which an event is an interview.")
    keywords: list[str] = Field(
        default_factory=list, description="Extra title/body keywords (added to the built-in list)."
    )
    hiring_domains: list[str] = Field(
        default_factory=list, description="Extra domains of hiring tools or recruiters."
    )
    negative_keywords: list[str] = Field(
        default_factory=list, description="Extra words (title or description) that mark an event as not an interview."
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Override rule weights by rule name (see `salvage check --format json`).",
    )
    include: list[str] = Field(
        default_factory=list, description="Event ids or title substrings always treated as interviews."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Event ids or title substrings never treated as interviews."
    )


class DetectionConfig(Strict):
    waking_hours: TimeRange = Field(
        default_factory=lambda: TimeRange(start=time(7, 0), end=time(22, 0)),
        description="Interviews outside these hours (your timezone) get an odd_hour risk.",
    )
    join_info_hours: int = Field(
        48, ge=1, le=720, description="How close to its start a remote interview must have a link."
    )
    ignore_kinds: list[str] = Field(
        default_factory=list, description="Risk kinds to ignore, e.g. [tight_buffer]."
    )


class SlotsConfig(Strict):
    count: int = Field(3, ge=1, le=10, description="How many alternative slots to propose.")
    duration_minutes: int | None = Field(
        None, ge=15, le=480, description="Slot length; default: the interview's own length."
    )
    min_notice_hours: int = Field(
        24, ge=0, le=336, description="Earliest a proposed slot may start, from now."
    )
    horizon_days: int = Field(14, ge=1, le=60, description="How far ahead to look for slots.")
    step_minutes: int = Field(30, ge=5, le=120, description="Slots start on multiples of this.")
    spread: bool = Field(True, description="Prefer slots on different days.")


class DraftsConfig(Strict):
    reason: Reason = Field(
        "scheduling_conflict",
        description="Default reason given in drafts: " + ", ".join(REASONS) + ".",
    )
    templates_dir: Path | None = Field(
        None, description="A folder whose templates override the built-in ones (same file names)."
    )
    html: bool = Field(False, description="Add an HTML part to drafts.")
    language: str = Field("en", description="Template language.")


class NotifyConfig(Strict):
    command: list[str] | None = Field(
        None,
        description="Command run when you should phone an interviewer; "
        "{message} and {phone} are replaced. Example: [notify-send, Salvage, '{message}'].",
    )


class StateConfig(Strict):
    path: Path | None = Field(None, description="SQLite state file; default in the state dir.")


# ---- providers --------------------------------------------------------------------------------


class IcsCalendar(Strict):
    type: Literal["ics"]
    path: Path | None = Field(None, description="A local .ics file.")
    url: str | None = Field(None, description="An http(s) URL (e.g. a secret iCal address).")
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS-intercepting networks.")

    @model_validator(mode="after")
    def _one_source(self) -> IcsCalendar:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        if self.url is not None and not re.match(r"(?i)^(https?|webcal)://", self.url):
            raise ValueError("url must start with http://, https:// or webcal://")
        return self


class GoogleCalendar(Strict):
    type: Literal["google"]
    calendars: list[str] | Literal["all"] = Field(
        default_factory=lambda: ["primary"],
        description="Calendar ids to read, or 'all' for every calendar you can see.",
    )


class MicrosoftCalendar(Strict):
    type: Literal["microsoft"]
    calendars: list[str] | Literal["all"] = Field(
        default_factory=lambda: ["default"],
        description="Calendar ids to read ('default' is your main calendar), or 'all'.",
    )


def _password_source(password_env: str | None, password_file: Path | None, needed: bool) -> None:
    if needed and (password_env is None) == (password_file is None):
        raise ValueError("give exactly one of password_env (an environment variable's name) or "
                         "password_file (a file readable only by you, mode 0600)")
    if not needed and (password_env is not None or password_file is not None):
        raise ValueError("password_env / password_file are only used with auth: password")
    if password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
        raise ValueError(f"password_env {password_env!r} is not an environment variable name")


CalendarConfig = Annotated[
    IcsCalendar | GoogleCalendar | MicrosoftCalendar, Field(discriminator="type")
]


class FolderDrafts(Strict):
    type: Literal["folder"]
    path: Path = Field(description="Folder where drafts are written as .eml files.")


class GoogleDrafts(Strict):
    type: Literal["google"]


class MicrosoftDrafts(Strict):
    type: Literal["microsoft"]


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ImapDrafts(Strict):
    type: Literal["imap"]
    host: str = Field(description="The IMAP server, e.g. imap.fastmail.com or imap.gmail.com.")
    port: int | None = Field(None, ge=1, le=65535, description="Default: 993 for tls, 143 for starttls.")
    security: Literal["tls", "starttls", "none"] = Field(
        "tls", description="tls (implicit TLS), starttls, or none (only for a server on this machine)."
    )
    username: str = Field(description="The login name (often your email address).")
    auth: Literal["password"] = Field("password", description="password: a password or app password.")
    password_env: str | None = Field(
        None, description="Name of an environment variable holding the password or app password."
    )
    password_file: Path | None = Field(
        None, description="A file (mode 0600) holding the password or app password."
    )
    drafts_folder: str | None = Field(
        None, description="Drafts folder name; default: the one marked \\Drafts (RFC 6154), else a common name."
    )
    sent_folder: str | None = Field(
        None, description="Sent folder name; default: the one marked \\Sent, else a common name."
    )
    ca_bundle: Path | None = Field(None, description="CA bundle for a private CA or TLS-intercepting network.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _checks(self) -> ImapDrafts:
        _password_source(self.password_env, self.password_file, self.auth == "password")
        if self.security == "none" and self.host.lower() not in _LOOPBACK:
            raise ValueError("security: none sends your password in the clear; use tls or starttls "
                             "(none is only allowed for a server on this machine)")
        return self

    @property
    def server_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


DraftsDestination = Annotated[
    FolderDrafts | GoogleDrafts | MicrosoftDrafts | ImapDrafts, Field(discriminator="type")
]


class GoogleConnection(Strict):
    client_secrets: Path | None = Field(
        None, description="OAuth client JSON downloaded from Google Cloud (Desktop app)."
    )
    token_file: Path | None = Field(None, description="Where the token is kept; default in state dir.")
    read_mail: bool = Field(
        True,
        description="Ask for gmail.readonly to thread drafts under the invitation and tell "
        "sent from deleted drafts. false: unthreaded drafts, compose scope only.",
    )
    api_endpoint: str | None = Field(None, description="Base URL override (proxies, testing).")
    token_uri: str | None = Field(None, description="OAuth token endpoint override.")
    auth_uri: str | None = Field(None, description="OAuth authorization endpoint override.")
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS-intercepting networks.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    auth_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Local port for the sign-in redirect of `salvage auth`; 0 picks a free one. "
        "Fix it (e.g. 8085) to forward it over SSH with --no-browser.",
    )


class MicrosoftConnection(Strict):
    client_id: str | None = Field(None, description="Your app registration's client id.")
    tenant: str = Field("common", description="common, organizations, consumers or a tenant id.")
    authority: str | None = Field(
        None, description="Full authority URL (national clouds), overrides tenant."
    )
    graph_url: str = Field("https://graph.microsoft.com", description="Graph root (national clouds).")
    auth_flow: Literal["device_code", "interactive"] = Field("device_code")
    token_cache: Path | None = Field(None, description="Token cache file; default in state dir.")
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS-intercepting networks.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)


class AccountConfig(Strict):
    name: str = Field(description="A short name, used by `salvage auth NAME` and in logs.")
    enabled: bool = True
    calendar: CalendarConfig
    drafts: DraftsDestination
    google: GoogleConnection | None = None
    microsoft: MicrosoftConnection | None = None
    poll_minutes: float = Field(5, ge=0.05, le=1440, description="How often to poll this account.")
    email: str | None = Field(None, description="This account's address, if not user.email.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError("use letters, digits, '-', '_' or '.', starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _connections(self) -> AccountConfig:
        types = {self.calendar.type, self.drafts.type}
        if "google" in types and self.google is None:
            raise ValueError("a google calendar or drafts needs a 'google:' section")
        if "microsoft" in types and self.microsoft is None:
            raise ValueError("a microsoft calendar or drafts needs a 'microsoft:' section")
        return self


class Config(Strict):
    user: UserConfig
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    buffers: Buffers = Field(default_factory=Buffers)
    window: Window = Field(default_factory=Window)
    missed: MissedConfig = Field(default_factory=MissedConfig)
    classification: ClassificationConfig = Field(default_factory=ClassificationConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    slots: SlotsConfig = Field(default_factory=SlotsConfig)
    drafts: DraftsConfig = Field(default_factory=DraftsConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    accounts: list[AccountConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_accounts(self) -> Config:
        seen: set[str] = set()
        for account in self.accounts:
            if account.name in seen:
                raise ValueError(f"two accounts are named {account.name!r}")
            seen.add(account.name)
        return self

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        choices = ", ".join(a.name for a in self.accounts) or "none configured"
        raise ConfigError([f"no account named {name!r} (accounts: {choices})"])

    @property
    def state_path(self) -> Path:
        return self.state.path or paths.state_dir() / "state.sqlite3"


# ---- loading ----------------------------------------------------------------------------------


class ConfigError(Exception):
    """One or more problems with the configuration, each a ready-to-print line."""

    def __init__(self, problems: list[str], source: Path | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"invalid configuration in {source}" if source else "invalid configuration"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, where: str, problems: list[str]) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in strings with environment values."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(f"{where}: environment variable {name} is not set")
            return ""

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _line_index(text: str) -> dict[tuple[str | int, ...], int]:
    """Map key paths to 1-based line numbers, from the YAML node tree."""
    lines: dict[tuple[str | int, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node | None, path: tuple[str | int, ...]) -> None:
        if node is None:
            return
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    walk(root, ())
    return lines


def _describe(error: Any, lines: dict[tuple[str | int, ...], int], source: str) -> str:
    raw = error["loc"]
    # Pydantic puts the discriminator tag into the path of a tagged union member: drop it.
    loc = tuple(p for i, p in enumerate(raw) if not (p in _UNION_TAGS and i and raw[i - 1] in ("calendar", "drafts")))
    dotted = ""
    for part in loc:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    line = None
    probe = loc
    while probe and line is None:
        line = lines.get(probe)
        probe = probe[:-1]
    where = f"{source}:{line}" if line else source
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see config.example.yaml)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif error["type"] == "union_tag_invalid":
        message = f"unknown type {error['ctx']['tag']!r}; expected one of {error['ctx']['expected_tags']}"
    return f"{dotted or '(top level)'} ({where}): {message}"


_UNION_TAGS = {"ics", "google", "microsoft", "folder", "caldav", "imap"}


def parse_config(text: str, source: Path | None = None) -> Config:
    """Parse and validate config text. Raises :class:`ConfigError` listing every problem."""
    name = str(source) if source else "<config>"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: not valid YAML: {problem}"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{name}: the top level must be a mapping of keys"], source)
    problems: list[str] = []
    data = _interpolate(data, "", problems)
    base = source.parent if source else Path.cwd()
    try:
        config = Config.model_validate(data, context={"base": base})
    except ValidationError as exc:
        lines = _line_index(text)
        problems.extend(_describe(e, lines, name) for e in exc.errors())
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    return _resolve_paths(config, base)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Make relative paths relative to the config file, and expand ``~``."""

    def fix(model: BaseModel) -> BaseModel:
        updates: dict[str, Any] = {}
        for field_name in type(model).model_fields:
            value = getattr(model, field_name)
            if isinstance(value, Path):
                path = value.expanduser()
                updates[field_name] = path if path.is_absolute() else (base / path)
            elif isinstance(value, BaseModel):
                updates[field_name] = fix(value)
            elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
                updates[field_name] = [fix(v) for v in value]
        return model.model_copy(update=updates) if updates else model

    fixed = fix(config)
    assert isinstance(fixed, Config)
    return fixed


def load_config(path: Path | None = None) -> Config:
    """Load the config file (default: the platform config dir). Raises :class:`ConfigError`."""
    source = (path or default_config_path()).expanduser().absolute()  # inner paths stay valid after a chdir
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{source}: no such file (copy config.example.yaml there, or pass --config PATH)"], source
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: cannot read: {exc}"], source) from None
    return parse_config(text, source)


def default_config_path() -> Path:
    env = os.environ.get("SALVAGE_CONFIG")
    return Path(env) if env else paths.config_dir() / "config.yaml"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file, for editors."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Salvage configuration"
    return schema
