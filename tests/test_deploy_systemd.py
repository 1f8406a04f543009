"""deploy/systemd/: the units pass `systemd-analyze verify`, start real `reelout` commands, are
hardened, and their settings file names only real settings with values Settings takes."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from reelout.config import Settings
from tests.support.commands import REELOUT

SYSTEMD = Path(__file__).parents[1] / "deploy" / "systemd"
UNITS = {"reelout.service": "serve", "reelout-worker.service": "worker"}
INSTALLED = "/opt/reelout/venv/bin/reelout"  # where the units expect the install
HARDENING = {
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "PrivateTmp": "true",
    "ProtectHome": "true",
    "Restart": "on-failure",
    "User": "reelout",
    "EnvironmentFile": "/etc/reelout/reelout.env",
}


def service(name: str) -> dict[str, str]:
    """The [Service] section of a unit (unit files are ini-like; no key repeats in ours)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return dict(parser["Service"])


def environment() -> dict[str, str]:
    """The example EnvironmentFile's assignments (commented ones included: they are listed)."""
    found = {}
    for line in (SYSTEMD / "reelout.env").read_text().splitlines():
        line = line.strip().removeprefix("#")
        name, sep, value = line.partition("=")
        if sep and name.isupper() and " " not in name:
            found[name] = value
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified as installed, with the command at this machine's `reelout` (verify checks that
    ExecStart is executable)."""
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        assert INSTALLED in text
        (tmp_path / name).write_text(text.replace(INSTALLED, REELOUT))
    units = [str(tmp_path / name) for name in UNITS]
    done = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr.strip()) == (0, ""), done.stderr


@pytest.mark.parametrize(("unit", "command"), UNITS.items())
def test_each_unit_runs_a_real_reelout_command_hardened(unit: str, command: str) -> None:
    section = service(unit)
    argv = shlex.split(section["ExecStart"])
    assert argv == [INSTALLED, command]
    shown = subprocess.run(
        [REELOUT, *argv[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert f"Usage: reelout {command}" in shown.stdout
    assert {key: section.get(key) for key in HARDENING} == HARDENING
    data_dir = environment()["REELOUT_DATA_DIR"]
    assert section["ReadWritePaths"] == data_dir
    assert section["StateDirectory"] == Path(data_dir).name  # systemd makes it, owned by User


def test_the_settings_file_names_real_settings_with_values_they_take() -> None:
    env = environment()
    names = {name for name in env if name.startswith("REELOUT_")}
    fields = {f"REELOUT_{field.upper()}" for field in Settings.model_fields}
    assert names - fields == set(), "a REELOUT_* name that is no setting"
    values = {name.removeprefix("REELOUT_").lower(): env[name] for name in names}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert settings.embedded_worker is False  # the fleet's jobs run in reelout-worker
    assert settings.behind_proxy is True
    assert settings.resolved_database_url.startswith("postgresql://")
    assert settings.storage_url == "s3://reelout-media/prod"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"):
        assert name in env
