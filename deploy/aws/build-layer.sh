#!/usr/bin/env bash
# Builds the Lambda layer with the functions' Python packages
# (deploy/aws/layer/python/requirements-lambda.txt) for python3.11 on arm64,
# zips it, and — with --publish — publishes it with the AWS CLI, printing the
# layer version ARN to pass to `serverless deploy --param=pythonLayerArn=...`.
#
# Why a separately published layer: Serverless v3 looks up the previous
# deployment in CloudFormation for a layer it builds itself, even during
# `serverless package`, so a layer declared in serverless.yml would make the
# offline package check need AWS (docs/aws.md, "Deploying").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
layer="$here/layer"
python="${PYTHON:-python3}"
stage="${STAGE:-dev}"

find "$layer/python" -mindepth 1 -maxdepth 1 ! -name requirements-lambda.txt -exec rm -rf {} +
"$python" -m pip install --quiet --target "$layer/python" \
    --platform manylinux2014_aarch64 --implementation cp --python-version 3.11 \
    --only-binary=:all: -r "$layer/python/requirements-lambda.txt"
rm -f "$here/python-layer.zip"
(cd "$layer" && "$python" -m zipfile -c "$here/python-layer.zip" python)
echo "built $here/python-layer.zip ($(du -h "$here/python-layer.zip" | cut -f1))"

if [[ "${1:-}" == "--publish" ]]; then
    aws lambda publish-layer-version --layer-name "smartiot-python-$stage" \
        --description "Python packages of the Smart IoT backend" \
        --compatible-runtimes python3.11 --compatible-architectures arm64 \
        --zip-file "fileb://$here/python-layer.zip" --query LayerVersionArn --output text
fi
