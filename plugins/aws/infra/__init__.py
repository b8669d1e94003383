"""The AWS backend's infrastructure as code: serverless.yml read back in
Python (template.py) and the resources it declares created against an
endpoint (provision.py: moto for the sandbox and the tests)."""
