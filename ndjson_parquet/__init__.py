"""Local runtime and operator CLI of ndjson-parquet (never packaged into Lambda)."""
