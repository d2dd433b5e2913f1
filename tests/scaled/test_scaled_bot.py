"""The scaled set-up as an operator runs it: two webhook front ends (``BOT_MODE=webhook WORKERS=0``) and
two ``python -m bot worker`` processes, real PostgreSQL and Redis, the fake Bot API acting as Telegram
plus a round-robin load balancer, and a fake Gemini. Nothing runs in the test process but the fakes.

One deployment is shared by the tests in file order (starting processes costs seconds each):

- a subscriber whose level ends within a day is warned once, with four instances running the notifier;
- 100 users × 3 prompts with a daily limit of 2: 200 photos, 2 units each, 100 limit messages;
- FSM state set through one front end is what the other one sees;
- ``kill -9`` of a worker mid-burst: every job is still delivered once, units add up;
- SIGTERM of a worker mid-job: jobs that fit the grace finish, the others go back and another worker
  delivers them; nothing is refunded;
- ``kill -9`` of a front end: the other keeps answering.

And without a deployment: Redis down or a malformed ``REDIS_URL`` at start-up is one line, not a trace.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from models import User
from tests.conftest import TOKEN
from tests.fakes.providers import FakePollinations
from tests.fakes.telegram import Call, FakeTelegram, FakeUser
from tests.scaled.cluster import (
    DAILY_LIMIT,
    REDELIVERY_TIMEOUT,
    SHUTDOWN_GRACE,
    Cluster,
    Node,
    PacedGemini,
    users,
    wait_until,
)
from tests.scaled.conftest import (
    _FAILED,
    REDIS_URL,
    available,
    redis_client,
    temporary_database,
    temporary_namespace,
)
from tests.scaled.processes import BotProcess, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUBSCRIBER = FakeUser(id=50_001, first_name="Sub")
LIMIT_TEXT = f"You have used all {DAILY_LIMIT} images for today."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Migrate a fresh database, seed a subscriber who expires within a day, start front ends A and B,
    then workers W1 and W2 (so a front end holds the recovery and notifier leases), and let the fake
    Telegram deliver to both front ends."""
    async with AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(available(temporary_database()))
        namespace = await stack.enter_async_context(available(temporary_namespace()))
        tg = await stack.enter_async_context(FakeTelegram())
        gemini = await stack.enter_async_context(PacedGemini())
        pollinations = await stack.enter_async_context(FakePollinations())
        cluster = Cluster(tmp_path_factory.mktemp("cluster"), database_url, namespace, tg, gemini, pollinations)
        stack.push_async_callback(cluster.aclose)

        await cluster.migrate()
        now = datetime.now(UTC)
        async with AsyncSession(cluster.engine) as session, session.begin():
            session.add(
                User(
                    id=SUBSCRIBER.id,
                    first_name=SUBSCRIBER.first_name,
                    language_code="en",
                    level="subscriber",
                    level_until=now + timedelta(hours=12),
                    created_at=now - timedelta(days=29),
                    last_seen_at=now - timedelta(hours=1),
                )
            )
        fronts = [cluster.start_front_end("front-a"), cluster.start_front_end("front-b")]
        await asyncio.gather(*(node.healthy() for node in fronts))
        workers = [cluster.start_worker("worker-1"), cluster.start_worker("worker-2")]
        await asyncio.gather(*(node.healthy() for node in workers))
        tg.deliver_to([node.webhook for node in fronts])
        yield cluster


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test prints the tail of every process's log (pytest shows it with the failure)."""
    yield
    if request.node.stash.get(_FAILED, False) and "cluster" in request.fixturenames:
        print(request.getfixturevalue("cluster").logs())


def _prompt_of(call: Call) -> str:
    """The prompt a photo answers: its caption ends with "📝 <prompt>" and the day's count."""
    caption = str(call.params.get("caption", ""))
    for line in caption.splitlines():
        if line.startswith("📝"):
            return line.removeprefix("📝").strip()
    raise AssertionError(f"no prompt in caption {caption!r}")


async def _push_prompts(tg: FakeTelegram, people: list[FakeUser], prompts: list[str]) -> None:
    for user in people:
        for prompt in prompts:
            tg.push(tg.message(user, prompt.format(id=user.id)))


