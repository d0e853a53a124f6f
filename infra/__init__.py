"""Deployment tooling for one SCIM instance per customer (``python -m infra.deploy``).

Standard library only, so a consultant needs nothing but Python and the Azure CLI.
"""
