"""The Smart_IOT REST API: API Gateway (REST, proxy integration) Lambda
handlers over core's use cases, served locally by a small WSGI adapter."""
