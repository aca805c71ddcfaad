"""Crash safety: a writer process killed with SIGKILL at random moments loses no
acknowledged write and leaves no partial one.

The writer (`writer_main`, run as a separate Python process) adds faces (made-up
embeddings, one to three per call), associates free faces with users and
disassociates them again, and past `MAX_FACES` deletes free faces instead of adding,
through the service layer, one call at a time. Before each
call it appends its intent to a log; after the call returns, an acknowledgement. The
test kills it `KILLS` times, each at a random moment after it starts writing, and
after each kill opens the store afresh and checks:

* every acknowledged change is there, and the one call in flight at the kill either
  happened whole or not at all: the faces and their users are exactly the replay of
  the acknowledged calls, with or without the one in flight;
* the vector index agrees with the store: a search from a fresh `Service` (which
  loads the collection) and from one kept alive across the kills (which catches up
  from the change log) both find exactly the stored faces.

The writer's calls are chosen so their outcome is known in advance (only free faces
are associated, never past 100 per user), which makes the in-flight call's effect,
if it happened, exactly predictable.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rekollect.index import CollectionIndexes
from rekollect.service import Service
from rekollect.service.associations import associate_faces, disassociate_faces
from rekollect.service.collection import create_collection
from rekollect.service.faces import add_faces, delete_faces
from rekollect.service.search import search_faces
from rekollect.service.users import create_user
from rekollect.storage import open_database
from rekollect.storage.records import NewFace, Scope
from rekollect.storage.schema import collections, faces, users
from tests import faces as made_up

ACCOUNT, REGION = "000000000000", "us-east-1"
COLLECTION = "crash"
USERS = ["u0", "u1", "u2", "u3"]
KILLS = 24
MAX_USER_FACES = 100
# Past this many faces the writer deletes free faces instead of adding some, so a
# search (at most 4096 matches) can still return every face.
MAX_FACES = 600
ROOT = Path(__file__).resolve().parents[1]

State = dict[str, str | None]  # face id -> user id


# The writer, in its own process


def writer_main(url: str, log_path: str, seed: str) -> None:
    service = Service(open_database(url, migrate=False))
    scope = Scope(ACCOUNT, REGION)
    rng = random.Random(int(seed))
    person = made_up.person(seed=1)
    state = stored_state(service)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for number in range(1, 1_000_000):
        call, new = _next_call(rng, state, person)
        os.write(log, (json.dumps({"intent": number} | call) + "\n").encode())
        _perform(service, scope, call, new)
        os.write(log, (json.dumps({"done": number}) + "\n").encode())
        _replay(state, call)


def _next_call(
    rng: random.Random, state: State, person: Any
) -> tuple[dict[str, Any], list[NewFace]]:
    counts = Counter(user for user in state.values() if user)
    free = [face for face, user in state.items() if user is None]
    kind = rng.choices(["add", "associate", "disassociate"], [3, 4, 3])[0]
    user = rng.choice(USERS)
    if kind == "associate":
        room = min(rng.randint(1, 5), MAX_USER_FACES - counts[user], len(free))
        if room > 0:
            return {
                "call": "associate",
                "user": user,
                "faces": rng.sample(free, room),
            }, []
    if kind == "disassociate":
        held = [face for face, owner in state.items() if owner == user]
        if held:
            chosen = rng.sample(held, min(rng.randint(1, 5), len(held)))
            return {"call": "disassociate", "user": user, "faces": chosen}, []
    if len(state) >= MAX_FACES and free:
        chosen = rng.sample(free, min(rng.randint(1, 5), len(free)))
        return {"call": "delete", "faces": chosen}, []
    new = [made_up.new_face(made_up.face_of(person)) for _ in range(rng.randint(1, 3))]
    return {"call": "add", "faces": [face.face_id for face in new]}, new


def _perform(
    service: Service, scope: Scope, call: dict[str, Any], new: list[NewFace]
) -> None:
    if call["call"] == "add":
        add_faces(service, scope, COLLECTION, new)
        return
    if call["call"] == "delete":
        answer = delete_faces(
            service, scope, collection_id=COLLECTION, face_ids=call["faces"]
        )
        if sorted(answer["DeletedFaces"]) != sorted(call["faces"]):
            raise SystemExit(f"unexpected answer to {call}: {answer}")
        return
    operation = associate_faces if call["call"] == "associate" else disassociate_faces
    answer = operation(
        service,
        scope,
        collection_id=COLLECTION,
        user_id=call["user"],
        face_ids=call["faces"],
    )
    moved = answer.get("AssociatedFaces", answer.get("DisassociatedFaces"))
    if sorted(f["FaceId"] for f in moved) != sorted(call["faces"]):
        raise SystemExit(f"unexpected answer to {call}: {answer}")


def _replay(state: State, call: dict[str, Any]) -> None:
    """`state` after `call`: an added or disassociated face has no user."""
    for face in call["faces"]:
        if call["call"] == "delete":
            del state[face]
        else:
            state[face] = call["user"] if call["call"] == "associate" else None


def stored_state(service: Service) -> State:
    with service.database.read() as conn:
        rows = conn.execute(
            select(faces.c.face_id, users.c.user_id)
            .select_from(
                faces.join(collections).outerjoin(users, faces.c.user_pk == users.c.pk)
            )
            .where(collections.c.collection_id == COLLECTION)
        )
        return {row.face_id: row.user_id for row in rows}


# The test


def _read_log(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The acknowledged calls, and the call in flight at the kill (if any)."""
    intents: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    for line in path.read_text().splitlines():
        record = json.loads(line)  # a line cut by the kill would fail here
        if "intent" in record:
            intents[record["intent"]] = record
        else:
            done.add(record["done"])
    pending = sorted(set(intents) - done)
    assert len(pending) <= 1, f"more than one call in flight: {pending}"
    acked = [intents[n] for n in sorted(done)]
    return acked, intents[pending[0]] if pending else None


