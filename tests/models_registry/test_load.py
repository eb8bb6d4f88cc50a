import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from models_registry import CAPABILITIES, Catalogue, CatalogueError, default_catalogue_path, load_catalogue

# The outcome-data names each model must map (exact lists).
ALIASES = {
    "gpt-4o-mini": ["gpt-4o-mini-2024-07-18"],
    "gpt-4o": ["gpt-4o-2024-08-06", "gpt-4o-2024-05-13"],
    "gpt-4-turbo": ["gpt-4-turbo-2024-04-09", "gpt-4-1106-preview"],
    "gpt-3.5-turbo": ["gpt-3.5-turbo-0125"],
    "o1-mini": ["o1-mini-2024-09-12"],
    "claude-3-haiku": ["claude-3-haiku-20240307"],
    "claude-3-5-sonnet": ["claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022"],
    "claude-3-5-haiku": ["claude-3-5-haiku-20241022"],
    "gemini-2.0-flash": ["gemini-2.0-flash-001"],
    "claude-3-opus": ["claude-3-opus-20240229"],
    "gemini-1.5-flash": ["gemini-1.5-flash", "gemini-1.5-flash-002"],
    "gemini-1.5-pro": ["gemini-1.5-pro", "gemini-1.5-pro-002"],
    "llama-3.1-70b-instruct": [
        "Meta-Llama-3.1-70B-Instruct",
        "Meta-Llama-3_1-70B-Instruct",
        "Llama-3.1-70B-Instruct",
    ],
    "llama-3.1-8b-instruct": [
        "Meta-Llama-3.1-8B-Instruct",
        "Meta-Llama-3_1-8B-Instruct",
        "Llama-3.1-8B-Instruct",
    ],
    "llama-3.1-405b-instruct": ["Llama-3.1-405B-Instruct-Turbo"],
    "deepseek-chat": [
        "deepseek-chat-v3",
        "deepseek-v2.5-0908",
        "deepseek-chat-v2.5",
        "deepseek-v2-chat-0628",
        "deepseek-chat",
        "deepseek-chat-v2-2024-05",
    ],
    "mixtral-8x7b-instruct": ["Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1"],
    "mistral-large-latest": ["Mistral-Large-2", "Mistral-Large-Instruct-2407"],
    "mistral-small-latest": ["Mistral-Small-Instruct-2409"],
    "codestral-latest": ["Codestral-22B-v0.1"],
    "qwen-2.5-72b-instruct": ["Qwen2.5-72B-Instruct"],
    "gemma-2-9b-it": ["gemma-2-9b-it"],
    "phi-3-mini": ["Phi-3-mini-4k-instruct"],
    "command-r": ["command-r"],
}
WITHOUT_OUTCOME_DATA = [
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "claude-sonnet-4",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "llama-3.3-70b-versatile",
    "o3-mini",
]
CUSTOM = ["pureai/gemma-3-4b-it", "pureai/DeepSeek-R1-Distill-Llama-8B"]
DISABLED = {"claude-3-opus", "gpt-3.5-turbo", "gpt-4-turbo", *CUSTOM}


@pytest.fixture(scope="module")
def default() -> Catalogue:
    return load_catalogue()


def test_default_catalogue_loads(default: Catalogue) -> None:
    assert default.source == default_catalogue_path()
    assert list(default.models) == [entry.id for entry in default.models.values()]
    assert set(default.models) == set(ALIASES) | set(WITHOUT_OUTCOME_DATA) | set(CUSTOM)


def test_api_reference_models_are_present(default: Catalogue) -> None:
    for model_id in ("gpt-4o-mini", "claude-3-haiku", "codestral-latest", "pureai/gemma-3-4b-it"):
        assert default.get(model_id).id == model_id


def test_enabled_models_have_prices_and_a_primary(default: Catalogue) -> None:
    enabled = default.enabled()
    assert {entry.id for entry in enabled} == set(default.models) - DISABLED
    for entry in enabled:
        assert entry.input_per_mtok > 0, entry.id
        assert entry.output_per_mtok > 0, entry.id
        assert 0 < entry.cached_input_per_mtok <= entry.input_per_mtok, entry.id
        assert entry.context_window >= 4096, entry.id
        assert entry.primary is not None, entry.id
        assert sum(p.type == "primary" for p in entry.providers) == 1


def test_every_model_has_all_priors_in_range(default: Catalogue) -> None:
    for entry in default.models.values():
        assert tuple(entry.quality_priors) == CAPABILITIES, entry.id
        assert all(0.0 <= p <= 1.0 for p in entry.quality_priors.values()), entry.id


def test_priors_follow_known_standing(default: Catalogue) -> None:
    def prior(model_id: str, capability: str) -> float:
        return default.get(model_id).quality_priors[capability]

    for capability in CAPABILITIES:
        assert (
            prior("gpt-4.1", capability)
            > prior("gpt-4.1-mini", capability)
            > prior("gpt-4.1-nano", capability)
        )
        assert prior("gemini-2.5-pro", capability) > prior("gemini-2.5-flash", capability)
    codestral = default.get("codestral-latest").quality_priors
    assert codestral["code"] == max(codestral.values())
    assert prior("codestral-latest", "code") > prior("mistral-small-latest", "code")


def test_outcome_data_aliases(default: Catalogue) -> None:
    for model_id, aliases in ALIASES.items():
        assert list(default.get(model_id).aliases) == aliases
        for alias in aliases:
            assert default.by_alias(alias) == model_id
    for model_id in WITHOUT_OUTCOME_DATA:
        assert default.get(model_id).aliases == ()


