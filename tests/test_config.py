"""Settings as an operator meets them: idgraph.toml and IDGRAPH_* refused with a reason
naming where the problem is, and the generated reference kept in step with the model."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.cli import main
from idgraph.config import ApiSettings, Settings, load_settings
from idgraph.configdoc import reference
from idgraph.errors import ConfigError

ROOT = Path(__file__).parents[1]
API_COUNTS = [
    f.name for f in dataclasses.fields(ApiSettings) if f.type == "Count" and f.name != "port"
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no IDGRAPH_* variable from the caller's shell."""
    for name in [n for n in os.environ if n.startswith("IDGRAPH_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """Run the CLI, expect exit 2, return its stderr lines (and no traceback)."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()


def test_every_problem_of_the_file_is_reported_with_its_key_at_once(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "idgraph.toml").write_text(
        "[normalization]\ndefault_regoin = 'GB'\n"
        "[neo4j]\npasword = 'secret-value'\n"
        "[purposes]\nsupport = 'allow'\n"
        "[rules]\nmax_size = -5\n"
    )
    lines = refusal(capsys, "check")
    assert lines == [
        "idgraph: idgraph.toml: normalization.default_regoin: unknown setting "
        "(did you mean 'default_region'?)",
        "idgraph: idgraph.toml: rules.max_size: Input should be greater than 0",
        "idgraph: idgraph.toml: purposes.support: must be a table ([purposes.support])",
        "idgraph: idgraph.toml: neo4j.pasword: unknown setting (did you mean 'password'?)",
    ]
    assert not (workdir / "idgraph.db").exists()  # refused before the store was opened


def test_a_region_phonenumbers_does_not_know_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "idgraph.toml").write_text("[normalization]\ndefault_region = 'XX'\n")
    [line] = refusal(capsys, "check")
    assert line.startswith("idgraph: idgraph.toml: normalization.default_region: 'XX' is not")
    (workdir / "idgraph.toml").write_text("[normalization]\ndefault_region = 'gb'\n")
    assert load_settings().default_region == "GB"


def test_a_bad_environment_variable_is_named_and_no_file_blamed(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDGRAPH_PORT", "abc")
    [line] = refusal(capsys, "check")
    assert line.startswith("idgraph: IDGRAPH_PORT: Input should be a valid integer")
    assert "idgraph.toml" not in line


def test_an_environment_variable_wins_over_the_file_and_is_blamed_for_its_value(
    workdir: Path,
) -> None:
    config = workdir / "idgraph.toml"
    config.write_text("[api]\nport = 9000\n")
    assert load_settings({"IDGRAPH_PORT": "9100"}).api.port == 9100
    with pytest.raises(ConfigError) as refused:
        load_settings({"IDGRAPH_PORT": "0"})
    assert str(refused.value) == "IDGRAPH_PORT: must be a TCP port, 1 to 65535"


def test_host_port_and_graphiql_can_be_set_in_the_file(workdir: Path) -> None:
    (workdir / "idgraph.toml").write_text(
        "[api]\nhost = '0.0.0.0'\nport = 8123\ngraphiql = true\nmax_page = 50\n"
    )
    api = load_settings({}).api
    assert (api.host, api.port, api.graphiql, api.max_page) == ("0.0.0.0", 8123, True, 50)


def test_batch_size_suits_the_store_unless_the_file_sets_it(workdir: Path) -> None:
    settings = load_settings({})
    assert settings.batch_size_for("sqlite:///idgraph.db") == 10_000
    assert settings.batch_size_for("idgraph.db") == 10_000
    assert settings.batch_size_for("bolt://127.0.0.1:7687") == 5_000
    assert settings.batch_size_for("neo4j+s://graph.example.com") == 5_000
    (workdir / "idgraph.toml").write_text("batch_size = 2000\n")
    settings = load_settings({})
    assert settings.batch_size_for("sqlite:///idgraph.db") == 2_000
    assert settings.batch_size_for("bolt://127.0.0.1:7687") == 2_000
    (workdir / "idgraph.toml").write_text("batch_size = 0\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_settings({})


def test_values_keep_their_toml_type(workdir: Path) -> None:
    config = workdir / "idgraph.toml"
    for bad, where in [
        ('[api]\nport = "8000"', "api.port"),
        ("[api]\ngraphiql = 1", "api.graphiql"),
        ("batch_size = 1.5", "batch_size"),
        ("[rules.blocked_patterns]\nemail = ['(']", "rules.blocked_patterns.email.0"),
        ("[purposes.support]\ndefault = 'maybe'", "purposes.support.default"),
        ("[purposes]", "purposes"),
    ]:
        config.write_text(bad + "\n")
        with pytest.raises(ConfigError, match=f"^idgraph.toml: {where}: "):
            load_settings({})


def test_a_missing_named_config_file_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = refusal(capsys, "check", "--config", "nowhere.toml")
    assert line == "idgraph: config file nowhere.toml does not exist"


@given(name=st.sampled_from(API_COUNTS), value=st.integers(-(10**12), 10**12))
def test_api_limits_from_the_file_are_taken_when_positive_and_refused_otherwise(
    tmp_path_factory: pytest.TempPathFactory, name: str, value: int
) -> None:
    config = tmp_path_factory.mktemp("cfg") / "idgraph.toml"
    config.write_text(f"[api]\n{name} = {value}\n")
    if value > 0:
        assert getattr(load_settings({}, config).api, name) == value
    else:
        with pytest.raises(ConfigError, match=f"api.{name}: Input should be greater than 0"):
            load_settings({}, config)


def max_line_bytes(environ: dict[str, str], config: Path) -> object:
    """The setting loaded, or the reason it was refused."""
    try:
        return load_settings(environ, config).max_line_bytes
    except ConfigError as exc:
        return str(exc).split(": ")[-1]


@given(value=st.integers(-(10**9), 10**9))
def test_the_environment_reads_text_as_the_file_reads_numbers(
    tmp_path_factory: pytest.TempPathFactory, value: int
) -> None:
    config = tmp_path_factory.mktemp("cfg") / "idgraph.toml"
    config.write_text(f"max_line_bytes = {value}\n")
    from_file = max_line_bytes({}, config)
    config.write_text("")
    assert max_line_bytes({"IDGRAPH_MAX_LINE_BYTES": str(value)}, config) == from_file


def test_settings_made_in_code_are_validated_too() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        ApiSettings(max_page=0)
    assert dataclasses.replace(Settings(), store="x.db").store == "x.db"


def test_the_configuration_reference_is_generated_from_the_model() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference(), "run: python -m idgraph.configdoc > docs/configuration.md"
    for name in ("default_region", "max_line_bytes", "IDGRAPH_PORT", "[purposes.NAME]"):
        assert name in committed


def test_the_neo4j_password_stays_out_of_reprs_and_messages(workdir: Path) -> None:
    (workdir / "idgraph.toml").write_text("[neo4j]\npassword = 'hunter2'\nuser = 7\n")
    with pytest.raises(ConfigError) as refused:
        load_settings({})
    assert "hunter2" not in str(refused.value)
    (workdir / "idgraph.toml").write_text("")
    settings = load_settings({"IDGRAPH_NEO4J_PASSWORD": "hunter2"})
    assert settings.neo4j.password == "hunter2"
    assert "hunter2" not in repr(settings)
