"""Control-plane code packaged into every Lambda function (and imported by the Glue job)."""
