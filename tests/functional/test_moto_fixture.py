from tests.conftest import client


def test_moto_server_is_local_and_resets(aws: str) -> None:
    assert aws.startswith("http://127.0.0.1:")
    s3 = client("s3")
    s3.create_bucket(Bucket="probe")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]
