"""Each way a catalogue can be wrong: a CatalogueError naming file, entry and field."""

from collections.abc import Callable
from pathlib import Path

import pytest

from models_registry import CatalogueError, load_catalogue

Write = Callable[..., Path]
Names = Callable[..., None]

PRIMARY = '\n[[models.providers]]\nid = "acme"\ntype = "primary"\n'
BACKUP = '\n[[models.providers]]\nid = "cloud"\ntype = "backup"\n'


def load_error(path: Path) -> CatalogueError:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        # unknown keys (typos)
        ("context_window = 8192", "contxt_window = 8192", "contxt_window", "did you mean 'context_window'"),
        ('owned_by = "acme"', 'owned_by = "acme"\ncolour = "red"', "colour", "unknown key 'colour'"),
        # wrong types
        ("context_window = 8192", 'context_window = "big"', "context_window", "expected a positive integer"),
        ("context_window = 8192", "context_window = 8192.5", "context_window", "expected a positive integer"),
        ("context_window = 8192", "context_window = 0", "context_window", "positive integer"),
        ('owned_by = "acme"', 'owned_by = "acme"\nenabled = "yes"', "enabled", "true or false"),
        ("input_per_mtok = 1.0", "input_per_mtok = true", "input_per_mtok", "got a boolean"),
        ("input_per_mtok = 1.0", 'input_per_mtok = "1.0"', "input_per_mtok", "expected a number"),
        ('owned_by = "acme"', "owned_by = 3", "owned_by", "expected a string"),
        ('owned_by = "acme"', 'owned_by = ""', "owned_by", "must not be empty"),
        ('owned_by = "acme"\n', "", "owned_by", "is required"),
        ('owned_by = "acme"', 'owned_by = "acme"\naliases = "acme-1"', "aliases", "a list"),
        ('owned_by = "acme"', 'owned_by = "acme"\naliases = ["ok", 2]', "aliases[1]", "non-empty string"),
        ('owned_by = "acme"', 'owned_by = "acme"\nexpected_output_tokens = -5', "expected_output_tokens", ""),
        ('owned_by = "acme"', 'owned_by = "acme"\nreasoning_tokens = -1', "reasoning_tokens", "integer >= 0"),
        ('owned_by = "acme"', 'owned_by = "acme"\nreasoning_tokens = 1.5', "reasoning_tokens", "integer >= 0"),
        ("quality_priors = { default = 0.5 }", "quality_priors = 0.5", "quality_priors", "a table"),
        ("quality_priors = { default = 0.5 }\n", "", "quality_priors", "is required"),
        # negative prices
        ("input_per_mtok = 1.0", "input_per_mtok = -1.0", "input_per_mtok", ">= 0"),
        ("output_per_mtok = 2.0", "output_per_mtok = -0.5", "output_per_mtok", ">= 0"),
        (
            "output_per_mtok = 2.0",
            "output_per_mtok = 2.0\ncached_input_per_mtok = -1",
            "cached_input_per_mtok",
            "",
        ),
        ("input_per_mtok = 1.0", "input_per_mtok = inf", "input_per_mtok", "finite"),
        # priors
        ("{ default = 0.5 }", "{ default = 1.5 }", "quality_priors.default", "in [0, 1]"),
        ("{ default = 0.5 }", "{ default = 0.5, math = -0.1 }", "quality_priors.math", "in [0, 1]"),
        ("{ default = 0.5 }", '{ default = 0.5, chat = "high" }', "quality_priors.chat", "expected a number"),
        (
            "{ default = 0.5 }",
            "{ default = 0.5, coding = 0.9 }",
            "quality_priors.coding",
            "unknown capability",
        ),
        ("{ default = 0.5 }", "{ code = 0.5, math = 0.5 }", "quality_priors", "missing reasoning, knowledge"),
        # api_base and api_key_env
        (
            'owned_by = "acme"',
            'owned_by = "acme"\napi_base = "ftp://x/v1"',
            "api_base",
            "http:// or https://",
        ),
        ('owned_by = "acme"', 'owned_by = "acme"\napi_base = "localhost:8000"', "api_base", "URL"),
        ('owned_by = "acme"', 'owned_by = "acme"\napi_key_env = "sk-abc123"', "api_key_env", "NAME of an"),
        # a relative for cold start
        ('owned_by = "acme"', 'owned_by = "acme"\nlike = 3', "like", "expected a string"),
        ('owned_by = "acme"', 'owned_by = "acme"\nlike_offset = 0.2', "like_offset", "needs `like`"),
        (
            'owned_by = "acme"',
            'owned_by = "acme"\nlike = "gpt-4o"\nlike_offset = 9',
            "like_offset",
            "[-3, 3]",
        ),
        (
            'owned_by = "acme"',
            'owned_by = "acme"\nlike = "gpt-4o"\nlike_offset = "up"',
            "like_offset",
            "logits",
        ),
        ('owned_by = "acme"', 'owned_by = "acme"\nprior_source = 1', "prior_source", "expected a string"),
    ],
)
def test_bad_field(
    write_catalogue: Write, model: str, assert_names: Names, old: str, new: str, field: str, fragment: str
) -> None:
    assert old in model
    path = write_catalogue(model.replace(old, new, 1))
    error = load_error(path)
    assert fragment in str(error)
    assert_names(error, path, "acme-small", field)


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        (PRIMARY.replace('"primary"', '"secondary"'), "providers[0].type", "'primary' or 'backup'"),
        (PRIMARY.replace('type = "primary"', 'kind = "primary"'), "providers[0].kind", "unknown key"),
        (PRIMARY.replace('type = "primary"\n', ""), "providers[0].type", "is required"),
        (PRIMARY + PRIMARY.replace('"acme"', '"acme-eu"'), "providers", "more than one primary"),
        (BACKUP, "providers", "needs one provider with type = 'primary'"),
        (PRIMARY + PRIMARY.replace('"primary"', '"backup"'), "providers[1].id", "duplicate provider id"),
        (PRIMARY + "enabled = 1\n", "providers[0].enabled", "true or false"),
        (PRIMARY + 'params = "x"\n', "providers[0].params", "a table"),
        (PRIMARY + "params = { since = 2024-01-01 }\n", "providers[0].params.since", "dates and times"),
        (PRIMARY + 'api_key_env = "my key"\n', "providers[0].api_key_env", "NAME of an"),
        ("providers = []\n", "providers", "must not be empty"),
        ("providers = [1]\n", "providers[0]", "expected a table"),
    ],
)
def test_bad_provider(
    write_catalogue: Write, model: str, assert_names: Names, extra: str, field: str, fragment: str
) -> None:
    path = write_catalogue(model + extra)
    error = load_error(path)
    assert fragment in str(error)
    assert_names(error, path, "acme-small", field)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('api_key = "sk-live-1234"\n', "api_key"),
        ('openai_api_key = "sk-live-1234"\n', "openai_api_key"),
        (PRIMARY + 'api_key = "sk-live-1234"\n', "providers[0].api_key"),
        (PRIMARY + 'params = { api_key = "sk-live-1234" }\n', "providers[0].params.api_key"),
    ],
)
def test_secrets_are_rejected(
    write_catalogue: Write, model: str, assert_names: Names, extra: str, field: str
) -> None:
    path = write_catalogue(model + extra)
    error = load_error(path)
    assert "api_key_env" in str(error)
    assert "sk-live-1234" not in str(error)
    assert_names(error, path, "acme-small", field)


