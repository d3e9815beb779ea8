"""The S3 connector: listing and reading a bucket (``source``), its event
notifications (``events``), and the kind that puts them together (``kind``)."""
