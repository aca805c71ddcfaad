"""Face engines (detect, align, embed) and the similarity scores built on them.

Importing this package loads no ML runtime: engines import theirs when first used.
"""

# FaceModelVersion that new collections are bound to. The version names the embedding
# space (dlib's 128-D ResNet descriptor is "1.0"); see docs/compatibility.md.
DEFAULT_FACE_MODEL_VERSION = "1.0"
