"""The YAML configuration: typed models, loading with ``${ENV}`` interpolation, and plain errors.

Every problem in a config file is collected and reported with its key path, file and line, and
what was expected (:class:`ConfigError`); the CLI prints them and exits 2.
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import InitErrorDetails

from daemon import paths
from daemon.configfile import ConfigFileError, load_yaml, read_config_file
from daemon.reasons import REASONS, Reason

# Not a reason a user picks: the planner gives it to a reschedule request whose only problem is an
# odd hour caused by an invitation set up in another time zone (the fact is the honest reason).
TIME_ZONE_REASON = "time_zone"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(:\d{2})?")


def _clock_time(value: Any) -> Any:
    """A wall-clock time: a quoted "HH:MM" string (no zone), never a number YAML made of 9:00."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, str):
        match = _CLOCK.fullmatch(value.strip())
        if match:
            return f"{int(match.group(1)):02d}:{match.group(2)}{match.group(3) or ''}"
        raise ValueError(f'{value!r} is not a time of day; write times as quoted "HH:MM"')
    raise ValueError(f'{value!r} is not a time of day; write times as quoted "HH:MM"')


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class TimeRange(Strict):
    start: ClockTime = Field(description="Start of the range, HH:MM in the user's timezone.")
    end: ClockTime = Field(description="End of the range, HH:MM (exclusive).")

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
    start: ClockTime = Field(time(9, 0), description="Earliest start of a proposed slot.")
    end: ClockTime = Field(time(17, 30), description="Latest end of a proposed slot.")

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
    lookback_days: int = Field(
        14, ge=1, le=90,
        description="How far back `salvage missed` finds interviews; a case with no trouble closes this long after.",
    )
    close_after_days: int = Field(
        7, ge=1, le=60, description="A case whose follow-up apology was sent closes this many days later."
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
    language: Literal["en", "de"] = Field(
        "en", description="Language of the built-in templates: en (English) or de (German, formal)."
    )


class NotifyConfig(Strict):
    command: list[str] | None = Field(
        None,
        description="Command run when you should phone an interviewer; "
        "{message} and {phone} are replaced. Example: [notify-send, Salvage, '{message}'].",
    )
    desktop: bool = Field(
        True,
        description="Without a command: a desktop notification (notify-send on Linux, osascript on macOS) "
        "where one is available.",
    )


class StateConfig(Strict):
    path: Path | None = Field(None, description="SQLite state file; default in the state dir.")


# ---- provider sections ------------------------------------------------------------------------
#
# The frame knows no provider. Each provider declares its own section models (subclasses of
# ProviderSection, in its own module) and the provider registry installs a lookup for them here with
# install_provider_sections(). The frame then validates every ``calendar:``, ``drafts:`` and
# provider-named account section (``google:``, ``microsoft:``…) with exactly the model the provider will
# be given at run time, so `salvage config validate` and the JSON schema check what `salvage run`
# would. The lookup is a hook rather than an import because this module is the bottom layer: it must
# not import providers/ (tests/test_layers.py); the registry, one layer up, points down at it.


class ProviderSection(Strict):
    """Base of a provider's settings model: a ``calendar:``/``drafts:`` section or an account-level one.

    A calendar or drafts model has a ``type`` Literal naming its provider; ``needs`` names the
    account-level section it requires (``"google"`` for the Google calendar and drafts).
    """

    needs: ClassVar[str | None] = None

    @property
    def kind(self) -> str:
        """The provider named by ``type`` ('' for an account-level section, which has none)."""
        return str(getattr(self, "type", ""))


class ProviderSections(Protocol):
    """What the frame asks the provider registry (installed with :func:`install_provider_sections`)."""

    def section_model(self, role: str, kind: str) -> type[ProviderSection] | None:
        """The model of a ``calendar``/``drafts`` section of ``type: kind``, or of the account-level
        ``connection`` section named ``kind``; None when no provider has one."""
        ...

    def kinds(self, role: str) -> list[str]:
        """Every name that has a model for ``role`` (for messages and the JSON schema)."""
        ...


_sections: ProviderSections | None = None


def install_provider_sections(sections: ProviderSections) -> None:
    """Called once by :mod:`providers.registry` when it is imported."""
    global _sections
    _sections = sections


def provider_sections() -> ProviderSections:
    """The installed lookup; importing :mod:`providers.registry` installs it."""
    if _sections is None:
        raise RuntimeError("provider sections are not installed: import providers.registry before parsing a config")
    return _sections


class _ProviderSlot:
    """Marks a ``calendar``/``drafts`` field: its JSON schema is the union of the installed models."""

    def __init__(self, role: str) -> None:
        self.role = role

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        sections = provider_sections()
        models = [m for k in sections.kinds(self.role) if (m := sections.section_model(self.role, k)) is not None]
        if not models:
            return handler(core_schema)
        union: Any = Union[tuple(models)]  # noqa: UP007 - a runtime union of classes
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="type")])
        return handler(adapter.core_schema)