def _searched(service: Service, state: State) -> set[str]:
    if not state:
        return set()
    query = next(iter(state))
    answer = search_faces(
        service,
        Scope(ACCOUNT, REGION),
        collection_id=COLLECTION,
        face_id=query,
        max_faces=4096,
        face_match_threshold=0.0,
    )
    return {match["Face"]["FaceId"] for match in answer["FaceMatches"]} | {query}


def _exact_service(url: str) -> Service:
    """A service whose searches are exact (no IVF index, which may miss a face)."""
    service = Service(open_database(url, migrate=False))
    service.indexes = CollectionIndexes(service.database, approximate_above=1 << 30)
    return service


def _start_writer(url: str, log: Path, seed: int) -> subprocess.Popen[str]:
    code = "import sys; from tests.test_crash import writer_main; writer_main(*sys.argv[1:])"
    writer = subprocess.Popen(
        [sys.executable, "-c", code, url, str(log), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    line = writer.stdout.readline()
    if line != "ready\n":
        pytest.fail(f"the writer did not start: {writer.communicate()[1]}")
    return writer


def test_killed_writers_lose_no_acknowledged_write_and_leave_no_partial_one(
    store_url, tmp_path
):
    setup = Service(open_database(store_url))
    scope = Scope(ACCOUNT, REGION)
    create_collection(setup, scope, collection_id=COLLECTION)
    for user in USERS:
        create_user(setup, scope, collection_id=COLLECTION, user_id=user)
    setup.close()
    survivor = _exact_service(store_url)

    rng = random.Random(20261204)
    model: State = {}
    totals = Counter[str]()
    started = time.monotonic()
    for kill in range(KILLS):
        log = tmp_path / f"writer-{kill}.log"
        writer = _start_writer(store_url, log, rng.randrange(1 << 30))
        time.sleep(rng.uniform(0.05, 0.6))
        if writer.poll() is not None:
            pytest.fail(f"the writer died before the kill: {writer.communicate()[1]}")
        writer.send_signal(signal.SIGKILL)
        writer.communicate()

        acked, in_flight = _read_log(log)
        for call in acked:
            _replay(model, call)
        fresh = _exact_service(store_url)
        try:
            stored = stored_state(fresh)
            with_in_flight = dict(model)
            if in_flight is not None:
                _replay(with_in_flight, in_flight)
            assert stored in (model, with_in_flight), f"kill {kill}: state differs"
            totals["acknowledged"] += len(acked)
            if in_flight is not None:
                totals[
                    "in flight, applied" if stored != model else "in flight, not"
                ] += 1
            model = stored

            assert _searched(fresh, stored) == set(stored), f"kill {kill}: fresh index"
            assert _searched(survivor, stored) == set(stored), (
                f"kill {kill}: live index"
            )
        finally:
            fresh.close()
    survivor.close()

    elapsed = time.monotonic() - started
    print(f"{KILLS} kills in {elapsed:.1f}s: {dict(totals)}, {len(model)} faces")  # noqa: T201
    assert totals["acknowledged"] >= 5 * KILLS, "the writer barely wrote"
    assert sum(1 for user in model.values() if user) > 0