def test_custom_deployments(default: Catalogue) -> None:
    for model_id in CUSTOM:
        entry = default.get(model_id)
        assert entry.is_custom and not entry.enabled
        assert entry.api_base is not None and entry.api_base.startswith("http://127.0.0.1:")
        assert entry.litellm_model == "openai/" + model_id.removeprefix("pureai/")
        assert entry.price_source == "catalogue" and entry.input_per_mtok > 0


def test_no_secrets_in_the_default_catalogue(default: Catalogue) -> None:
    for entry in default.models.values():
        for env in [entry.api_key_env, *(p.api_key_env for p in entry.providers)]:
            assert env is None or env.isupper()


def test_load_a_user_catalogue(write_catalogue: Callable[..., Path], model: str) -> None:
    path = write_catalogue(model, name="my.toml")
    for given in (path, str(path)):
        cat = load_catalogue(given)
        assert cat.source == path
        entry = cat.get("acme-small")
        assert entry.owned_by == "acme"
        assert entry.litellm_model == "acme-small"  # defaults to the id
        assert entry.quality_priors == dict.fromkeys(CAPABILITIES, 0.5)
        assert entry.expected_output_tokens == 400
        assert [p.to_api() for p in entry.providers] == [
            {"id": "acme", "type": "primary", "enabled": True, "params": {}}
        ]


PROVIDERS = """
[[models.providers]]
id = "acme"
type = "primary"
api_key_env = "ACME_API_KEY"

[[models.providers]]
id = "cloud"
type = "backup"
enabled = false
litellm_model = "cloud/acme-small"
params = { region = "eu-west-1", retries = 2 }
"""


def test_providers_are_read(write_catalogue: Callable[..., Path], model: str) -> None:
    text = model + PROVIDERS
    entry = load_catalogue(write_catalogue(text)).get("acme-small")
    primary, backup = entry.providers
    assert (primary.id, primary.type, primary.api_key_env, primary.litellm_model) == (
        "acme",
        "primary",
        "ACME_API_KEY",
        None,
    )
    assert backup.to_api() == {
        "id": "cloud",
        "type": "backup",
        "enabled": False,
        "params": {"region": "eu-west-1", "retries": 2},
    }
    assert backup.litellm_model == "cloud/acme-small"


def test_missing_file(tmp_path: Path, assert_names: Callable[..., None]) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(CatalogueError, match="not found") as info:
        load_catalogue(path)
    assert_names(info.value, path, None, None)


def test_toml_syntax_error_gives_the_line(
    write_catalogue: Callable[..., Path], assert_names: Callable[..., None]
) -> None:
    path = write_catalogue('[[models]]\nid = "a"\nowned_by = \n')
    with pytest.raises(CatalogueError, match="TOML syntax error") as info:
        load_catalogue(path)
    assert "line 3" in str(info.value)
    assert_names(info.value, path, None, None)


def test_no_models(write_catalogue: Callable[..., Path], assert_names: Callable[..., None]) -> None:
    path = write_catalogue("# nothing yet\n")
    with pytest.raises(CatalogueError, match=r"no \[\[models\]\]") as info:
        load_catalogue(path)
    assert_names(info.value, path, None, "models")


def test_unknown_top_level_key(
    write_catalogue: Callable[..., Path], model: str, assert_names: Callable[..., None]
) -> None:
    path = write_catalogue("version = 2\n" + model)
    with pytest.raises(CatalogueError, match="unknown top-level key 'version'") as info:
        load_catalogue(path)
    assert_names(info.value, path, None, "version")


def test_load_entry_checks_and_prices_one_table_as_a_file_would() -> None:
    from models_registry import load_entry

    entry = load_entry(
        {
            "id": "pureai/my-llama",
            "owned_by": "pureai",
            "api_base": "http://10.0.0.5:8000/v1",
            "input_per_mtok": 0.02,
            "output_per_mtok": 0.04,
            "context_window": 8192,
            "quality_priors": {"default": 0.6},
        }
    )
    assert (entry.id, entry.litellm_model, entry.is_custom, entry.price_source) == (
        "pureai/my-llama",
        "openai/my-llama",
        True,
        "catalogue",
    )
    assert entry.cached_input_per_mtok == 0.02 and entry.quality_priors["code"] == 0.6
    with pytest.raises(CatalogueError) as caught:
        load_entry({"id": "pureai/x", "owned_by": "pureai", "api_base": "ftp://h/v1", "quality_priors": {}})
    assert (caught.value.entry, caught.value.field, caught.value.path) == ("pureai/x", "api_base", None)
    assert "http:// or https://" in caught.value.reason


def test_every_shipped_model_string_resolves_in_litellm_offline() -> None:
    """Each primary and backup of the built-in catalogue names a provider litellm knows (no network:
    its price map is the bundled file), so no call fails for a model string litellm cannot place.
    In a process of its own: importing litellm here would leave its state to later tests."""
    code = (
        "import litellm\n"
        "from models_registry import load_catalogue\n"
        "bad = []\n"
        "for e in load_catalogue().models.values():\n"
        "    for p in e.providers:\n"
        "        m = p.litellm_model or e.litellm_model\n"
        "        try:\n"
        "            host = litellm.get_llm_provider(m, api_base=p.api_base or e.api_base)[1]\n"
        "        except Exception as exc:\n"
        "            host = None\n"
        "        if not host:\n"
        "            bad.append(f'{e.id}/{p.id}: {m!r}')\n"
        "print(bad)\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_shipped_model_is_priced_and_says_its_output_limit(default: Catalogue) -> None:
    for entry in default.models.values():
        assert entry.priced and not entry.free, entry.id
        if entry.enabled and not entry.is_custom:
            assert entry.max_output_tokens is not None, entry.id
