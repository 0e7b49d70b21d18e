"""KOSCOM's service-integration API: typed requests and answers, and the client."""
