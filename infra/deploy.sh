#!/usr/bin/env bash
# Deploy one stage to AWS: converter artifact -> infra stack (bootstrapped once for its scripts bucket) ->
# Glue script and converter zip -> stack with the converter -> Chalice config -> chalice deploy -> fix-ups.
#
#   make deploy STAGE=prod            (or: bash infra/deploy.sh prod)
#
# Environment (all optional):
#   STACK_PARAMS     extra "Key=Value ..." CloudFormation parameter overrides, e.g.
#                    "GlueExecutionClass=FLEX AlertEmail=oncall@example.com CompressionType=zstd"
#                    (ConverterArtifactKey is set by this script: the uploaded zip's content-addressed key)
#   ARTIFACT_BUCKET  S3 bucket for the template upload (the rendered template is over CloudFormation's
#                    51,200-byte inline limit); default ndjson-parquet-artifacts-<account>-<region>,
#                    created once (SSE-S3, public access blocked, TLS-only is up to your org's SCPs).
#   AWS_PROFILE / AWS_REGION as usual for the AWS CLI and boto3.
#   DRY_RUN=1        print the commands instead of running them.
set -euo pipefail

STAGE="${1:?usage: infra/deploy.sh <stage>}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CHALICE="${CHALICE:-$ROOT/.venv/bin/chalice}"
STACK="ndjson-parquet-${STAGE}"
BUILD="$ROOT/build/deploy-${STAGE}"
OUTPUTS="$ROOT/.chalice/stack-outputs-${STAGE}.json"   # gitignored
run() { if [[ "${DRY_RUN:-0}" == "1" ]]; then echo "+ $*"; else "$@"; fi; }

mkdir -p "$BUILD"
cd "$ROOT"

echo "==> 1/7 render the template (ASL inlined) for stage ${STAGE}"
"$PY" -m ndjson_parquet.infra_template render --stage "$STAGE" --out "$BUILD/pipeline.json"
run "$ROOT/.venv/bin/cfn-lint" "$BUILD/pipeline.json"

echo "==> 2/7 build the converter artifact (pruned pyarrow/pyiceberg/orjson + glue/, chalicelib/, converter/)"
CONVERTER_ZIP="$ROOT/build/converter/converter.zip"
run "$PY" -m converter.build --out "$ROOT/build/converter"
# Content-addressed key: CloudFormation updates the function's code only when the key changes.
if [[ "${DRY_RUN:-0}" == "1" ]]; then CONVERTER_KEY="converter/converter-<sha256>.zip"; else
  CONVERTER_KEY="converter/converter-$(sha256sum "$CONVERTER_ZIP" | cut -c1-16).zip"
fi

size=$(wc -c <"$BUILD/pipeline.json")
upload=()
if [[ -n "${ARTIFACT_BUCKET:-}" ]] || (( size > 51200 )); then
  if [[ -z "${ARTIFACT_BUCKET:-}" ]]; then
    if [[ "${DRY_RUN:-0}" == "1" ]]; then account="<account>"; region="<region>"; else
      account="$(aws sts get-caller-identity --query Account --output text)"
      region="$(aws configure get region || echo "${AWS_REGION:-us-east-1}")"
    fi
    ARTIFACT_BUCKET="ndjson-parquet-artifacts-${account}-${region}"
    if [[ "${DRY_RUN:-0}" != "1" ]] && ! aws s3api head-bucket --bucket "$ARTIFACT_BUCKET" 2>/dev/null; then
      echo "    creating artifact bucket ${ARTIFACT_BUCKET} (template is ${size} bytes > 51,200)"
      if [[ "$region" == "us-east-1" ]]; then aws s3api create-bucket --bucket "$ARTIFACT_BUCKET" >/dev/null
      else aws s3api create-bucket --bucket "$ARTIFACT_BUCKET" \
        --create-bucket-configuration "LocationConstraint=${region}" >/dev/null; fi
      aws s3api put-public-access-block --bucket "$ARTIFACT_BUCKET" --public-access-block-configuration \
        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
      aws s3api put-bucket-encryption --bucket "$ARTIFACT_BUCKET" --server-side-encryption-configuration \
        '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
    fi
  fi
  upload=(--s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "cfn/${STACK}")
