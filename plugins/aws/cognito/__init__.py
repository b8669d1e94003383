"""People on the AWS backend: the Cognito user pool (roles are its groups, the
organization a custom attribute), the user directory over it, sign-in with
SRP, and the local stand-in for API Gateway's Cognito authorizer."""