def _section(role: str, value: Any, info: ValidationInfo) -> ProviderSection:
    """Validate a ``calendar``/``drafts`` mapping with the model its ``type`` names."""
    if isinstance(value, ProviderSection):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping with a 'type' key, got {type(value).__name__}")
    sections = provider_sections()
    kind = value.get("type")
    model = sections.section_model(role, str(kind)) if kind is not None else None
    if model is not None:
        return model.model_validate(value, context=info.context)
    kinds = sections.kinds(role)  # only for the message
    choices = " or ".join(kinds) if len(kinds) <= 2 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
    example = f" (e.g. 'type: {kinds[0]}')" if kinds else ""
    if kind is None:
        raise ValueError(f"'type' is missing: say which kind of {role} this is, {choices}{example}")
    raise ValueError(f"unknown {role} type {kind!r}; the {role} types are {choices}")


class AccountConfig(Strict):
    name: str = Field(description="A short name, used by `salvage auth NAME` and in logs.")
    enabled: bool = True
    calendar: Annotated[ProviderSection, _ProviderSlot("calendar")] = Field(
        description="Where events come from: a section with a 'type' (see the providers)."
    )
    drafts: Annotated[ProviderSection, _ProviderSlot("drafts")] = Field(
        description="Where drafts go: a section with a 'type' (see the providers)."
    )
    # Account-level provider sections (``google:``, ``microsoft:``…), keyed by provider name. Written
    # in YAML as keys of the account; collected here by _connection_sections.
    connections: SkipJsonSchema[dict[str, ProviderSection]] = Field(default_factory=dict, exclude=True)
    poll_minutes: float = Field(5, ge=0.05, le=1440, description="How often to poll this account.")
    email: str | None = Field(None, description="This account's address, if not user.email.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError("use letters, digits, '-', '_' or '.', starting with a letter or digit")
        return value

    @field_validator("calendar", mode="before")
    @classmethod
    def _calendar(cls, value: Any, info: ValidationInfo) -> ProviderSection:
        return _section("calendar", value, info)

    @field_validator("drafts", mode="before")
    @classmethod
    def _drafts(cls, value: Any, info: ValidationInfo) -> ProviderSection:
        return _section("drafts", value, info)

    @model_validator(mode="wrap")
    @classmethod
    def _connection_sections(cls, data: Any, handler: ModelWrapValidatorHandler[AccountConfig],
                             info: ValidationInfo) -> AccountConfig:
        """Validate each provider-named key with its provider's model; the rest goes to the frame."""
        if not isinstance(data, dict):
            return handler(data)
        sections = provider_sections()
        raw = dict(data)
        found: dict[str, ProviderSection] = {}
        errors: list[InitErrorDetails] = []
        if "connections" in raw:  # the field's name, not a key users write
            errors.append({"type": "extra_forbidden", "loc": ("connections",), "input": raw.pop("connections")})
        for key in [k for k in raw if isinstance(k, str) and sections.section_model("connection", k) is not None]:
            value = raw.pop(key)
            if value is None:
                continue
            model = sections.section_model("connection", key)
            assert model is not None
            try:
                found[key] = model.model_validate(value, context=info.context)
            except ValidationError as exc:
                errors.extend(_relocated(exc, key))
        raw["connections"] = found
        try:
            account = handler(raw)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(exc.title, [*_relocated(exc), *errors]) from None
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return account

    @model_validator(mode="after")
    def _needed_sections(self) -> AccountConfig:
        for section in (self.calendar, self.drafts):
            needs = type(section).needs
            if needs is not None and needs not in self.connections:
                raise ValueError(f"a {needs} calendar or drafts needs a '{needs}:' section")
        return self

    def connection(self, name: str) -> ProviderSection | None:
        """The account-level section of provider ``name`` (e.g. ``google``), if given."""
        return self.connections.get(name)


def _relocated(exc: ValidationError, *prefix: str | int) -> list[InitErrorDetails]:
    """The errors of ``exc`` as init details (to re-raise merged), their paths under ``prefix``."""
    out: list[InitErrorDetails] = []
    for error in exc.errors():
        detail: InitErrorDetails = {"type": error["type"], "loc": (*prefix, *error["loc"]), "input": error["input"]}
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        out.append(detail)
    return out


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

    def mailbox(self, account_name: str) -> str:
        """The address of an account's mailbox: its ``email``, else the user's (lower case)."""
        for account in self.accounts:
            if account.name == account_name:
                return self._mailbox_of(account)
        return self.user.email.lower()

    def mailboxes(self) -> dict[str, str]:
        """Every account's mailbox address (:meth:`mailbox`), by account name, in one go."""
        return {account.name: self._mailbox_of(account) for account in self.accounts}

    def _mailbox_of(self, account: AccountConfig) -> str:
        return account.email.lower() if account.email else self.user.email.lower()

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
    loc = tuple(error["loc"])
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
    return f"{dotted or '(top level)'} ({where}): {message}"


def parse_config(text: str, source: Path | None = None) -> Config:
    """Parse and validate config text. Raises :class:`ConfigError` listing every problem."""
    name = str(source) if source else "<config>"
    try:
        data = load_yaml(text, name)  # refuses alias bombs, base-60 "times", .nan/.inf (daemon.configfile)
    except ConfigFileError as exc:
        raise ConfigError(exc.problems, source) from None
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
            elif isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
                updates[field_name] = {k: fix(v) for k, v in value.items()}
        return model.model_copy(update=updates) if updates else model

    fixed = fix(config)
    assert isinstance(fixed, Config)
    return fixed


def load_config(path: Path | None = None) -> Config:
    """Load the config file (default: the platform config dir). Raises :class:`ConfigError`."""
    source = (path or default_config_path()).expanduser().absolute()  # inner paths stay valid after a chdir
    try:
        text = read_config_file(source)  # a regular file of bounded size only (daemon.configfile)
    except FileNotFoundError:
        raise ConfigError(
            [f"{source}: no such file (run `salvage init` to write one, or pass --config PATH)"], source
        ) from None
    except ConfigFileError as exc:
        raise ConfigError(exc.problems, source) from None
    return parse_config(text, source)


def default_config_path() -> Path:
    env = os.environ.get("SALVAGE_CONFIG")
    return Path(env) if env else paths.config_dir() / "config.yaml"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file, for editors."""
    sections = provider_sections()
    account_fields: dict[str, Any] = {
        name: (model | None, Field(None, description=f"Settings of the {name} provider for this account."))
        for name in sections.kinds("connection")
        if (model := sections.section_model("connection", name)) is not None
    }
    account = create_model("AccountConfig", __base__=AccountConfig, **account_fields)
    frame = create_model("Config", __base__=Config, accounts=(list[account], Field(default_factory=list)))  # type: ignore[valid-type]
    schema = frame.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Salvage configuration"
    return schema


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """1-based line numbers of every key path in config text, e.g. ``("accounts", 0, "calendar")``."""
    return _line_index(text)
