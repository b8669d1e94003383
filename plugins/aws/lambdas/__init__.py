"""The Lambda functions of the Smart_IOT backend (serverless.yml names each
``plugins/aws/lambdas/<module>.handler``); each builds its adapters once per
container from the environment (``environment.py``)."""
