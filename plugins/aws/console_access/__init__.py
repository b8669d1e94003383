"""The console and the CLI on AWS: where a profile signs in (its endpoints,
discovered from the stack or the sandbox) and the Cognito session behind
the REST API client."""
