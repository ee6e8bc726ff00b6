"""The daemon's configuration: one TOML file, validated into pydantic models.

Errors name the key path (`miners[3].host: not an IP address or hostname`). Secrets are references
(`{ env = "VAR" }`, `{ file = "path" }`, `{ credential = "name" }`); inline strings need an explicit opt-in.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from fleetd.config_errors import format_validation_error

if TYPE_CHECKING:
    from fleetd.discovery import TargetSet
    from fleetd.drivers.base import Credentials

DEFAULT_CONFIG_PATH = Path("/etc/fleetd/fleetd.toml")
DEFAULT_LISTEN = "127.0.0.1:8787"

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(Exception):
    """One or more configuration problems, each a line naming the key path."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = errors
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + e for e in errors))


def is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(value)) and not value.replace(".", "").isdigit()


def _check_host(value: Any) -> Any:
    if isinstance(value, str) and not is_host(value.strip()):
        raise ValueError("not an IP address or hostname")
    return value.strip() if isinstance(value, str) else value


Host = Annotated[str, BeforeValidator(_check_host)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- secrets ----------------------------------------------------------------------------------------------
class SecretRef(_Model):
    """Where a secret comes from; `resolve()` reads it. repr never shows an inline value."""

    env: str | None = None
    file: str | None = None
    credential: str | None = None
    inline: SecretStr | None = None

    def describe(self) -> str:
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"file {self.file}"
        if self.credential:
            return f"systemd credential {self.credential}"
        return "inline value"

    def resolve(self) -> SecretStr:
        """The secret's value; raises ValueError with a one-line reason."""
        if self.inline is not None:
            return self.inline
        if self.env:
            val = os.environ.get(self.env)
            if val is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(val)
        if self.file:
            path = Path(self.file)
        else:
            creds = os.environ.get("CREDENTIALS_DIRECTORY")
            if not creds:
                raise ValueError(f"credential {self.credential!r}: $CREDENTIALS_DIRECTORY is not set")
            path = Path(creds) / str(self.credential)
        try:
            return SecretStr(path.read_text().rstrip("\r\n"))
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


def _parse_secret(value: Any) -> Any:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, str):
        return SecretRef(inline=SecretStr(value))
    if isinstance(value, dict):
        keys = set(value)
        if len(keys) != 1 or not keys <= {"env", "file", "credential"}:
            raise ValueError("expected a table with exactly one of env, file, credential")
        ((key, val),) = value.items()
        if not isinstance(val, str) or not val:
            raise ValueError(f"{key}: expected a non-empty string")
        return SecretRef(**{key: val})
    raise ValueError('expected { env = "VAR" }, { file = "path" } or { credential = "name" }')


Secret = Annotated[SecretRef, BeforeValidator(_parse_secret)]


class VendorCredentialsConfig(_Model):
    """One vendor's login within a credential set; what it leaves out comes from the set's common values."""

    username: str | None = None
    password: Secret | None = None


class CredentialsConfig(_Model):
    """A named set of miner credentials: common `username`/`password`, and per-vendor tables
    (`[credentials.NAME.antminer]`) that override them. `password` values are secret references."""

    # Keys other than username/password are vendor tables; _check() refuses unknown vendor names.
    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, VendorCredentialsConfig] = Field(init=False)  # type: ignore[assignment]

    username: str | None = None
    password: Secret | None = None

    @property
    def vendors(self) -> dict[str, VendorCredentialsConfig]:
        return dict(self.model_extra or {})

    def secrets(self) -> list[tuple[str, SecretRef]]:
        """(key path below this set, reference) of every password in it."""
        out = [("password", self.password)] if self.password is not None else []
        out += [(f"{v}.password", c.password) for v, c in self.vendors.items() if c.password is not None]
        return out

    def resolve(self) -> Credentials:
        """The driver-level credentials, secrets read; ValueError (naming the key) if one is unreadable."""
        from fleetd.drivers.base import Credentials, Login

        def read(where: str, ref: SecretRef | None) -> str | None:
            if ref is None:
                return None
            try:
                return ref.resolve().get_secret_value()
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None

        vendors = {v: Login(c.username, read(f"{v}.password", c.password)) for v, c in self.vendors.items()}
        return Credentials(self.username, read("password", self.password), vendors)


