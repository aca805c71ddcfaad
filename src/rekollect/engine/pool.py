"""Where image jobs run: a pool of engine worker processes, or inline.

An image job is "decode these bytes, then find, align and embed the faces". dlib
computes on one core per call and holds the GIL for long stretches, so the server runs
jobs in worker processes, one per core by default: a large image then occupies one
worker while the event loop and the other workers carry on. Each job has a time limit;
a worker that overruns it (or dies) is killed and replaced, and the request fails
with a retryable server error instead of hanging.

The in-process client defaults to running jobs inline, in the calling thread: a script
that indexes a few photos should not start a process per core.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from rekollect.engine.base import AnalyzedFace, Engine
from rekollect.engine.registry import EngineSpec, create_engine, model_version_of
from rekollect.errors import InternalServerError, ServiceError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ImageAnalysis:
    """The faces of one image, and the size of the image they were found in.

    `thumbnails`, when asked for, holds a small JPEG crop of each face, in the order
    of `faces` (None where nothing of a face lies inside the image).
    """

    width: int
    height: int
    faces: list[AnalyzedFace]
    thumbnails: list[bytes | None] = field(default_factory=list, repr=False)


class Analyzer(Protocol):
    """Runs image jobs; what the service layer calls."""

    spec: EngineSpec
    model_version: str

    def analyze(
        self, data: bytes, *, embed: bool = True, thumbnails: bool = False
    ) -> ImageAnalysis: ...

    def close(self) -> None: ...


def analyze_image(
    engine: Engine, data: bytes, *, embed: bool, thumbnails: bool = False
) -> ImageAnalysis:
    """Decode `data` and analyse it with `engine` (the body of every image job)."""
    from rekollect.service.images import decode_image
    from rekollect.service.thumbnails import face_thumbnail

    image = decode_image(data)
    height, width = image.shape[:2]
    faces = engine.analyze(image, embed=embed)
    crops = [face_thumbnail(image, face.box) for face in faces] if thumbnails else []
    return ImageAnalysis(width, height, faces, crops)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InlineAnalyzer:
    """Jobs in the calling thread, one at a time (engines are not thread-safe)."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.model_version = model_version_of(spec)
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def analyze(
        self, data: bytes, *, embed: bool = True, thumbnails: bool = False
    ) -> ImageAnalysis:
        with self._lock:
            if self._engine is None:
                self._engine = create_engine(self.spec)
            return analyze_image(self._engine, data, embed=embed, thumbnails=thumbnails)

    def close(self) -> None:
        pass


class EnginePool:
    """Jobs in `workers` processes, each with its own engine, started on first use."""

    def __init__(
        self, spec: EngineSpec, workers: int, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if workers < 1:
            raise ValueError("an engine pool needs at least one worker")
        self.spec = spec
        self.model_version = model_version_of(spec)
        self.workers = workers
        self.timeout_s = timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._start_lock = threading.Lock()
        self._started = False
        self._closed = False

    def start(self) -> None:
        """Start every worker and wait until each has loaded its models."""
        with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("the engine pool is closed")
            began = time.perf_counter()
            starting = [self._launch() for _ in range(self.workers)]
            for worker in starting:
                worker.wait_ready()
                self._idle.put(worker)
            self._started = True
            logger.info(
                "%d engine worker(s) for %s ready in %.1fs",
                self.workers,
                self.spec,
                time.perf_counter() - began,
            )

    def analyze(
        self, data: bytes, *, embed: bool = True, thumbnails: bool = False
    ) -> ImageAnalysis:
        self.start()
        worker = self._idle.get()
        try:
            worker.connection.send((data, embed, thumbnails))
            if not worker.connection.poll(self.timeout_s):
                logger.error(
                    "Engine worker %d overran the %.0fs limit; replacing it",
                    worker.pid,
                    self.timeout_s,
                )
                worker = self._replace(worker)
                raise InternalServerError(
                    f"The image took longer than {self.timeout_s:.0f} seconds to analyse."
                )
            status, payload = worker.connection.recv()
        except (EOFError, OSError):
            logger.error("Engine worker %d died; replacing it", worker.pid)
            worker = self._replace(worker)
            raise InternalServerError() from None
        finally:
            self._idle.put(worker)

        if status == "ok":
            result: ImageAnalysis = payload
            return result
        if status == "error":
            error: ServiceError = payload
            raise error
        logger.error("Engine worker %d failed:\n%s", worker.pid, payload)
        raise InternalServerError()

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            for worker in list(self._all):
                worker.stop()
            self._all.clear()

    def _launch(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(self.spec, child),
            name="rekollect-engine",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._all.add(worker)
        return worker

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        self._all.discard(worker)
        replacement = self._launch()
        replacement.wait_ready()
        return replacement


class _Worker:
    def __init__(self, process: Any, connection: Connection) -> None:
        self.process = process
        self.connection = connection

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def wait_ready(self) -> None:
        if not self.connection.poll(_START_TIMEOUT_S):
            self.kill()
            raise RuntimeError("an engine worker did not start in time")
        status, payload = self.connection.recv()
        if status != "ready":
            self.kill()
            raise RuntimeError(f"an engine worker failed to start:\n{payload}")

    def stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.kill()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


def _worker_main(spec: EngineSpec, connection: Connection) -> None:
    """A worker: build the engine, load its models, then answer jobs until told."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server handles Ctrl-C
    try:
        engine = create_engine(spec)
        warm_up = getattr(engine, "load", None)
        if callable(warm_up):
            warm_up()
    except BaseException:
        connection.send(("failed", traceback.format_exc()))
        return
    connection.send(("ready", None))
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        data, embed, thumbnails = job
        try:
            analysis = analyze_image(engine, data, embed=embed, thumbnails=thumbnails)
            answer: tuple[str, Any] = ("ok", analysis)
        except ServiceError as error:
            answer = ("error", error)
        except Exception:
            answer = ("crashed", traceback.format_exc())
        connection.send(answer)
