"""The converter Lambda function: one manifest through the conversion core (glue/job.py) in worker
processes. Its own deployment artifact (``python -m converter.build``), not part of the Chalice app."""
