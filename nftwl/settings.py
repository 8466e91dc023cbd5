"""All of nftwl's configuration: one pydantic-settings class.

Sources, highest precedence first: keyword arguments (the CLI), ``NFTWL_*`` environment
variables (nested keys with ``__``, e.g. ``NFTWL_WHITELISTS__DEFAULT__ACTION=reject``), the TOML
file (default ``/etc/nftwl/nftwl.toml``), then the defaults below. Relative whitelist paths are
resolved against the directory of the config file.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from nftwl.errors import ConfigError
from nftwl.model import Action

DEFAULT_CONFIG = Path("/etc/nftwl/nftwl.toml")
# nft object names: a whitelist name becomes part of set names such as "<name>_v4_nets".
# For pydantic (Rust regex: "$" is the end of the text) and re.fullmatch (Python's "$" would
# also match before a trailing newline, letting "a\n" through).
_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"


class WhitelistSettings(BaseModel):
    """One named whitelist: who may connect (sources) to what (ports)."""

    model_config = ConfigDict(extra="forbid")

    sources: Path = Path("whiteiplist.txt")
    """File of allowed source addresses, networks and ranges."""
    ports: Path = Path("whiteportlist.txt")
    """File of protected ports."""
    action: Action = Action.DROP
    """What to do with a new connection to a protected port from a source not in the list."""
    allow_empty: bool = False
    """Apply an empty source or port list (after it stayed empty for settle_seconds)."""


class Settings(BaseSettings):
    """nftwl's settings. Every key can also be set as ``NFTWL_<KEY>``."""

    model_config = SettingsConfigDict(
        env_prefix="NFTWL_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    _toml_file: ClassVar[Path | None] = None

    table: str = Field("nftwl", pattern=_NAME)
    """Name of the ``inet`` table nftwl owns. Nothing outside it is ever touched."""
    state_dir: Path = Path("/var/lib/nftwl")
    """Where the last-known-good snapshot and the status file live."""
    chain_priority: int = Field(0, ge=-199, le=400)
    """Priority of nftwl's input base chain (0 is nft's "filter"). Not below -199: before
    conntrack (-200) "ct state established" never matches, and removing a source would cut its
    open connections."""
    invalid_input: Literal["strict", "lenient"] = "strict"
    """strict: one bad line refuses the whole update. lenient: apply the valid lines."""
    debounce_ms: int = Field(300, ge=10, le=60_000)
    """Events closer together than this are handled as one batch."""
    settle_seconds: float = Field(2.0, ge=0, le=3600)
    """How long a list must stay empty before an allowed empty update is applied."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    whitelists: dict[str, WhitelistSettings] = Field(
        default_factory=lambda: {"default": WhitelistSettings()}
    )
    """Named whitelists. Default: one, ``default``, from whiteiplist.txt and whiteportlist.txt."""

    config_file: Path | None = None
    """The file these settings were read from (set by :func:`load_settings`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    @property
    def config_dir(self) -> Path:
        return self.config_file.parent if self.config_file else DEFAULT_CONFIG.parent

    def watched_files(self) -> dict[str, tuple[Path, Path]]:
        """Whitelist name -> (sources path, ports path), absolute."""
        return {
            name: (self.resolve(wl.sources), self.resolve(wl.ports))
            for name, wl in self.whitelists.items()
        }

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.config_dir / path


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``path`` (or the default file if it exists) and the environment.

    Raises ConfigError naming the file and the key on any problem.
    """
    # A file named by --config or NFTWL_CONFIG must exist: a typo must not silently mean defaults.
    explicit = path is not None or bool(os.environ.get("NFTWL_CONFIG"))
    path = Path(path or os.environ.get("NFTWL_CONFIG") or DEFAULT_CONFIG)
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: config file not found")
        toml_file = None
    else:
        toml_file = path.resolve()
        try:
            with open(toml_file, "rb") as fh:
                tomllib.load(fh)
        except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError too
            raise ConfigError(f"{path}: cannot read config: {exc}") from None

    class _FromFile(Settings):
        _toml_file: ClassVar[Path | None] = toml_file

    try:
        _check_environment()
        loaded = _FromFile(**overrides)
    except SettingsError as exc:
        # pydantic-settings could not even decode a value (e.g. NFTWL_WHITELISTS=garbage).
        raise ConfigError(f"environment: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path if toml_file else None)) from None
    loaded = loaded.model_copy(
        update={"config_file": toml_file or (path.resolve() if explicit else None)}
    )
    # Like the whitelist paths, a relative state_dir means "next to the config", never the
    # daemon's working directory (which is / under systemd).
    loaded = loaded.model_copy(update={"state_dir": loaded.resolve(loaded.state_dir)})
    bad = [n for n in loaded.whitelists if not _valid_name(n)]
    if bad:
        shown = bad[0] if bad[0].isprintable() else repr(bad[0])
        where = f"{path}: " if toml_file else ""
        raise ConfigError(
            f"{where}whitelists.{shown}: name must start with a letter and hold only"
            " letters, digits and '_' (at most 32 characters)"
        )
    if not loaded.whitelists:
        raise ConfigError(f"{path}: whitelists: at least one whitelist must be configured")
    return loaded


def _valid_name(name: str) -> bool:
    return re.fullmatch(_NAME[1:-1], name) is not None


def _check_environment() -> None:
    """An NFTWL_* variable that names no setting is a typo; say so instead of ignoring it."""
    known = {f.upper() for f in Settings.model_fields if f != "config_file"} | {"CONFIG"}
    for var in os.environ:
        if var.startswith("NFTWL_") and var[6:].split("__")[0] not in known:
            raise ConfigError(f"environment {var}: unknown setting (see the README for the keys)")


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path else ""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README for the schema)"
        env = f"NFTWL_{str(err['loc'][0]).upper()}" if err["loc"] else ""
        from_env = env and any(v == env or v.startswith(env + "__") for v in os.environ)
        lines.append(f"{f'environment {env}: ' if from_env else where}{key}: {msg}")
    return "\n".join(lines)
