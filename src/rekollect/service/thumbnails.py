"""Face thumbnails: a small JPEG crop around each face IndexFaces stores.

The crop is made where the decoded pixels are (inside the engine worker that analysed
the image), so the image is never decoded twice nor sent between processes. It is
square where the image allows, centred on the face's box and `MARGIN` wider than it on
each side, scaled down to at most `SIDE_PX` pixels a side: about 4-8 kB of JPEG. The
face then spans about 100 pixels, enough for a person to recognise and for a detector
to find again, so a collection can be embedded afresh from its thumbnails by another
engine (docs/console.md).
"""

from __future__ import annotations

import io

from PIL import Image

from rekollect.engine.base import PixelBox, RGBImage

SIDE_PX = 160
# Added on each side of the face box, as a fraction of its larger side.
MARGIN = 0.3
JPEG_QUALITY = 80


def face_thumbnail(image: RGBImage, box: PixelBox) -> bytes | None:
    """The JPEG crop around `box` (pixels of `image`), or None if nothing of the box
    lies inside the image."""
    height, width = image.shape[:2]
    side = max(box.width, box.height) * (1 + 2 * MARGIN)
    centre_x = (box.left + box.right) / 2
    centre_y = (box.top + box.bottom) / 2
    left = max(0, round(centre_x - side / 2))
    top = max(0, round(centre_y - side / 2))
    right = min(width, round(centre_x + side / 2))
    bottom = min(height, round(centre_y + side / 2))
    if right - left < 2 or bottom - top < 2:
        return None

    crop = Image.fromarray(image[top:bottom, left:right])
    crop.thumbnail((SIDE_PX, SIDE_PX), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()
