"""What a type checker sees: mypy on a user's code, for the return type of every method (the
`@overload`s on `stream` and `execute`) and for a misspelt argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = """
from typing import assert_type

from lunar import (
    AsyncLunar, AsyncStream, ChatCompletion, ChatCompletionChunk, Completion, CompletionChunk, Lunar,
    Model, ModelList, ProviderList, RoutedCompletion, RoutingDecision, Stream,
)

M = [{"role": "user", "content": "Hello!"}]


def sync(client: Lunar, flag: bool) -> None:
    assert_type(client.chat.completions.create(model="m", messages=M), ChatCompletion)
    assert_type(client.chat.completions.create(model="m", messages=M, stream=False), ChatCompletion)
    assert_type(client.chat.completions.create(model="m", messages=M, stream=True), Stream[ChatCompletionChunk])
    assert_type(
        client.chat.completions.create(model="m", messages=M, stream=flag),
        ChatCompletion | Stream[ChatCompletionChunk],
    )
    assert_type(client.completions.create(model="m", prompt="p"), Completion)
    assert_type(client.completions.create(model="m", prompt="p", stream=True), Stream[CompletionChunk])
    assert_type(client.models.list(), ModelList)
    assert_type(client.models.retrieve("m"), Model)
    assert_type(client.providers.list(model="m"), ProviderList)
    assert_type(client.router.route(messages=M, execute=False), RoutingDecision)
    assert_type(client.router.route(messages=M), RoutedCompletion)
    assert_type(client.router.route(messages=M, cost_weight=0.5, stream=True), Stream[ChatCompletionChunk])
    for chunk in client.chat.completions.create(model="m", messages=M, stream=True):
        assert_type(chunk.choices[0].delta.content, str | None)


async def asynchronous(client: AsyncLunar) -> None:
    assert_type(await client.chat.completions.create(model="m", messages=M), ChatCompletion)
    assert_type(
        await client.chat.completions.create(model="m", messages=M, stream=True), AsyncStream[ChatCompletionChunk]
    )
    assert_type(await client.completions.create(model="m", prompt="p", stream=True), AsyncStream[CompletionChunk])
    assert_type(await client.models.list(), ModelList)
    assert_type(await client.providers.list(model="m"), ProviderList)
    assert_type(await client.router.route(messages=M, execute=False), RoutingDecision)
    assert_type(await client.router.route(messages=M), RoutedCompletion)
"""

MISTAKES = """
from lunar import Lunar

client = Lunar()
client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], temprature=0.5)
client.chat.completions.create(model="m")
client.completions.create(model="m", prompt="p", max_tokens="ten")
"""


def mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "user.py").write_text(code)
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "user.py"]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)


@pytest.mark.slow
def test_a_type_checker_knows_what_each_call_returns(tmp_path: Path) -> None:
    result = mypy(tmp_path, USER_CODE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_type_checker_catches_misspelt_missing_and_mistyped_arguments(tmp_path: Path) -> None:
    result = mypy(tmp_path, MISTAKES)
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert {line.split(":")[1] for line in errors} == {"5", "6", "7"}, result.stdout  # one line per mistake
    assert 'Unexpected keyword argument "temprature"' in result.stdout
