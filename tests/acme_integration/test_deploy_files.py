"""deploy/ (issue 17, finding 4): the example files run the commands and take the settings of the README's
production recipe (which tests/e2e/test_production.py runs), and gunicorn's configuration loads."""

from __future__ import annotations

import shlex

from tests.e2e.recipe import ROOT, readme_recipe

DEPLOY = ROOT / "deploy"


def test_the_env_example_has_every_setting_of_the_recipe():
    lines = (DEPLOY / "acme.env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}

    assert set(readme_recipe().settings) <= names
    assert "DEBUG" not in names


def test_compose_and_systemd_run_the_recipes_processes():
    recipe = readme_recipe()
    compose = (DEPLOY / "compose.yaml").read_text()
    units = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
    for prefix, unit in (
        ("gunicorn", "acme-web.service"),
        ("python manage.py acme_worker", "acme-worker@.service"),
        ("python manage.py migrate", "acme-migrate.service"),
    ):
        argv = recipe.command(prefix).argv
        assert f"command: {[str(w) for w in argv]}".replace("'", '"') in compose, prefix
        exec_start = next(line for line in units[unit].splitlines() if line.startswith("ExecStart="))
        words = shlex.split(exec_start.removeprefix("ExecStart="))
        assert [words[0].rsplit("/", 1)[-1], *words[1 : len(argv)]] == argv, exec_start


def test_the_gunicorn_config_loads_with_threads_and_timeouts(monkeypatch):
    from gunicorn.config import Config

    monkeypatch.setenv("ACME_BIND", "127.0.0.1:18000")
    namespace: dict[str, object] = {"__file__": str(DEPLOY / "gunicorn.conf.py")}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    config = Config()
    for key, value in namespace.items():
        if key in config.settings:
            config.set(key, value)

    assert config.worker_class_str == "gthread"
    assert config.workers >= 2 and config.threads == 8
    assert config.timeout == 60 and config.graceful_timeout == 30
    assert config.bind == ["127.0.0.1:18000"]
    assert config.control_socket_disable is True
