"""The command line: configuration errors, .env discovery, migrate, generate and doctor."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from bot.__main__ import _migrate_in_child, _parser, main
from bot.cli import generate_command, output_paths
from bot.config import load_settings
from bot.doctor import doctor_command
from tests.conftest import TOKEN, make_settings
from tests.fakes.providers import FakeHub, FakePollinations, FakeReplicate, color_close, image_color

ROOT = Path(__file__).resolve().parent.parent


async def test_missing_token_stops_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == ["Configuration error: BOT_TOKEN is not set (get one from @BotFather and put it in .env)"]


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("TIMEZONE", "Mars/Olympus", "Setting TIMEZONE: unknown time zone"),
        ("DAILY_LIMIT_USER", "-3", "Setting DAILY_LIMIT_USER:"),
        ("ADMIN_IDS", "12,abc", "Setting ADMIN_IDS:"),
        ("BOT_TOKEN", "not-a-token", "Setting BOT_TOKEN:"),
        ("SUBSCRIPTION_PLANS", "30", "Setting SUBSCRIPTION_PLANS:"),
    ],
)
def test_malformed_settings_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv(name, value)
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0]
    assert value not in err[0] or name != "BOT_TOKEN"  # the bad value itself is not echoed


def test_env_file_is_found_in_a_parent_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nHUGGINGFACE_API_KEY=hf_from_dotenv\nDAILY_LIMIT_USER=7\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    settings = load_settings()
    assert settings.hf_token is not None and settings.hf_token.get_secret_value() == "hf_from_dotenv"
    assert settings.daily_limit_user == 7
    assert "hf_from_dotenv" not in repr(settings)


def test_migrate_creates_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "data" / "bot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    assert main(["migrate"]) == 0
    tables = set(inspect(create_engine(f"sqlite:///{db}")).get_table_names())
    assert {"users", "daily_usage", "generations", "payments", "alembic_version"} <= tables


def test_migrate_explains_an_unreachable_database_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody:secretpw@127.0.0.1:9/none")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    assert main(["migrate", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Could not open the database (") and "check DATABASE_URL" in err
    assert "secretpw" not in err and "Traceback" not in err


def test_the_default_bot_never_loads_alembic_or_redis() -> None:
    """`python -m bot` migrates in a child process, and redis loads only with REDIS_URL: the
    long-running default process stays without them (about 14 MiB of the idle footprint the load
    benchmark measures)."""
    code = (
        "import sys, bot.__main__, bot.app\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako', 'redis', 'taskiq_redis'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_built_bot_loads_no_provider_sdk_until_a_call(tmp_path: Path) -> None:
    """`python -m bot` with GEMINI_API_KEY and HF_TOKEN, built as the entry point builds it (migrated in a
    child, then BotApp.create with its in-process workers) but no call made: google-genai (~24 MiB) and
    huggingface_hub's inference package (~8 MiB, tqdm with it) are imported by the first call only.

    httpx imports its own CLI (and rich with it) whenever click, rich and pygments are all installed:
    the dev extras bring rich (schemathesis), a production install does not. That import is switched off
    here as it is in production, so `rich` is checked for every other way in."""
    code = (
        "import asyncio, sys\n"
        "sys.modules['httpx._main'] = None\n"
        "from bot.__main__ import _migrate_in_child\n"
        "from bot.config import load_settings\n"
        "from bot.logs import setup_logging\n"
        "from bot.app import BotApp\n"
        "async def build() -> None:\n"
        "    settings = load_settings()\n"
        "    setup_logging(settings)\n"
        "    assert _migrate_in_child(settings) == 0\n"
        "    app = await BotApp.create(settings, migrate=False)\n"
        "    assert app.worker is not None and app.services.generation.editing is not None\n"
        "    assert all(p.available(m) for p in app.services.providers[:2] for m in p.models)\n"
        "    await app.services.aclose()\n"
        "    await app.bot.session.close()\n"
        "asyncio.run(build())\n"
        "heavy = ('google.genai', 'huggingface_hub.inference', 'rich', 'tqdm')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": TOKEN,
        "GEMINI_API_KEY": "gemini-key-never-used",
        "HF_TOKEN": "hf_token_never_used",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_run_migrates_a_file_database_in_a_child_and_leaves_memory_to_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "child.db"
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.chdir(tmp_path)
    assert _migrate_in_child(make_settings(f"sqlite+aiosqlite:///{db}")) == 0
    assert "alembic_version" in inspect(create_engine(f"sqlite:///{db}")).get_table_names()
    assert _migrate_in_child(make_settings("sqlite+aiosqlite://")) is None  # only this process can


async def _fakes() -> tuple[FakeHub, FakeReplicate, FakePollinations]:
    return await FakeHub().start(), await FakeReplicate().start(), await FakePollinations().start()


def _settings(tmp_path: Path, hub: FakeHub, rep: FakeReplicate, pol: FakePollinations, **extra: object):  # type: ignore[no-untyped-def]
    return make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        HF_TOKEN="hf_cli_token",
        HF_ENDPOINT=hub.url,
        HF_ROUTER_URL=rep.url,
        REPLICATE_BASE_URL=rep.url,
        POLLINATIONS_BASE_URL=pol.url,
        HF_TIMEOUT=3,
        **extra,
    )


async def test_generate_saves_files_and_names_the_provider(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub, rep, pol = await _fakes()
    try:
        settings = _settings(tmp_path, hub, rep, pol)
        args = _parser().parse_args(["generate", "a lighthouse", "-m", "flux-dev", "-n", "2", "--size", "512x384",
                                     "-o", str(tmp_path / "out.png")])  # fmt: skip
        assert await generate_command(settings, args) == 0
        files = [tmp_path / "out_1.png", tmp_path / "out_2.png"]
        for file in files:
            assert rep.made_by(file.read_bytes(), "black-forest-labs/flux-dev")
        out = capsys.readouterr().out
        assert out.count("FLUX Dev via hf-replicate (black-forest-labs/FLUX.1-dev)") == 2
        sent = [r.json["input"] for r in rep.predictions_for("black-forest-labs/flux-dev")]
        assert [(i["width"], i["height"]) for i in sent] == [(512, 384), (512, 384)]

        rep.behave("status", status=500)
        args = _parser().parse_args(["generate", "a lighthouse", "-m", "flux-dev", "-o", str(tmp_path / "b.jpg")])
        assert await generate_command(settings, args) == 0
        assert color_close(image_color((tmp_path / "b.jpg").read_bytes()), pol.color)
        assert "Pollinations FLUX via pollinations" in capsys.readouterr().out

        pol.behave("status", status=503)
        args = _parser().parse_args(["generate", "a lighthouse", "-m", "flux-dev"])
        assert await generate_command(settings, args) == 1
        captured = capsys.readouterr()
        assert "error: no image (all_failed)" in captured.err and "hf_cli_token" not in captured.out + captured.err
    finally:
        for fake in (hub, rep, pol):
            await fake.stop()


async def test_generate_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert await generate_command(settings, _parser().parse_args(["generate", "x", "-m", "dalle"])) == 2
    assert "unknown model 'dalle'" in capsys.readouterr().err
    assert await generate_command(settings, _parser().parse_args(["generate", "x", "--size", "big"])) == 2
    assert "size must look like 1024x768" in capsys.readouterr().err


def test_output_paths() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert output_paths("x.png", 1, "jpg", now) == [Path("x.png")]
    assert output_paths("dir/x", 2, "jpg", now) == [Path("dir/x_1.jpg"), Path("dir/x_2.jpg")]
    assert output_paths(None, 1, "png", now) == [Path("generated/image-20260102-030405.png")]


async def test_doctor_reports_access_and_the_schnell_downgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, rep, pol = await _fakes()
    try:
        rep.behave("status", key="black-forest-labs/flux-dev", status=403, body={"detail": "no access to FLUX.1-dev"})
        settings = _settings(tmp_path, hub, rep, pol)
        assert await doctor_command(settings, _parser().parse_args(["doctor"])) == 0
        out = capsys.readouterr().out.splitlines()
        line = {
            title: next(x for x in out if title in x)
            for title in ("Gemini Flash", "FLUX Dev", "FLUX Pro", "Pollinations")
        }
        assert line["Gemini Flash"].startswith("FAIL") and "GEMINI_API_KEY" in line["Gemini Flash"]
        assert line["FLUX Dev"].startswith("OK") and "no FLUX.1-dev access" in line["FLUX Dev"]
        assert line["FLUX Pro"].startswith("OK") and "flux-1.1-pro" in line["FLUX Pro"]  # via the HF router
        assert line["Pollinations"].startswith("OK")
        assert out[-1].startswith("Recommendation: users' default model is Gemini Flash")
        assert "hf_cli_token" not in "\n".join(out)
    finally:
        for fake in (hub, rep, pol):
            await fake.stop()


def test_env_example_documents_every_setting_and_loads() -> None:
    from bot.config import Settings

    example = (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [alias] if isinstance(alias, str) else list(alias.choices)  # type: ignore[union-attr]
        assert any(f"{n}=" in example for n in names), f"{name} is not in .env.example"
    settings = load_settings(ROOT / ".env.example")
    assert settings.gemini_api_key is None and settings.hf_token is None and settings.pollinations_base_url is None
