"""Profiles: YAML documents describing a deployment, validated by pydantic."""
