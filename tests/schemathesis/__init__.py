"""schemathesis against the served fake (tox -e schemathesis); see conftest.py."""
