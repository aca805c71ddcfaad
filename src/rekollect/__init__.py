"""rekollect: a self-hosted face collection service that speaks Amazon Rekognition.

    import rekollect
    rekognition = rekollect.client(data_dir=None)   # a real boto3 client, no server
    rekognition.create_collection(CollectionId="demo")

Importing this package loads no database driver, ML runtime or AWS SDK; `client`
loads them when called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def client(*args: Any, **kwargs: Any) -> Any:
    """A boto3 Rekognition client served in this process (see `rekollect.inprocess`)."""
    from rekollect.inprocess import client as inprocess_client

    return inprocess_client(*args, **kwargs)


__all__ = ["__version__", "client"]
