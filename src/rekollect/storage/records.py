"""The domain records the store hands out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Embedding = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Scope:
    """Where a request runs: collections are per account and region, as in AWS."""

    account_id: str
    region: str


@dataclass(frozen=True)
class Collection:
    pk: int
    collection_id: str
    face_model_version: str
    created_at: float


@dataclass(frozen=True)
class User:
    pk: int
    user_id: str
    face_count: int


@dataclass(frozen=True)
class BoundingBox:
    """A face's box as ratios of the image's width and height (0-1)."""

    width: float
    height: float
    left: float
    top: float


@dataclass(frozen=True)
class NewFace:
    """A face about to be stored (what IndexFaces produces for each face it keeps)."""

    face_id: str
    image_id: str
    external_image_id: str | None
    box: BoundingBox
    confidence: float
    model_version: str
    embedding: Embedding


@dataclass(frozen=True)
class Face:
    pk: int
    face_id: str
    image_id: str
    external_image_id: str | None
    box: BoundingBox
    confidence: float
    model_version: str
    user_pk: int | None
    user_id: str | None


def embedding_bytes(vector: Embedding) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def embedding_from_bytes(data: bytes) -> Embedding:
    return np.frombuffer(data, dtype="<f4")
