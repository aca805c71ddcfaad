"""AWS JSON 1.1 for Rekognition: the service model, validation, encoding, SigV4 parsing.

Nothing here knows about storage or business rules; botocore's service model is the
single source of operation names, members, shapes and constraints.
"""
