"""Configuration (nftwl.settings): defaults, TOML, environment, and errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import nftwl.settings as settings_module
from nftwl.errors import ConfigError
from nftwl.model import Action
from nftwl.settings import Settings, WhitelistSettings, load_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NFTWL_* variables from the caller, and no real /etc/nftwl/nftwl.toml."""
    for key in list(os.environ):
        if key.startswith("NFTWL_"):
            monkeypatch.delenv(key)
    monkeypatch.setattr(settings_module, "DEFAULT_CONFIG", tmp_path / "etc-absent" / "nftwl.toml")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class TestDefaults:
    def test_defaults_without_a_config_file(self, tmp_path: Path) -> None:
        """Without any file: one whitelist 'default' from whiteiplist.txt and whiteportlist.txt."""
        s = load_settings()
        assert s.table == "nftwl"
        assert s.state_dir == Path("/var/lib/nftwl")
        assert s.invalid_input == "strict"
        assert s.chain_priority == 0
        assert s.config_file is None
        assert list(s.whitelists) == ["default"]
        wl = s.whitelists["default"]
        assert wl == WhitelistSettings(
            sources=Path("whiteiplist.txt"),
            ports=Path("whiteportlist.txt"),
            action=Action.DROP,
            allow_empty=False,
        )

    def test_default_files_live_next_to_the_default_config(self, tmp_path: Path) -> None:
        """Without a config file, relative whitelist paths resolve in the default config's dir."""
        s = load_settings()
        etc = tmp_path / "etc-absent"
        assert s.watched_files() == {
            "default": (etc / "whiteiplist.txt", etc / "whiteportlist.txt")
        }

    def test_empty_config_file_gives_the_defaults(self, tmp_path: Path) -> None:
        """An empty TOML file is valid and means all defaults, files next to it."""
        cfg = write(tmp_path / "conf" / "nftwl.toml", "")
        s = load_settings(cfg)
        assert s.config_file == cfg.resolve()
        assert s.watched_files()["default"] == (
            tmp_path / "conf" / "whiteiplist.txt",
            tmp_path / "conf" / "whiteportlist.txt",
        )

    def test_default_config_is_read_when_it_exists(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --config, the default config file is used if present."""
        cfg = write(tmp_path / "etc" / "nftwl.toml", 'table = "fromdefault"\n')
        monkeypatch.setattr(settings_module, "DEFAULT_CONFIG", cfg)
        assert load_settings().table == "fromdefault"


class TestToml:
    def test_full_config(self, tmp_path: Path) -> None:
        """Every documented key is read from TOML, including several named whitelists."""
        cfg = write(
            tmp_path / "nftwl.toml",
            """
table = "edge"
state_dir = "/run/nftwl-test"
chain_priority = -10
invalid_input = "lenient"
debounce_ms = 50
settle_seconds = 0.5
log_level = "debug"
log_format = "json"

[whitelists.web]
sources = "web/allow.txt"
ports = "/srv/web/ports.txt"
action = "reject"
allow_empty = true

[whitelists.ssh]
sources = "ssh.txt"
ports = "ssh-ports.txt"
""",
        )
        s = load_settings(cfg)
        assert (s.table, s.state_dir, s.chain_priority) == ("edge", Path("/run/nftwl-test"), -10)
        assert (s.invalid_input, s.debounce_ms, s.settle_seconds) == ("lenient", 50, 0.5)
        assert (s.log_level, s.log_format) == ("debug", "json")
        assert set(s.whitelists) == {"web", "ssh"}
        assert s.whitelists["web"].action is Action.REJECT
        assert s.whitelists["web"].allow_empty is True
        assert s.whitelists["ssh"].action is Action.DROP

    def test_relative_paths_resolve_against_the_config_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Relative whitelist paths mean 'next to the config file', whatever the working dir."""
        cfg = write(
            tmp_path / "etc" / "nftwl" / "nftwl.toml",
            '[whitelists.web]\nsources = "lists/allow.txt"\nports = "/abs/ports.txt"\n',
        )
        elsewhere = tmp_path / "cwd"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        s = load_settings(Path("../etc/nftwl/nftwl.toml"))
        assert s.config_file == cfg.resolve()
        assert s.watched_files() == {
            "web": (tmp_path / "etc" / "nftwl" / "lists" / "allow.txt", Path("/abs/ports.txt"))
        }

    def test_nftwl_config_variable_selects_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NFTWL_CONFIG names the config file and is not mistaken for a setting."""
        cfg = write(tmp_path / "x.toml", 'table = "viaenv"\n')
        monkeypatch.setenv("NFTWL_CONFIG", str(cfg))
        assert load_settings().table == "viaenv"

    def test_nftwl_config_naming_a_missing_file_is_an_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A config file named in NFTWL_CONFIG that does not exist is an error, not the defaults."""
        monkeypatch.setenv("NFTWL_CONFIG", str(tmp_path / "typo.toml"))
        with pytest.raises(ConfigError, match=r"typo\.toml: config file not found"):
            load_settings()


class TestEnvironment:
    def test_table_and_state_dir_from_env(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NFTWL_TABLE and NFTWL_STATE_DIR override the file."""
        cfg = write(tmp_path / "nftwl.toml", 'table = "fromfile"\nstate_dir = "/from/file"\n')
        monkeypatch.setenv("NFTWL_TABLE", "fromenv")
        monkeypatch.setenv("NFTWL_STATE_DIR", str(tmp_path / "state"))
        s = load_settings(cfg)
        assert s.table == "fromenv"
        assert s.state_dir == tmp_path / "state"

    def test_nested_whitelist_key_from_env_merges_with_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NFTWL_WHITELISTS__DEFAULT__ACTION changes one key and keeps the file's other keys."""
        cfg = write(
            tmp_path / "nftwl.toml", '[whitelists.default]\nsources = "mine.txt"\naction = "drop"\n'
        )
        monkeypatch.setenv("NFTWL_WHITELISTS__DEFAULT__ACTION", "reject")
        wl = load_settings(cfg).whitelists["default"]
        assert wl.action is Action.REJECT
        assert wl.sources == Path("mine.txt")

    def test_nested_whitelist_key_from_env_without_file(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The nested variable also works on the built-in default whitelist."""
        monkeypatch.setenv("NFTWL_WHITELISTS__DEFAULT__ACTION", "reject")
        s = load_settings()
        assert list(s.whitelists) == ["default"]
        assert s.whitelists["default"].action is Action.REJECT
        assert s.whitelists["default"].sources == Path("whiteiplist.txt")

    def test_keyword_overrides_beat_env_and_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Precedence: keyword arguments (CLI) > environment > TOML file > defaults."""
        cfg = write(tmp_path / "nftwl.toml", 'table = "file"\nchain_priority = 5\n')
        monkeypatch.setenv("NFTWL_TABLE", "env")
        monkeypatch.setenv("NFTWL_CHAIN_PRIORITY", "7")
        s = load_settings(cfg, table="cli")
        assert (s.table, s.chain_priority) == ("cli", 7)

    def test_bad_env_value_names_the_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An invalid value from the environment is a ConfigError naming the variable and key."""
        monkeypatch.setenv("NFTWL_CHAIN_PRIORITY", "high")
        with pytest.raises(
            ConfigError, match=r"^environment NFTWL_CHAIN_PRIORITY: chain_priority: "
        ):
            load_settings()

    def test_bad_env_value_is_not_blamed_on_the_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """With a config file present, an environment error still names the variable."""
        cfg = tmp_path / "c.toml"
        cfg.write_text('table = "t"\n')
        monkeypatch.setenv("NFTWL_CHAIN_PRIORITY", "high")
        with pytest.raises(ConfigError) as info:
            load_settings(cfg)
        assert str(cfg) not in str(info.value)
        assert "NFTWL_CHAIN_PRIORITY" in str(info.value)


class TestErrors:
    @pytest.mark.parametrize(
        ("toml", "key"),
        [
            ('tabel = "x"\n', "tabel"),
            ('[whitelists.default]\nsourcse = "a.txt"\n', "whitelists.default.sourcse"),
        ],
    )
    def test_unknown_key_names_file_and_key(self, tmp_path: Path, toml: str, key: str) -> None:
        """A misspelt key is refused, naming the file and the dotted key."""
        cfg = write(tmp_path / "nftwl.toml", toml)
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert (
            str(err.value)
            == f"{cfg}: {key}: unknown key (check the spelling; see the README for the schema)"
        )

    @pytest.mark.parametrize(
        ("toml", "key"),
        [
            ("chain_priority = 1000\n", "chain_priority"),
            ('chain_priority = "x"\n', "chain_priority"),
            ('invalid_input = "sloppy"\n', "invalid_input"),
            ("debounce_ms = 0\n", "debounce_ms"),
            ("settle_seconds = -1\n", "settle_seconds"),
            ('log_level = "trace"\n', "log_level"),
            ('table = "bad name"\n', "table"),
            ('table = "1table"\n', "table"),
            ('[whitelists.default]\naction = "deny"\n', "whitelists.default.action"),
            ('[whitelists.default]\nallow_empty = "maybe"\n', "whitelists.default.allow_empty"),
        ],
    )
    def test_bad_value_names_file_and_key(self, tmp_path: Path, toml: str, key: str) -> None:
        """A value of the wrong type or out of range is refused, naming the file and the key."""
        cfg = write(tmp_path / "nftwl.toml", toml)
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert str(err.value).startswith(f"{cfg}: {key}: ")

    def test_every_bad_key_is_reported(self, tmp_path: Path) -> None:
        """All problems of a config are reported together, one line each."""
        cfg = write(tmp_path / "nftwl.toml", 'tabel = "x"\nchain_priority = 1000\n')
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        lines = str(err.value).splitlines()
        assert len(lines) == 2
        assert {line.split(": ")[1] for line in lines} == {"tabel", "chain_priority"}

    @pytest.mark.parametrize("name", ["1bad", "my-list", "_x", "a" * 33, "with space"])
    def test_bad_whitelist_name(self, tmp_path: Path, name: str) -> None:
        """A whitelist name that cannot be part of an nft set name is refused with the rule."""
        cfg = write(tmp_path / "nftwl.toml", f'[whitelists."{name}"]\n')
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert str(err.value).startswith(f"{cfg}: whitelists.{name}: name must start with a letter")

    @pytest.mark.parametrize("name", ["a", "web_2", "A" * 32])
    def test_good_whitelist_names(self, tmp_path: Path, name: str) -> None:
        """Letters, digits and '_' up to 32 characters, starting with a letter, are accepted."""
        cfg = write(tmp_path / "nftwl.toml", f"[whitelists.{name}]\n")
        assert list(load_settings(cfg).whitelists) == [name]

    def test_no_whitelists_is_an_error(self, tmp_path: Path) -> None:
        """An explicitly empty whitelist table is refused (nothing would be enforced)."""
        cfg = write(tmp_path / "nftwl.toml", "whitelists = {}\n")
        with pytest.raises(ConfigError, match="at least one whitelist"):
            load_settings(cfg)

    def test_toml_syntax_error_names_the_file(self, tmp_path: Path) -> None:
        """A TOML syntax error is a ConfigError naming the file and the position."""
        cfg = write(tmp_path / "nftwl.toml", 'table = "nftwl"\n[whitelists.default\n')
        with pytest.raises(ConfigError) as err:
            load_settings(cfg)
        assert str(err.value).startswith(f"{cfg}: cannot read config: ")
        assert "line 2" in str(err.value)

    def test_explicit_missing_config_is_an_error(self, tmp_path: Path) -> None:
        """A --config path that does not exist is an error, never silently the defaults."""
        with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
            load_settings(tmp_path / "nope.toml")

    def test_unreadable_config_is_an_error(self, tmp_path: Path) -> None:
        """A config path that is a directory is reported as unreadable."""
        (tmp_path / "dir.toml").mkdir()
        with pytest.raises(ConfigError, match="cannot read config"):
            load_settings(tmp_path / "dir.toml")


class TestSettingsClass:
    def test_resolve_keeps_absolute_paths(self) -> None:
        """resolve() leaves absolute paths alone and anchors relative ones at config_dir."""
        s = Settings(config_file=Path("/srv/conf/nftwl.toml"))
        assert s.resolve(Path("/x/y.txt")) == Path("/x/y.txt")
        assert s.resolve(Path("y.txt")) == Path("/srv/conf/y.txt")


class TestHostileConfig:
    def test_unknown_environment_variable_is_an_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A typo in an NFTWL_* variable is reported, not silently ignored."""
        monkeypatch.setenv("NFTWL_WHITELIST__DEFAULT__ACTION", "reject")
        with pytest.raises(ConfigError, match="NFTWL_WHITELIST__DEFAULT__ACTION: unknown setting"):
            load_settings()

    def test_undecodable_environment_value_is_a_config_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NFTWL_WHITELISTS that is not JSON gives a ConfigError, not a traceback."""
        monkeypatch.setenv("NFTWL_WHITELISTS", "garbage")
        with pytest.raises(ConfigError, match="environment"):
            load_settings()

    def test_binary_config_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A config file that is not UTF-8 is reported with its path."""
        cfg = tmp_path / "c.toml"
        cfg.write_bytes(b"\x82\xff\x00table")
        with pytest.raises(ConfigError, match="cannot read config"):
            load_settings(cfg)

    def test_whitelist_name_with_trailing_newline_is_refused(self, tmp_path: Path) -> None:
        """'$' in a Python regex matches before a final newline; names must not slip through."""
        cfg = tmp_path / "c.toml"
        cfg.write_text('[whitelists."a\\n"]\n')
        with pytest.raises(ConfigError, match="name must start with a letter"):
            load_settings(cfg)

    def test_priority_before_conntrack_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Below -199 'ct state established' would never match; the setting is refused."""
        monkeypatch.setenv("NFTWL_CHAIN_PRIORITY", "-250")
        with pytest.raises(ConfigError, match="chain_priority"):
            load_settings()
