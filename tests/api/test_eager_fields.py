"""Async fields run at once (idgraph.api.execution): one that never waits gives its value
right away; one that waits goes on, when awaited, exactly as it would have in a task of
its own: its value, its error and its cancellation all reach whoever awaits it."""

from __future__ import annotations

import asyncio

import pytest

from idgraph.api.execution import run_eagerly


async def test_a_coroutine_that_never_waits_gives_its_value_at_once() -> None:
    answer = asyncio.get_running_loop().create_future()
    answer.set_result(41)  # a loader's future when the key was primed

    async def field() -> int:
        return await answer + 1

    assert run_eagerly(field()) == 42


async def test_a_coroutine_that_waits_goes_on_from_there_when_awaited() -> None:
    gate = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def field() -> str:
        steps.append("started")
        await asyncio.sleep(0)
        steps.append("slept")
        value = await gate
        steps.append("resumed")
        return value

    pending = run_eagerly(field())
    assert steps == ["started"]
    assert asyncio.iscoroutine(pending)
    task = asyncio.ensure_future(pending)
    await asyncio.sleep(0.01)
    assert steps == ["started", "slept"]
    assert not task.done()
    gate.set_result("done")
    assert await task == "done"
    assert steps == ["started", "slept", "resumed"]


async def test_an_error_after_the_first_wait_reaches_the_awaiter() -> None:
    async def field() -> None:
        await asyncio.sleep(0)
        raise ValueError("the store failed")

    with pytest.raises(ValueError, match="the store failed"):
        await asyncio.ensure_future(run_eagerly(field()))  # type: ignore[arg-type]


async def test_cancelling_the_awaiting_task_cancels_the_waiting_coroutine() -> None:
    never = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def field() -> None:
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")

    task = asyncio.ensure_future(run_eagerly(field()))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "cleaned up"]
    assert never.cancelled()  # what it waited for is let go too, as in a task of its own


async def test_fields_that_wait_for_the_same_future_all_get_its_value() -> None:
    """Two aliases resolving one identifier share one loader future."""
    shared = asyncio.get_running_loop().create_future()

    async def field(name: str) -> tuple[str, int]:
        return name, await shared

    pending = [run_eagerly(field(name)) for name in ("a", "b", "c")]
    asyncio.get_running_loop().call_soon(shared.set_result, 7)
    assert await asyncio.gather(*pending) == [("a", 7), ("b", 7), ("c", 7)]  # type: ignore[arg-type]