# ---------------------------------------------------------------------- (e) notifier under a lease


async def test_expiring_subscriber_is_warned_exactly_once_by_four_instances(cluster: Cluster) -> None:
    """Every process runs the notifier at start-up; the lease (and the claim on the row) make it one message."""
    tg = cluster.tg

    def warnings() -> list[str]:
        return [t for t in cluster.texts(SUBSCRIBER.id) if t.startswith("Your subscription ends on")]

    await wait_until(warnings, timeout=30, what="the expiry warning", describe=cluster.logs)
    await asyncio.sleep(3)  # every instance has had its first round by now (they were all healthy)
    assert len(warnings()) == 1, tg.describe_calls()
    assert len(tg.calls_of("sendMessage", chat_id=SUBSCRIBER.id)) == 1  # nothing else, no failed retry either
    [lease] = await cluster.rows("SELECT owner FROM leases WHERE name = 'subscription-notifier'")
    holders = [n.name for n in cluster.nodes.values() if lease["owner"].split(":")[1] == str(n.pid)]
    assert len(holders) == 1, lease
    [row] = await cluster.rows("SELECT level_until, expiry_warned_for FROM users WHERE id = :id", id=SUBSCRIBER.id)
    assert row["expiry_warned_for"] == row["level_until"]


# ---------------------------------------------------------------------- (a) the burst


async def test_burst_of_100_users_through_two_front_ends_and_two_workers(cluster: Cluster) -> None:
    """100 users send 3 prompts at once with a daily limit of 2: exactly 200 photos, 2 units each, and
    each user's third prompt answered with the limit message. Both front ends and both workers worked."""
    tg = cluster.tg
    people = users(10_001, 100, "Burst")
    ids = [u.id for u in people]
    cluster.gemini.delays["[burst]"] = 0.3
    mark = tg.mark()
    started = time.monotonic()
    await _push_prompts(
        tg, people, ["[burst] a lighthouse {id} #1", "[burst] a lighthouse {id} #2", "[burst] a lighthouse {id} #3"]
    )

    def limit_messages() -> list[Call]:
        return [
            c
            for c in tg.calls_of("sendMessage", ok=True, since=mark)
            if c.chat_id in set(ids) and c.result["text"].startswith(LIMIT_TEXT)
        ]

    await wait_until(
        lambda: len(cluster.photos(ids, mark)) >= 200,
        timeout=90,
        what="200 photos",
        describe=lambda: cluster.progress(ids, mark),
    )
    await wait_until(lambda: len(limit_messages()) >= 100, timeout=60, what="100 limit messages")
    await cluster.settled(ids, timeout=60)
    elapsed = time.monotonic() - started
    await asyncio.sleep(1)  # anything late (a duplicate) would show up now

    photos = cluster.photos(ids, mark)
    assert len(photos) == 200, f"{len(photos)} photos"
    per_user = collections.Counter(c.chat_id for c in photos)
    assert all(per_user[i] == 2 for i in ids), {i: per_user[i] for i in ids if per_user[i] != 2}
    per_prompt = collections.Counter((c.chat_id, _prompt_of(c)) for c in photos)
    assert max(per_prompt.values()) == 1, [k for k, v in per_prompt.items() if v > 1]
    assert all(cluster.gemini.made(c.files["photo"]) for c in photos)  # Gemini made each: no fallback
    limits = collections.Counter(c.chat_id for c in limit_messages())
    assert all(limits[i] == 1 for i in ids), {i: limits[i] for i in ids if limits[i] != 1}
    assert await cluster.units_used(ids) == dict.fromkeys(ids, 2)

    rows = await cluster.generations(ids)
    assert len(rows) == 200
    assert {r["status"] for r in rows} == {"delivered"}
    assert all(r["sent_message_id"] is not None for r in rows)
    # Nothing died, but on a loaded machine a 3 s lease can lapse before it is renewed: the job then runs
    # again (at least once), yet is sent once (one photo per prompt above): the lapsed run does not send.
    reruns = sum(1 for r in rows if r["job_attempts"] > 1)
    # No job lost its queue message (it would wait for the stale-job sweep, 10 × the redelivery timeout).
    waits = {r["id"]: (r["started_at"] - r["created_at"]).total_seconds() for r in rows}
    assert max(waits.values()) < 10 * REDELIVERY_TIMEOUT, sorted(waits.items(), key=lambda kv: -kv[1])[:5]

    front_a, front_b = cluster.nodes["front-a"], cluster.nodes["front-b"]
    assert tg.deliveries_to(front_a.webhook, ok=True) and tg.deliveries_to(front_b.webhook, ok=True)
    done = [await n.metric("imagebot_generations_total", status="delivered") for n in cluster.workers()]
    assert sum(done) == 200 and all(d > 0 for d in done), done
    print(
        f"burst: 300 prompts, 200 photos in {elapsed:.1f}s; longest queue wait {max(waits.values()):.1f}s; "
        f"jobs per worker {done}; {reruns} run again after a lapsed lease"
    )


