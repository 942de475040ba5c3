"""The data plane: the Glue PySpark job that turns one manifest of NDJSON files into Parquet.

Entry point ``glue/ndjson_to_parquet.py``; pure modules beside it (strict line parsing, schema
handling, conversion, storage). On Glue the package ships in the ``--extra-py-files`` zip.
"""