# --- sections ---------------------------------------------------------------------------------------------
class ApiConfig(_Model):
    listen: str = DEFAULT_LISTEN
    token: Secret | None = None  # bearer token of the write endpoints; without one they are off

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_listen(v)
        return v

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


def split_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8787' or '[::1]:8787' -> (host, port); ValueError with a reason otherwise."""
    m = re.match(r"^\[(?P<h6>[^\]]+)\]:(?P<p6>\d+)$|^(?P<h>[^:\[\]]+):(?P<p>\d+)$", value.strip())
    if not m:
        raise ValueError('expected HOST:PORT, e.g. "127.0.0.1:8787"')
    host = m.group("h6") or m.group("h")
    port = int(m.group("p6") or m.group("p"))
    if not is_host(host):
        raise ValueError(f"{host!r} is not an IP address or hostname")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return host, port


class PollingConfig(_Model):
    interval_s: float = Field(30.0, gt=0, le=86400)
    jitter_s: float = Field(2.0, ge=0)  # random delay added to each cycle's start
    timeout_s: float = Field(10.0, gt=0)  # a whole poll of one miner
    connect_timeout_s: float = Field(3.0, gt=0)
    # Bounded by the ~20,000 open files a process may hold; a poll can use two connections.
    concurrency: int = Field(1000, ge=1, le=8000)
    down_after: int = Field(2, ge=1)  # consecutive failures before a miner is reported down
    max_backoff_s: float = Field(600.0, gt=0)
    redetect_after: int = Field(3, ge=1)  # consecutive failures before the driver is detected again


class DriversConfig(_Model):
    """Driver selection beyond each miner's own `driver`."""

    pyasic_fallback: bool = False  # detection tries the pyasic adapter for models no native driver claims

    def fallbacks(self) -> frozenset[str]:
        """The fallback-only drivers detection may try (fleetd.drivers.use_fallbacks)."""
        return frozenset({"pyasic"} if self.pyasic_fallback else ())


class StorageConfig(_Model):
    url: str = ""  # empty: SQLite file fleetd.db in the state directory
    queue_size: int = Field(100_000, ge=100)
    latest_state_every_s: float = Field(60.0, ge=0)  # how often the latest_state table is rewritten
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return v