# ---------------------------------------------------------------------- (d) FSM shared through Redis


async def test_fsm_state_set_through_one_front_end_is_seen_by_the_other(cluster: Cluster) -> None:
    """/generate and the model pick go to front end A (the pick sets `waiting_prompt` in Redis); /cancel
    then goes to B, which finds the state ("Cancelled.", not "Nothing to cancel."). Picking again on A
    and sending the prompt to B: B clears the state A set, and the job runs with the model picked on A."""
    tg = cluster.tg
    a, b = cluster.nodes["front-a"], cluster.nodes["front-b"]
    user = FakeUser(id=40_001, first_name="Fsm")
    update_ids = iter(range(900_000_000, 900_001_000))  # posted straight to one front end, past the balancer
    pattern = f"{cluster.namespace}:fsm:*{user.id}:{user.id}:state"

    async with redis_client() as redis:

        async def state() -> str | None:
            values = [await redis.get(key) async for key in redis.scan_iter(match=pattern)]
            found = [v.decode() for v in values if v]
            assert len(found) <= 1, found
            return found[0] if found else None

        async def pick_on_a() -> None:
            mark = tg.mark()
            assert await cluster.post_update(a, tg.message(user, "/generate"), next(update_ids)) == 200
            picker = await tg.wait_for("sendMessage", chat_id=user.id, since=mark, timeout=20)
            assert "pick:flux-dev" in picker.callback_datas
            mark = tg.mark()
            callback = tg.callback(user, "pick:flux-dev", message_id=picker.result["message_id"])
            assert await cluster.post_update(a, callback, next(update_ids)) == 200
            await tg.wait_for("editMessageText", chat_id=user.id, since=mark, timeout=20)
            assert await state() == "GenerateFlow:waiting_prompt"

        await pick_on_a()
        mark = tg.mark()
        assert await cluster.post_update(b, tg.message(user, "/cancel"), next(update_ids)) == 200
        reply = await tg.wait_for("sendMessage", chat_id=user.id, since=mark, timeout=20)
        assert reply.result["text"] == "Cancelled.", reply.result["text"]
        assert await state() is None

        await pick_on_a()
        mark = tg.mark()
        assert await cluster.post_update(b, tg.message(user, "a fox in the snow"), next(update_ids)) == 200
        await tg.wait_for("sendPhoto", chat_id=user.id, since=mark, timeout=30)
        assert await state() is None
    [job] = await cluster.generations([user.id])
    assert job["model_requested"] == "flux-dev"  # picked on A, submitted on B


# ---------------------------------------------------------------------- (b) kill -9 of a worker