def test_secret_at_the_top_level(write_catalogue: Write, model: str, assert_names: Names) -> None:
    path = write_catalogue('api_key = "sk-live-1234"\n' + model)
    error = load_error(path)
    assert "api_key_env" in str(error)
    assert_names(error, path, None, "api_key")


def test_duplicate_ids(write_catalogue: Write, model: str, assert_names: Names) -> None:
    path = write_catalogue(model + model)
    error = load_error(path)
    assert "duplicate id" in str(error) and "models[0]" in str(error)
    assert_names(error, path, "acme-small", "id")


def test_duplicate_aliases_across_models(write_catalogue: Write, model: str, assert_names: Names) -> None:
    first = model + 'aliases = ["acme-2024", "acme-shared"]\n'
    second = model.replace('"acme-small"', '"acme-large"') + 'aliases = ["acme-shared"]\n'
    path = write_catalogue(first + second)
    error = load_error(path)
    assert "'acme-shared'" in str(error) and "'acme-small'" in str(error)
    assert_names(error, path, "acme-large", "aliases")


def test_alias_that_is_another_models_id(write_catalogue: Write, model: str, assert_names: Names) -> None:
    second = model.replace('"acme-small"', '"acme-large"') + 'aliases = ["acme-small"]\n'
    path = write_catalogue(model + second)
    assert_names(load_error(path), path, "acme-large", "aliases")