class HaConfig(_Model):
    """High availability: an active/standby pair on one PostgreSQL, by a session-level advisory lock."""

    enabled: bool = False
    lock_name: str = "fleetd"  # pairs sharing one database (shards) need distinct names
    lock_key: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # explicit 64-bit key; overrides lock_name
    heartbeat_s: float = Field(2.0, ge=0.1, le=60)  # lock check of the active, acquire attempt of the standby
    takeover_s: float = Field(15.0, gt=0, le=3600)  # the standby takes over at most this long after a loss

    @field_validator("lock_name")
    @classmethod
    def _lock_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("expected letters, digits, '-', '_' or '.' (at most 64)")
        return v

    def key(self) -> int:
        """The advisory lock's key: lock_key, else one derived from lock_name (the same on every host)."""
        if self.lock_key is not None:
            return self.lock_key
        import hashlib

        digest = hashlib.sha256(b"fleetd.ha:" + self.lock_name.encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


class LoggingConfig(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"


class MetricsConfig(_Model):
    """Prometheus exposition at GET /metrics on the API address."""

    enabled: bool = True
    per_miner: bool = True  # one series per miner; off: fleet and daemon series only
    components: bool = True  # per-board and per-fan series (the bulk of the output on large fleets)
    cache_s: float = Field(10.0, ge=0)  # a rendering is reused this long unless a poll cycle ended since


def _check_topic(v: str) -> str:
    if not v or any(c in v for c in "+#\0") or v.startswith("/") or v.endswith("/"):
        raise ValueError("expected a topic without wildcards (+, #) or leading/trailing '/'")
    return v


class HomeAssistantConfig(_Model):
    """Home Assistant MQTT discovery of fleet and per-site sensors (fleetd.exporters.mqtt_discovery)."""

    enabled: bool = False
    discovery_prefix: str = "homeassistant"  # Home Assistant's own discovery_prefix setting
    node_id: str = ""  # the discovery topics' node id; empty: the topic_prefix ([A-Za-z0-9_-] kept)

    @field_validator("discovery_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _check_topic(v)

    @field_validator("node_id")
    @classmethod
    def _node(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError("expected letters, digits, '_' or '-' (at most 64)")
        return v


class MqttConfig(_Model):
    """Publishing fleet and miner state to an MQTT broker after each poll cycle."""

    host: Host = "127.0.0.1"
    port: Port = 1883
    tls: bool = False
    ca_file: str = ""  # empty: the system's trust store
    username: str | None = None
    password: Secret | None = None
    topic_prefix: str = "fleetd"
    client_id: str = ""  # empty: "fleetd-<hostname>"
    qos: int = Field(0, ge=0, le=2)
    retain: bool = True  # fleet summary and miner states retained, so subscribers get them at once
    keepalive_s: int = Field(30, ge=5, le=3600)
    full_every: int = Field(10, ge=1)  # an unchanged miner's state is republished every this many cycles
    queue_size: int = Field(50_000, ge=100)  # messages waiting for the broker; beyond, new ones are dropped
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()  # off unless enabled

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _check_topic(v)


class FindingsConfig(_Model):
    """Alert-fatigue control of diagnosis findings (fleetd.health.tracker)."""

    min_duration_s: float = Field(120.0, ge=0)  # held this long before it starts (critical: 2nd sighting)
    clear_after_s: float = Field(600.0, gt=0)  # absent this long before it clears
    restart_window_s: float = Field(86_400.0, gt=0)  # self-restarts are counted over this window


class TrendsConfig(_Model):
    """Thresholds of the predictive-maintenance trend job (fleetd.health.trends.TrendRules) and the
    start/clear hysteresis of its warnings' events."""

    window_h: float = Field(24.0, gt=0, le=24 * 14)
    min_points: int = Field(6, ge=3)
    t_min: float = Field(3.0, gt=0)
    min_group: int = Field(3, ge=2)
    chip_temp_c_per_day: float = Field(1.5, gt=0)
    fan_share_per_day: float = Field(0.03, gt=0)
    hw_errors_ratio: float = Field(2.0, gt=1)
    hw_errors_min_per_h: float = Field(10.0, ge=0)
    efficiency_share_per_day: float = Field(0.02, gt=0)
    board_ratio_per_day: float = Field(0.02, gt=0)
    restarts: int = Field(3, ge=1)
    critical_within_h: float = Field(24.0, ge=0)
    start_after_s: float = Field(1800.0, ge=0)  # seen this long (two hourly runs) before trend_started
    clear_after_s: float = Field(9000.0, gt=0)  # absent this long (three hourly runs) before trend_cleared

    def rules(self) -> Any:
        """The detector's TrendRules."""
        from fleetd.health.trends import TrendRules

        return TrendRules(**self.model_dump(exclude={"start_after_s", "clear_after_s"}))


class HealthConfig(_Model):
    """Miner health (fleetd.health); model limits come from the catalog's [models.<key>.limits]."""

    findings: FindingsConfig = FindingsConfig()
    trends: TrendsConfig = TrendsConfig()


class SiteConfig(_Model):
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("expected letters, digits, '-', '_' or '.' (at most 64)")
        return v


class _Target(_Model):
    """What static miners and discovery ranges share: driver, credentials, labels, ports."""

    driver: str = "auto"
    credentials: str | None = None  # name of a [credentials.NAME] table; None: "default" if defined
    site: str = ""
    rack: str = ""
    api_port: Port | None = None
    web_port: Port | None = None
    v3_port: Port | None = None
    grpc_port: Port | None = None

    def ports(self) -> dict[str, int]:
        names = ("api_port", "web_port", "v3_port", "grpc_port")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class MinerConfig(_Target):
    host: Host
    position: str = ""
    model: str = ""  # e.g. "Antminer S19 Pro": catalog power before the first poll; `fleetd whatif --fleet`
    nominal_power_w: float | None = Field(None, gt=0)


def _check_target(t: str) -> str:
    from fleetd.discovery import TargetError, parse_targets

    try:
        parse_targets([t])
    except TargetError as exc:
        raise ValueError(str(exc).removeprefix("bad target ").replace(" or pass --force", "")) from None
    return t


class DiscoveryConfig(_Target):
    targets: list[Annotated[str, AfterValidator(_check_target)]] = Field(min_length=1)
    interval_s: float = Field(600.0, ge=10)  # how often the ranges are rescanned

    def target_set(self) -> TargetSet:
        from fleetd.discovery import parse_targets

        return parse_targets(self.targets)


class Config(_Model):
    state_dir: str | None = None  # overridden by --state-dir and $STATE_DIRECTORY
    allow_inline_secrets: bool = False
    api: ApiConfig = ApiConfig()
    polling: PollingConfig = PollingConfig()
    storage: StorageConfig = StorageConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    mqtt: MqttConfig | None = None  # publishing is off without an [mqtt] section
    sites: list[SiteConfig] = []
    credentials: dict[str, CredentialsConfig] = {}
    miners: list[MinerConfig] = []
    discovery: list[DiscoveryConfig] = []
    # Validated by fleetd.economics.EconomicsConfig when that package is present.
    economics: dict[str, Any] | None = None
    # Validated by fleetd.curtail.config.CurtailmentConfig; `curtailment_config()` returns the model.
    curtailment: dict[str, Any] | None = None
    ha: HaConfig = HaConfig()  # off unless [ha] enabled = true
    drivers: DriversConfig = DriversConfig()  # fallback-only drivers stay off unless enabled here
    health: HealthConfig = HealthConfig()

    def curtailment_config(self) -> Any:
        """The validated [curtailment] section (a CurtailmentConfig), or None when there is none."""
        if self.curtailment is None:
            return None
        from fleetd.curtail.config import parse_curtailment

        return parse_curtailment(self.curtailment)

    def credentials_name(self, target: _Target) -> str | None:
        """The [credentials.NAME] set a miner or discovery range uses: its own, else "default" if defined."""
        return target.credentials or ("default" if "default" in self.credentials else None)

    def credentials_for(self, target: _Target) -> Credentials:
        """The credentials of a miner or discovery range, secrets read; ValueError if one is unreadable."""
        from fleetd.drivers.base import Credentials

        name = self.credentials_name(target)
        if name is None:
            return Credentials()
        try:
            return self.credentials[name].resolve()
        except ValueError as exc:
            raise ValueError(f"credentials.{name}.{exc}") from None

    def storage_url(self, state_dir: Path) -> str:
        return self.storage.url or f"sqlite:///{state_dir / 'fleetd.db'}"


# --- loading ----------------------------------------------------------------------------------------------
def _check(cfg: Config, *, secrets: bool = True) -> list[str]:
    """Checks that span sections: references, duplicates, secrets."""
    errors: list[str] = []
    site_names = [s.name for s in cfg.sites]
    seen: dict[str, int] = {}
    for i, s in enumerate(cfg.sites):
        if s.name in seen:
            errors.append(f"sites[{i}].name: duplicate of sites[{seen[s.name]}]")
        seen.setdefault(s.name, i)
    known_drivers = _driver_names()
    targets: list[tuple[str, _Target]] = [(f"miners[{i}]", m) for i, m in enumerate(cfg.miners)]
    targets += [(f"discovery[{i}]", d) for i, d in enumerate(cfg.discovery)]
    for where, t in targets:
        if t.site and site_names and t.site not in site_names:
            errors.append(f"{where}.site: unknown site {t.site!r} (defined: {', '.join(site_names)})")
        if t.credentials and t.credentials not in cfg.credentials:
            errors.append(f"{where}.credentials: no [credentials.{t.credentials}] table")
        if t.driver != "auto" and known_drivers and t.driver not in known_drivers:
            known = ", ".join(["auto", *known_drivers])
            errors.append(f"{where}.driver: unknown driver {t.driver!r} (known: {known})")
    hosts: dict[str, int] = {}
    for i, m in enumerate(cfg.miners):
        if m.host in hosts:
            errors.append(f"miners[{i}].host: duplicate of miners[{hosts[m.host]}]")
        hosts.setdefault(m.host, i)
    vendors = _vendor_names()
    for name, cred in cfg.credentials.items():
        if not _NAME.match(name):
            errors.append(f"credentials.{name}: name must be letters, digits, '-', '_' or '.'")
        for vendor in cred.vendors:
            if vendors and vendor not in vendors:
                errors.append(
                    f"credentials.{name}.{vendor}: unknown key (expected username, password or a vendor "
                    f"table: {', '.join(vendors)})"
                )
        for where, ref in cred.secrets():
            if ref.inline is not None and not cfg.allow_inline_secrets:
                errors.append(
                    f'credentials.{name}.{where}: inline secrets are refused; use {{ env = "VAR" }}, '
                    f'{{ file = "path" }} or {{ credential = "name" }} (or set allow_inline_secrets = true)'
                )
                continue
            try:
                if secrets:
                    ref.resolve()
            except ValueError as exc:
                errors.append(f"credentials.{name}.{where}: {exc}")
    for where, ref in (
        ("mqtt.password", cfg.mqtt.password if cfg.mqtt is not None else None),
        ("api.token", cfg.api.token),
    ):
        if ref is None:
            continue
        if ref.inline is not None and not cfg.allow_inline_secrets:
            errors.append(
                f'{where}: inline secrets are refused; use {{ env = "VAR" }}, {{ file = "path" }} or '
                '{ credential = "name" } (or set allow_inline_secrets = true)'
            )
        elif secrets:
            try:
                ref.resolve()
            except ValueError as exc:
                errors.append(f"{where}: {exc}")
    errors += _check_ha(cfg)
    errors += _check_optional_drivers(cfg, targets)
    if cfg.economics is not None:
        errors += _check_economics(cfg.economics, secrets=secrets)
    if cfg.curtailment is not None:
        errors += _check_curtailment(cfg.curtailment)
    return errors


def _check_ha(cfg: Config) -> list[str]:
    ha = cfg.ha
    if not ha.enabled:
        return []
    errors = []
    if not cfg.storage.url.startswith("postgresql"):
        errors.append(
            "ha.enabled: needs a PostgreSQL [storage] url (the pair shares its database and the lock lives "
            "there); the storage is " + ("SQLite" if cfg.storage.url else "the default SQLite file")
        )
    if ha.takeover_s < 4 * ha.heartbeat_s:
        errors.append(
            f"ha.takeover_s: must be at least 4 x heartbeat_s ({4 * ha.heartbeat_s:g}), so that the active "
            f"steps down before the database frees its lock; got {ha.takeover_s:g}"
        )
    return errors


def _check_optional_drivers(cfg: Config, targets: list[tuple[str, _Target]]) -> list[str]:
    """A driver configured or enabled whose optional dependency is absent (e.g. pyasic) is an error."""
    try:
        from fleetd.drivers import unavailable_drivers

        missing = unavailable_drivers()
    except Exception:  # drivers under construction must not break config validation
        return []
    errors = [f"{where}.driver: {missing[t.driver]}" for where, t in targets if t.driver in missing]
    if cfg.drivers.pyasic_fallback and "pyasic" in missing:
        errors.append(f"drivers.pyasic_fallback: {missing['pyasic']}")
    return errors


def _driver_names() -> list[str]:
    try:
        from fleetd.drivers import _REGISTRY, driver_classes

        names = {c.name for c in driver_classes()}
        return sorted(names | {e.split(":")[0] for e in _REGISTRY})
    except Exception:  # drivers under construction must not break config validation
        return []


def _vendor_names() -> list[str]:
    """Vendors a credential set may have a table for: those of the installed drivers."""
    try:
        from fleetd.drivers import driver_classes
        from fleetd.drivers.base import FACTORY_LOGINS

        return sorted(({c.vendor for c in driver_classes()} | set(FACTORY_LOGINS)) - {"generic"})
    except Exception:  # drivers under construction must not break config validation
        return []


def _check_economics(section: dict[str, Any], *, secrets: bool = True) -> list[str]:
    model = economics_model()
    if model is None:
        return []
    try:
        eco = model.model_validate(section)
    except ValidationError as exc:
        return [f"economics.{line}" for line in format_validation_error(exc, model)]
    if not secrets:  # API keys left to the environment are not looked up
        eco = _unchecked_keys(eco)
    try:  # builds the sources without any I/O: catches missing keys and unreadable tariff files
        from fleetd.economics.service import EconomicsService

        EconomicsService(eco)  # type: ignore[arg-type]
    except ImportError:
        return []
    except Exception as exc:
        return [f"economics: {exc}"]
    return []


def _unchecked_keys(eco: BaseModel) -> BaseModel:
    """`eco` with a placeholder for every API key the file leaves empty (to the environment)."""

    def keyed(m: Any) -> Any:
        return m.model_copy(update={"api_key": "unchecked"}) if getattr(m, "api_key", None) == "" else m

    update: dict[str, Any] = {}
    if isinstance(getattr(eco, "hashprice", None), list):
        update["hashprice"] = [keyed(h) for h in eco.hashprice]  # type: ignore[attr-defined]
    if getattr(eco, "tariff", None) is not None:
        update["tariff"] = keyed(eco.tariff)  # type: ignore[attr-defined]
    return eco.model_copy(update=update)


def _check_curtailment(section: dict[str, Any]) -> list[str]:
    from fleetd.curtail.config import CurtailmentConfig

    try:
        CurtailmentConfig.model_validate(section)
    except ValidationError as exc:
        return [f"curtailment.{line}" for line in format_validation_error(exc, CurtailmentConfig)]
    return []


def economics_model() -> type[BaseModel] | None:
    try:
        from fleetd import economics
    except ImportError:
        return None
    model = getattr(economics, "EconomicsConfig", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def parse_config(data: dict[str, Any], source: str = "", *, secrets: bool = True) -> Config:
    """Validate a decoded TOML document; ConfigError lists every problem.

    `secrets=False` checks how secrets are referenced without reading them (unset variables, files and
    API keys are not errors then)."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        errors = format_validation_error(exc, Config)
        section = data.get("economics") if isinstance(data, dict) else None
        if isinstance(section, dict):  # report [economics] problems in the same run as the rest
            errors += _check_economics(section, secrets=secrets)
        section = data.get("curtailment") if isinstance(data, dict) else None
        if isinstance(section, dict):
            errors += _check_curtailment(section)
        raise ConfigError(errors, source) from None
    errors = _check(cfg, secrets=secrets)
    if errors:
        raise ConfigError(errors, source)
    return cfg


def load_config(path: str | Path, *, secrets: bool = True) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], str(path)) from None
    return parse_config(data, str(path), secrets=secrets)