async def test_kill_9_of_a_worker_mid_burst_loses_and_repeats_nothing(cluster: Cluster) -> None:
    """Worker 1 dies holding running jobs: they come back once its lease lapses and worker 2 delivers
    them. Every prompt gets exactly one photo (a second one only inside the documented sendPhoto → DB
    window, which must then have started before the kill), and every user is charged exactly one unit."""
    tg = cluster.tg
    victim, survivor = cluster.nodes["worker-1"], cluster.nodes["worker-2"]
    people = users(20_001, 40, "Kill")
    ids = [u.id for u in people]
    cluster.gemini.delays["[slow]"] = 1.5
    mark = tg.mark()
    await _push_prompts(tg, people, ["[slow] a red kite {id}"])

    held = await wait_until(
        lambda: _held_at_least(cluster, victim, 3),
        timeout=60,
        every=0.05,
        what="worker-1 to hold 3 running jobs",
        describe=cluster.logs,
    )
    victim.proc.kill()
    killed_at = time.monotonic()
    held_after = await cluster.held_by(victim)  # its leases as the kill left them
    assert await victim.proc.wait(10) < 0

    await wait_until(
        lambda: len(cluster.photos(ids, mark)) >= 40,
        timeout=60,
        what="40 photos",
        describe=lambda: cluster.progress(ids, mark),
    )
    await cluster.settled(ids, timeout=30)
    recovered_in = time.monotonic() - killed_at
    await asyncio.sleep(1)

    photos = cluster.photos(ids, mark)
    by_prompt: dict[tuple[int, str], list[Call]] = collections.defaultdict(list)
    for call in photos:
        by_prompt[(int(call.chat_id), _prompt_of(call))].append(call)  # type: ignore[arg-type]
    assert sorted(k[0] for k in by_prompt) == ids  # one prompt each, each answered
    doubles = {k: v for k, v in by_prompt.items() if len(v) > 1}
    for key, calls in doubles.items():  # only the documented window: the first send beat the kill
        assert len(calls) == 2 and min(c.time for c in calls) < killed_at, (key, [str(c) for c in calls])
    assert await cluster.units_used(ids) == dict.fromkeys(ids, 1)

    rows = {r["id"]: r for r in await cluster.generations(ids)}
    assert {r["status"] for r in rows.values()} == {"delivered"}
    held_ids = {r["id"] for r in held} | {r["id"] for r in held_after}
    assert all(rows[i]["job_attempts"] >= 2 for i in held_ids), {i: rows[i]["job_attempts"] for i in held_ids}
    assert await survivor.metric("imagebot_job_redeliveries_total") >= len(held_ids)
    print(
        f"kill -9: {len(held_ids)} jobs held by the dead worker; all 40 settled {recovered_in:.1f}s after the "
        f"kill; {len(doubles)} duplicate(s) inside the sendPhoto window"
    )

    cluster.start_worker("worker-3")  # two workers again for the SIGTERM test (ready by then)


async def _held_at_least(cluster: Cluster, node: Node, count: int) -> list[dict[str, object]] | None:
    held = await cluster.held_by(node)
    return held if len(held) >= count else None


# ---------------------------------------------------------------------- (f) SIGTERM of a worker