def test_custom_deployment_needs_api_base(write_catalogue: Write, model: str, assert_names: Names) -> None:
    path = write_catalogue(model.replace('"acme-small"', '"pureai/acme-7b"'))
    error = load_error(path)
    assert "required" in str(error)
    assert_names(error, path, "pureai/acme-7b", "api_base")


def test_custom_deployment(write_catalogue: Write, model: str) -> None:
    text = model.replace('"acme-small"', '"pureai/acme-7b"') + 'api_base = "https://llm.example.com/v1"\n'
    entry = load_catalogue(write_catalogue(text)).get("pureai/acme-7b")
    assert entry.litellm_model == "openai/acme-7b"
    assert entry.api_base == "https://llm.example.com/v1"


def test_missing_id_is_named_by_position(write_catalogue: Write, model: str, assert_names: Names) -> None:
    path = write_catalogue(model + model.replace('id = "acme-small"\n', ""))
    error = load_error(path)
    assert "is required" in str(error)
    assert_names(error, path, "models[1]", "id")


def test_bad_id_is_named_by_position(write_catalogue: Write, model: str, assert_names: Names) -> None:
    path = write_catalogue(model.replace('"acme-small"', "42"))
    assert_names(load_error(path), path, "models[0]", "id")


def test_models_must_be_tables(write_catalogue: Write, assert_names: Names) -> None:
    path = write_catalogue("models = [1, 2]\n")
    error = load_error(path)
    assert "expected a [[models]] table" in str(error)
    assert_names(error, path, "models[0]", None)


def test_nothing_is_half_loaded(write_catalogue: Write, model: str) -> None:
    bad = model.replace('"acme-small"', '"acme-bad"').replace("= 1.0", "= -1.0")
    with pytest.raises(CatalogueError, match="acme-bad"):
        load_catalogue(write_catalogue(model + bad))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:hunter22secret@llm.example.com/v1", "user:password@host"),
        ("https://hunter22secret@llm.example.com/v1", "user:password@host"),
        ("https://llm.example.com/v1?key=hunter22secret", "'key'"),
        ("https://llm.example.com/v1?alt=sse&api_key=hunter22secret", "'api_key'"),
        ("https://llm.example.com/v1?apiKey=hunter22secret", "'apiKey'"),
        ("https://llm.example.com/v1?access_token=hunter22secret", "'access_token'"),
        ("https://llm.example.com/v1?X-Amz-Signature=hunter22secret", "'X-Amz-Signature'"),
    ],
)
@pytest.mark.parametrize("where", ["model", "provider"])
def test_credentials_in_an_api_base_are_refused(
    write_catalogue: Write, model: str, assert_names: Names, url: str, shown: str, where: str
) -> None:
    """A URL is shown by the admin API, logged and kept in version control: the key goes in the
    variable api_key_env names. The error names the field and never repeats the secret."""
    extra = f'api_base = "{url}"\n'
    text = model + extra if where == "model" else model + PRIMARY + extra
    path = write_catalogue(text)
    error = load_error(path)
    assert "must not hold credentials" in str(error) and shown in str(error) and "api_key_env" in str(error)
    assert "hunter22secret" not in str(error)
    assert_names(error, path, "acme-small", "api_base" if where == "model" else "providers[0].api_base")


@pytest.mark.parametrize(
    "url",
    [
        "https://llm.example.com/v1?api-version=2024-06-01",  # Azure's, not a credential
        "https://llm.example.com/v1?monkey=1&keyword=x",
        "http://10.0.0.5:8000/v1",  # a private address: the operator's own file (the gateway's SSRF
        "http://localhost:8000/v1",  # policy covers the admin API; see service/ssrf.py)
    ],
)
def test_an_api_base_without_credentials_loads(write_catalogue: Write, model: str, url: str) -> None:
    path = write_catalogue(model + f'api_base = "{url}"\n')
    assert load_catalogue(path).models["acme-small"].api_base == url


def test_a_relative_and_the_source_of_the_priors_load(write_catalogue: Write, model: str) -> None:
    text = model.replace(
        'owned_by = "acme"',
        'owned_by = "acme"\nlike = "gpt-4o-mini"\nlike_offset = -0.25\nprior_source = "acme model card, 2026"',
        1,
    )
    entry = load_catalogue(write_catalogue(text)).models["acme-small"]
    assert (entry.like, entry.like_offset, entry.prior_source) == (
        "gpt-4o-mini",
        -0.25,
        "acme model card, 2026",
    )
    plain = load_catalogue(write_catalogue(model)).models["acme-small"]
    assert (plain.like, plain.like_offset, plain.prior_source) == (None, 0.0, None)
