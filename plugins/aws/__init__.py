"""The AWS backend (the Smart_IOT set-up): DynamoDB, and the other AWS services'
adapters beside it. boto3 is imported only when the backend is built, never
on the console's start-up path (tests/integration/aws/test_plugin.py)."""