async def test_sigterm_of_a_worker_finishes_or_hands_back_its_jobs_and_refunds_nothing(cluster: Cluster) -> None:
    """SIGTERM while a worker runs jobs that take 1 s (inside SHUTDOWN_GRACE) and jobs that take 6 s
    (beyond it): the short ones are delivered by it before it exits, the long ones are put back and
    delivered once by the other worker soon after; every user charged one unit, nobody told of a refund.

    The other worker is paused (SIGSTOP) while the jobs arrive, so the one stopped holds both kinds."""
    tg = cluster.tg
    target, other = cluster.nodes["worker-2"], cluster.nodes["worker-3"]
    await other.healthy()
    people = users(60_001, 8, "Term")
    ids = [u.id for u in people]
    cluster.gemini.delays["[brief]"] = 1.0
    cluster.gemini.delays["[lengthy]"] = 6.0
    mark = tg.mark()
    other.proc.send_signal(signal.SIGSTOP)
    try:
        for n, user in enumerate(people):
            tg.push(tg.message(user, f"{'[brief]' if n % 2 else '[lengthy]'} a quiet harbour {user.id}"))

        async def holds_both() -> list[dict[str, Any]] | None:
            held = await cluster.held_by(target)
            kinds = {str(r["prompt"]).split()[0] for r in held}
            return held if kinds == {"[brief]", "[lengthy]"} else None

        held = await wait_until(
            holds_both, timeout=30, every=0.05, what="worker-2 to hold brief and lengthy jobs", describe=cluster.logs
        )
        target.proc.terminate()
        termed_at = time.monotonic()
    finally:
        other.proc.send_signal(signal.SIGCONT)
    code = await target.proc.wait(SHUTDOWN_GRACE + 15)
    stopped_in = time.monotonic() - termed_at
    assert code == 0, target.proc.log_tail()
    assert stopped_in < SHUTDOWN_GRACE + 8, f"took {stopped_in:.1f}s to stop"

    # The put-back jobs are redelivered well before the stale-job sweep (10 × the timeout) would find them.
    await wait_until(
        lambda: len(cluster.photos(ids, mark)) >= len(ids),
        timeout=6.0 + REDELIVERY_TIMEOUT + 10,
        what="a photo for every prompt",
        describe=lambda: cluster.progress(ids, mark),
    )
    await cluster.settled(ids, timeout=20)
    await asyncio.sleep(1)

    per_prompt = collections.Counter((c.chat_id, _prompt_of(c)) for c in cluster.photos(ids, mark))
    assert len(per_prompt) == len(ids) and set(per_prompt.values()) == {1}, per_prompt
    assert await cluster.units_used(ids) == dict.fromkeys(ids, 1)
    rows = {r["id"]: r for r in await cluster.generations(ids)}
    assert {r["status"] for r in rows.values()} == {"delivered"}
    assert all(r["error_class"] is None for r in rows.values())
    for user in people:
        said = " ".join(cluster.texts(user.id, since=mark))
        assert "interrupted" not in said and "not charged" not in said, said

    brief = [r["id"] for r in held if str(r["prompt"]).startswith("[brief]")]
    # Started less than 6 s - grace ago: cannot have finished inside the grace.
    lengthy = [r["id"] for r in held if str(r["prompt"]).startswith("[lengthy]") and r["age"] < 6 - SHUTDOWN_GRACE - 1]
    assert brief and lengthy, held
    for job_id in brief:  # finished inside the grace, by the worker that had it: never put back
        assert rows[job_id]["enqueued_at"] < rows[job_id]["started_at"], rows[job_id]
        assert rows[job_id]["job_attempts"] == 1
    for job_id in lengthy:  # put back untouched (the attempt not counted), then run by the other worker
        assert rows[job_id]["enqueued_at"] > rows[job_id]["started_at"], rows[job_id]
        assert rows[job_id]["job_attempts"] == 1
    log = target.proc.log_text()
    assert "left on the queue" in log and "Traceback" not in log, target.proc.log_tail()
    print(
        f"SIGTERM: worker stopped in {stopped_in:.1f}s; {len(brief)} job(s) finished inside the grace, "
        f"{len(lengthy)} handed back and delivered by the other worker"
    )


# ---------------------------------------------------------------------- (c) kill -9 of a front end


async def test_kill_9_of_a_front_end_the_other_keeps_answering(cluster: Cluster) -> None:
    """Front end A dies; the balancer (the fake) fails over to B: every user's /start and prompt are
    answered, and the connection refusals on A are visible in the delivery log."""
    tg = cluster.tg
    a, b = cluster.nodes["front-a"], cluster.nodes["front-b"]
    a.proc.kill()
    assert await a.proc.wait(10) < 0
    people = users(30_001, 10, "Fail")
    ids = [u.id for u in people]
    mark = tg.mark()
    deliveries = len(tg.deliveries)
    update_ids = []
    for user in people:
        update_ids.append(tg.push(tg.message(user, "/start")))
        update_ids.append(tg.push(tg.message(user, f"a green field {user.id}")))

    await wait_until(
        lambda: len(cluster.photos(ids, mark)) >= 10,
        timeout=60,
        what="10 photos",
        describe=lambda: cluster.progress(ids, mark),
    )
    for user in people:
        assert cluster.texts(user.id, since=mark), f"no answer to {user.id}"
    per_prompt = collections.Counter((c.chat_id, _prompt_of(c)) for c in cluster.photos(ids, mark))
    assert len(per_prompt) == 10 and set(per_prompt.values()) == {1}
    recent = tg.deliveries[deliveries:]
    assert any(d.url == a.webhook and not d.ok for d in recent), "nothing was sent to the dead front end"
    assert all(tg.delivered(u) is not None and tg.delivered(u).url == b.webhook for u in update_ids)  # type: ignore[union-attr]
    await b.healthy(10)
    assert tg.webhooks, "the dead front end's webhook must stay set"


