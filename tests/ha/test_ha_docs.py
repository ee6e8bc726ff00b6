"""deploy/README.md: the Prometheus snippets for sharded HA pairs are valid as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import require_binary

README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


def test_recording_rules_and_scrape_configs_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    blocks = _yaml_blocks()
    rules = [b for b in blocks if b.startswith("groups:")]
    configs = [b for b in blocks if b.startswith("scrape_configs:")]
    assert len(rules) == 1 and len(configs) == 2
    (tmp_path / "rules.yml").write_text(rules[0])
    res = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    for i, text in enumerate(configs):
        path = tmp_path / f"prometheus-{i}.yml"
        path.write_text(text)
        res = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_the_documented_shard_config_validates() -> None:
    from fleetd.config import parse_config

    (toml,) = [b for b in re.findall(r"```toml\n(.*?)```", README.read_text(), re.S) if "hall-a" in b]
    import tomllib

    cfg = parse_config(tomllib.loads(toml))
    assert cfg.ha.enabled and cfg.ha.lock_name == "hall-a" and cfg.discovery[0].site == "hall-a"
