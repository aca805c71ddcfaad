"""Rekognition's service model, loaded once from the installed botocore."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel

SERVICE_NAME = "rekognition"


@functools.cache
def service_model() -> ServiceModel:
    """The botocore model of Rekognition (the same data boto3 uses)."""
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


@functools.cache
def operation_model(name: str) -> OperationModel | None:
    """The model of operation `name` (wire spelling), or None if there is none."""
    model = service_model()
    if name not in model.operation_names:
        return None
    return model.operation_model(name)


def target_prefix() -> str:
    prefix: str = service_model().metadata["targetPrefix"]
    return prefix


def operation_names() -> list[str]:
    names: list[str] = service_model().operation_names
    return names


def error_codes(operation: OperationModel) -> set[str]:
    return {shape.name for shape in operation.error_shapes}


def members_of(operation: OperationModel) -> dict[str, Any]:
    if operation.input_shape is None:
        return {}
    return dict(operation.input_shape.members)