# ---------------------------------------------------------------------- (g) Redis at start-up


async def test_redis_down_or_malformed_at_start_up_is_one_line(tmp_path: Path) -> None:
    """No deployment: `python -m bot` (and `worker`) with Redis on a closed port exit non-zero with one
    line naming REDIS_URL (and not its password); a malformed REDIS_URL is a one-line configuration error."""
    async with FakeTelegram() as tg:
        closed = free_port()
        base = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.url, "WORKERS": "4"}
        cases = {
            "down": ((), f"redis://:hunter2@127.0.0.1:{closed}/0"),
            "down-worker": (("worker",), f"redis://:hunter2@127.0.0.1:{closed}/0"),
            "scheme": ((), "http://127.0.0.1:6379/0"),
            "port": ((), "redis://:hunter2@127.0.0.1:notaport/0"),
        }
        procs = {
            name: BotProcess(args, env={**base, "REDIS_URL": url}, name=name, cwd=tmp_path / name).start()
            for name, (args, url) in cases.items()
        }
        try:
            codes = dict(zip(procs, await asyncio.gather(*(p.wait(60) for p in procs.values())), strict=True))
        finally:
            for proc in procs.values():
                proc.cleanup()
    for name, proc in procs.items():
        lines = [line for line in proc.log_text().splitlines() if line.strip()]
        assert codes[name] != 0, (name, proc.log_text())
        assert len(lines) == 1 and "REDIS_URL" in lines[0], (name, proc.log_text())
        assert "hunter2" not in proc.log_text() and "Traceback" not in proc.log_text()
    assert codes["scheme"] == 2 and "Configuration error" in procs["scheme"].log_text()
    assert not tg.calls_of("getMe"), "nothing may reach Telegram before Redis answers"


# ---------------------------------------------------------------------- SIGTERM before Telegram answers


async def test_sigterm_while_the_bot_api_is_unreachable_stops_every_mode(tmp_path: Path) -> None:
    """A front end or worker still waiting for the Bot API at start-up (getMe retried with back-off)
    stops on SIGTERM at once and cleanly, as `docker stop` and Ctrl+C expect, in every mode."""
    closed = f"http://127.0.0.1:{free_port()}"
    async with AsyncExitStack() as stack:
        namespace = await stack.enter_async_context(available(temporary_namespace()))
        base = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": closed, "REDIS_NAMESPACE": namespace}
        webhook = {"BOT_MODE": "webhook", "WEBHOOK_URL": "https://bot.example.test/hook", "WEBHOOK_SECRET": "s3cret"}
        modes: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
            "polling": ((), {}),
            "webhook": ((), {**webhook, "WEB_PORT": str(free_port())}),
            "worker": (("worker",), {"REDIS_URL": REDIS_URL, "METRICS": "1", "WEB_PORT": str(free_port())}),
        }
        procs = {
            name: BotProcess(args, env={**base, **extra}, name=name, cwd=tmp_path / name).start()
            for name, (args, extra) in modes.items()
        }
        stack.callback(lambda: [proc.cleanup() for proc in procs.values()])
        for proc in procs.values():
            await wait_until(
                lambda proc=proc: "Telegram Bot API not reachable" in proc.log_text() or not proc.running,
                timeout=60,
                what=f"{proc.name} to retry getMe",
            )
            assert proc.running, proc.log_tail()
        for proc in procs.values():
            proc.terminate()
        codes = await asyncio.gather(*(proc.wait(SHUTDOWN_GRACE + 8) for proc in procs.values()))
    for proc, code in zip(procs.values(), codes, strict=True):
        assert code == 0 and "Traceback" not in proc.log_text(), proc.log_tail()