fi
# shellcheck disable=SC2086  # STACK_PARAMS is a space-separated list of Key=Value on purpose
cfn_deploy() {
  run aws cloudformation deploy \
    --stack-name "$STACK" \
    --template-file "$BUILD/pipeline.json" \
    --capabilities CAPABILITY_NAMED_IAM \
    --no-fail-on-empty-changeset \
    "${upload[@]}" \
    --parameter-overrides "Stage=${STAGE}" ${STACK_PARAMS:-} "$@"
}
out() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print({o["OutputKey"]: o["OutputValue"] for o in d}[sys.argv[2]])' "$OUTPUTS" "$1"; }
save_outputs() {
  if [[ "${DRY_RUN:-0}" == "1" ]]; then
    echo "+ aws cloudformation describe-stacks --stack-name $STACK > $OUTPUTS"
  else
    aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].Outputs' --output json >"$OUTPUTS"
  fi
}

echo "==> 3/7 the scripts bucket (the first deploy creates the stack without the converter function)"
# The function's code must exist when it is created, in a bucket of this stack: a new stack is created
# once with ConverterArtifactKey="" (no function; every manifest goes to Glue) before the upload.
if [[ "${DRY_RUN:-0}" != "1" ]] && ! aws cloudformation describe-stacks --stack-name "$STACK" >/dev/null 2>&1; then
  cfn_deploy "ConverterArtifactKey="
elif [[ "${DRY_RUN:-0}" == "1" ]]; then
  echo "+ (only when ${STACK} does not exist yet)"
  cfn_deploy "ConverterArtifactKey="
fi
save_outputs
if [[ "${DRY_RUN:-0}" == "1" ]]; then SCRIPTS="<ScriptsBucketName>"; else SCRIPTS="$(out ScriptsBucketName)"; fi

echo "==> 4/7 upload the Glue script and the converter artifact"
# Entry point at the key the job runs; glue/ and chalicelib/ (manifest contract) as --extra-py-files.
rm -f "$BUILD/glue.zip"
"$PY" -m glue.shipping "$BUILD/glue.zip"  # the same zip the local runtime ships to Spark
run aws s3 cp "$ROOT/glue/ndjson_to_parquet.py" "s3://${SCRIPTS}/glue/ndjson_to_parquet.py"
run aws s3 cp "$BUILD/glue.zip" "s3://${SCRIPTS}/glue/glue.zip"
run aws s3 cp "$CONVERTER_ZIP" "s3://${SCRIPTS}/${CONVERTER_KEY}"

echo "==> 5/7 aws cloudformation deploy ${STACK} with the converter (${CONVERTER_KEY})"
cfn_deploy "ConverterArtifactKey=${CONVERTER_KEY}"
save_outputs

echo "==> 6/7 write the outputs into .chalice/config.json (stage ${STAGE}) and chalice deploy"
run "$PY" -m ndjson_parquet.infra_template chalice-config --stage "$STAGE" --outputs "$OUTPUTS"
# app.py reads the event-source ARNs at import (Chalice wires them while packaging).
if [[ "${DRY_RUN:-0}" != "1" ]]; then
  INGEST_QUEUE_ARN="$(out IngestQueueArn)"
  TRACKING_STREAM_ARN="$(out TableStreamArn)"
  export INGEST_QUEUE_ARN TRACKING_STREAM_ARN
fi
run "$CHALICE" deploy --stage "$STAGE"

echo "==> 7/7 post-deploy fix-ups Chalice cannot express"
run "$PY" -m ndjson_parquet.postdeploy --stage "$STAGE" --outputs "$OUTPUTS"
echo "deployed ${STACK}"
